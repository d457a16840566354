"""PURE: what the web UI and the terminal view show, built from a job's batch reports.

:class:`JobView` takes each :class:`~consumer.jobs.observe.BatchReport` and keeps what Spark's
streaming tab keeps: the recent batches (``spark.streaming.ui.retainedBatches``, 1000), the
totals since start, and, beyond Spark, the windows the latest closing batch closed (with
their top rows) and the records dropped per batch by reason. Everything it returns is plain
JSON-ready data; receiver status (connected agents, lag, last error) is handed in by the
caller at render time, since only the event loop may read it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumer.jobs.observe import BatchReport
from consumer.jobs.ranking import WindowTop

__all__ = ["BatchRow", "JobInfo", "JobView", "window_json"]

RETAINED_BATCHES = 1000  # Spark's spark.streaming.ui.retainedBatches
RETAINED_WINDOWS = 12  # at most this many of the windows the last closing batch closed


@dataclass(frozen=True)
class JobInfo:
    name: str
    description: str  # what the job computes, one line
    source: str  # where its events come from
    batch_ms: int
    window_ms: int
    top: int
    started_ms: int


@dataclass(frozen=True)
class BatchRow:
    """One completed batch as Spark's streaming tab lists it (delays in ms)."""

    time_ms: int
    records: int
    scheduling_delay_ms: float
    processing_ms: float
    dropped: Mapping[str, int] = field(default_factory=dict)  # this batch's, by reason
    windows: int = 0  # windows it closed

    @property
    def total_delay_ms(self) -> float:
        return self.scheduling_delay_ms + self.processing_ms

    def json(self) -> dict[str, Any]:
        return {"time": self.time_ms, "records": self.records,
                "scheduling_delay": round(self.scheduling_delay_ms, 3),
                "processing": round(self.processing_ms, 3),
                "total_delay": round(self.total_delay_ms, 3),
                "dropped": dict(self.dropped), "windows": self.windows}


def _plain(value: Any) -> Any:
    """A result key or value as JSON: tuples to lists, non-finite floats to text."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def window_json(window: WindowTop) -> dict[str, Any]:
    return {"start": window.start_ms, "end": window.end_ms, "keys": window.keys,
            "top": [[_plain(k), _plain(v)] for k, v in window.pairs()]}


class JobView:
    """Batches, totals and windows of one running job (one thread at a time)."""

    def __init__(self, info: JobInfo, retained: int = RETAINED_BATCHES,
                 windows: int = RETAINED_WINDOWS) -> None:
        self.info = info
        self.batches: deque[BatchRow] = deque(maxlen=retained)
        self.windows: deque[WindowTop] = deque(maxlen=windows)
        self.completed = 0
        self.records = 0
        self.dropped_total: dict[str, int] = {}
        self.processing_ms_total = 0.0  # sums since start (Prometheus summaries)
        self.scheduling_delay_ms_total = 0.0

    def add(self, report: BatchReport) -> BatchRow:
        """Take one batch's report; returns its row."""
        s = report.sample
        dropped = {k: v - self.dropped_total.get(k, 0) for k, v in report.dropped.items()}
        self.dropped_total = dict(report.dropped)
        row = BatchRow(s.batch_ms, s.events, s.scheduling_delay_s * 1000,
                       s.processing_s * 1000, {k: v for k, v in dropped.items() if v},
                       len(report.windows))
        self.batches.append(row)
        if report.windows:  # the latest closing batch's windows (sliding ones overlap)
            self.windows.clear()
            self.windows.extend(report.windows)
        self.completed += 1
        self.records += s.events
        self.processing_ms_total += row.processing_ms
        self.scheduling_delay_ms_total += row.scheduling_delay_ms
        return row

    def input_rate(self, last: int = 10) -> float:
        """Events per second over the last ``last`` batches."""
        rows = list(self.batches)[-last:]
        if not rows:
            return 0.0
        return sum(r.records for r in rows) / (len(rows) * self.info.batch_ms / 1000)

    def latest_delay_ms(self) -> float:
        return self.batches[-1].scheduling_delay_ms if self.batches else 0.0

    def totals(self) -> dict[str, Any]:
        return {"batches": self.completed, "records": self.records,
                "dropped": dict(self.dropped_total),
                "input_rate": round(self.input_rate(), 3)}

    def state(self, receivers: Sequence[Mapping[str, Any]], now_ms: int) -> dict[str, Any]:
        """Everything the page needs when it (re)connects."""
        i = self.info
        return {
            "job": {"name": i.name, "description": i.description, "source": i.source,
                    "batch": i.batch_ms, "window": i.window_ms, "top": i.top,
                    "started": i.started_ms},
            "now": now_ms,
            "totals": self.totals(),
            "batches": [b.json() for b in self.batches],
            "windows": [window_json(w) for w in self.windows],
            "receivers": [dict(r) for r in receivers],
        }

    def update(self, row: BatchRow, report: BatchReport,
               receivers: Sequence[Mapping[str, Any]], now_ms: int) -> dict[str, Any]:
        """What the page needs after one more batch: the row, the windows it closed (the
        page keeps the newest), the receivers and totals now."""
        return {"now": now_ms, "batch": row.json(), "totals": self.totals(),
                "windows": [window_json(w) for w in report.windows],
                "receivers": [dict(r) for r in receivers]}
