"""PURE: what a running declarative job reports after each batch, to whoever watches it (the
web UI, the terminal view): the batch's timings (Spark's streaming listener numbers), the
windows it closed with their top rows, and the records dropped so far by reason.

Observers are called in the engine's worker thread, after the batch's output operations and
before its checkpoint; they must be quick and must not raise (a failing observer is logged
by the caller and the job goes on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from consumer.jobs.logsummary import BatchSample
from consumer.jobs.ranking import WindowTop

__all__ = ["BatchReport", "JobObserver"]


@dataclass(frozen=True)
class BatchReport:
    sample: BatchSample
    windows: tuple[WindowTop, ...] = ()
    dropped: dict[str, int] = field(default_factory=dict)  # totals since start, by reason


JobObserver = Callable[[BatchReport], None]
