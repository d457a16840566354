"""Batch timings and the periodic log summary (one INFO line every 10 s, not one per batch).

The numbers are the ones Spark's streaming listener reports for each batch:

* *scheduling delay*: from the batch time until its processing starts (how far behind the
  job is running);
* *processing time*: from the start to the end of the batch's processing (output operations
  included, the checkpoint write that follows them excluded);
* *input rate*: events received per second over the summary interval.

:class:`BatchTimer` measures them from inside the graph (a transform right after the input
marks the start, an output operation registered last marks the end), so it needs no engine
hook. Time is injected: ``clock_ms`` is the engine's clock (batch times are on it),
``perf`` a monotonic seconds counter for durations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BatchSample", "BatchTimer", "SummaryWindow"]

log = logging.getLogger("consumer.jobs")


@dataclass(frozen=True)
class BatchSample:
    batch_ms: int
    events: int
    processing_s: float
    scheduling_delay_s: float


@dataclass
class SummaryWindow:
    """PURE: accumulates samples; ``due(now)`` says when a summary line should be emitted."""

    interval_s: float = 10.0
    started_s: float | None = None
    samples: list[BatchSample] = field(default_factory=list)

    def add(self, sample: BatchSample, now_s: float) -> None:
        if self.started_s is None:
            self.started_s = now_s
        self.samples.append(sample)

    def due(self, now_s: float) -> bool:
        return self.started_s is not None and now_s - self.started_s >= self.interval_s

    def summary(self, now_s: float, dropped: dict[str, int] | None = None) -> str:
        """The line for the samples so far; resets the window."""
        s = self.samples
        elapsed = max(now_s - (self.started_s if self.started_s is not None else now_s), 1e-9)
        events = sum(x.events for x in s)
        proc = [x.processing_s * 1000 for x in s]
        delay = [x.scheduling_delay_s * 1000 for x in s]
        parts = [
            f"{len(s)} batches in {elapsed:.1f} s",
            f"{events} events ({events / elapsed:.1f} events/s)",
            f"processing time avg {_avg(proc):.1f} ms, max {max(proc, default=0.0):.1f} ms",
            f"scheduling delay avg {_avg(delay):.1f} ms, max {max(delay, default=0.0):.1f} ms",
        ]
        if dropped:
            details = ", ".join(f"{k} {v}" for k, v in dropped.items() if v)
            if details:
                parts.append(f"dropped: {details}")
        self.samples = []
        self.started_s = now_s
        return "; ".join(parts)


def _avg(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class BatchTimer:
    """Turns begin/end calls made from the graph into samples and summary log lines."""

    def __init__(self, clock_ms: Callable[[], int], perf: Callable[[], float],
                 interval_s: float = 10.0,
                 dropped: Callable[[], dict[str, int]] | None = None,
                 emit: Callable[[str], None] | None = None) -> None:
        self._clock_ms = clock_ms
        self._perf = perf
        self._window = SummaryWindow(interval_s)
        self._dropped = dropped
        self._dropped_before: dict[str, int] = {}
        self._emit = emit or (lambda line: log.info("%s", line))
        self._current: tuple[int, int, float, float] | None = None
        self.last: BatchSample | None = None

    def begin(self, batch_ms: int, events: int) -> None:
        delay_s = max(self._clock_ms() - batch_ms, 0) / 1000.0
        self._current = (batch_ms, events, self._perf(), delay_s)

    def end(self, batch_ms: int) -> BatchSample | None:
        if self._current is None or self._current[0] != batch_ms:
            return None
        t, events, started, delay_s = self._current
        self._current = None
        now = self._perf()
        sample = BatchSample(t, events, now - started, delay_s)
        self.last = sample
        log.debug("batch %d: %d events, processing %.1f ms, scheduling delay %.1f ms",
                  t, events, sample.processing_s * 1000, delay_s * 1000)
        self._window.add(sample, now)
        if self._window.due(now):
            self._emit(self._window.summary(now, self._dropped_delta()))
        return sample

    def _dropped_delta(self) -> dict[str, int]:
        if self._dropped is None:
            return {}
        totals = self._dropped()
        delta = {k: v - self._dropped_before.get(k, 0) for k, v in totals.items()}
        self._dropped_before = dict(totals)
        return delta
