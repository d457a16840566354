"""Event-time windows with a watermark (beyond DStreams; modelled on Structured Streaming).

DStream windows group records by *arrival* batch, so a late or jittery delivery changes the
counts. ``dstream.eventTimeWindow(...)`` groups by the time inside each record instead::

    hits = lines.map(parse).eventTimeWindow(
        timestamp=lambda r: r.epoch_seconds,   # event time, in seconds
        windowDuration=60, slideDuration=30,   # windows [k*30, k*30 + 60)
        allowedLateness=10,                     # watermark = max event time seen - 10 s
        key=lambda r: r.url)                    # optional; counts per key (value/reduce too)

Each batch the stream emits every window that the watermark has *finalised* (window end <=
watermark), once, as ``EventWindow(start, end, key, value)`` tuples sorted by (start, key);
times are seconds. A record whose every window is already finalised when it arrives is
dropped and counted (``stream.lateRecords``). The watermark only moves forward, and as long
as records are at most ``allowedLateness`` behind the newest one, results do not depend on
how records were spread over batches. Windows still open at shutdown are not emitted
(Structured Streaming's append mode does the same); the open windows and the watermark are
checkpointed, so a resumed run continues them.

Unlike Structured Streaming, the watermark used to finalise windows is updated at the end of
the same batch (not the next one), so results appear one batch earlier; which records are
accepted does not change.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from consumer.engine.rdd import RDD
from consumer.engine.windows import to_ms
from consumer.streaming.dstream import DStream

__all__ = ["EventTimeWindowDStream", "EventTimeWindows", "EventWindow"]


class EventWindow(NamedTuple):
    start: float
    end: float
    key: Any
    value: Any


class EventTimeWindows:
    """PURE event-time window state: assign, drop the too-late, finalise by watermark."""

    def __init__(self, window_ms: int, slide_ms: int, lateness_ms: int,
                 reduce: Callable[[Any, Any], Any] = operator.add) -> None:
        if window_ms <= 0 or slide_ms <= 0:
            raise ValueError("eventTimeWindow: windowDuration and slideDuration must be > 0")
        if lateness_ms < 0:
            raise ValueError("eventTimeWindow: allowedLateness must be >= 0")
        self.window_ms = window_ms
        self.slide_ms = slide_ms
        self.lateness_ms = lateness_ms
        self.reduce = reduce
        self.open: dict[tuple[int, Any], Any] = {}  # (window start ms, key) -> value
        self.max_event_ms: int | None = None
        self.watermark_ms: int | None = None
        self.late_records = 0

    def add(self, ts_ms: int, key: Any, value: Any) -> bool:
        """Add one record; False (and counted) if all its windows are already final."""
        wm = self.watermark_ms
        start = ts_ms - ts_ms % self.slide_ms
        accepted = False
        while start > ts_ms - self.window_ms:
            if wm is None or start + self.window_ms > wm:
                slot = (start, key)
                cur = self.open.get(slot, _MISSING)
                self.open[slot] = value if cur is _MISSING else self.reduce(cur, value)
                accepted = True
            start -= self.slide_ms
        if not accepted:
            self.late_records += 1
            return False
        if self.max_event_ms is None or ts_ms > self.max_event_ms:
            self.max_event_ms = ts_ms
        return True

    def advance(self) -> list[EventWindow]:
        """Move the watermark to (max event time - lateness); return newly final windows."""
        if self.max_event_ms is None:
            return []
        candidate = self.max_event_ms - self.lateness_ms
        if self.watermark_ms is None or candidate > self.watermark_ms:
            self.watermark_ms = candidate
        wm = self.watermark_ms
        done = sorted((slot for slot in self.open if slot[0] + self.window_ms <= wm),
                      key=_slot_order)
        out = []
        for slot in done:
            start, key = slot
            out.append(EventWindow(start / 1000.0, (start + self.window_ms) / 1000.0, key,
                                   self.open.pop(slot)))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"open": list(self.open.items()), "max": self.max_event_ms,
                "wm": self.watermark_ms, "late": self.late_records}

    def restore(self, data: dict[str, Any]) -> None:
        self.open = dict(data["open"])
        self.max_event_ms = data["max"]
        self.watermark_ms = data["wm"]
        self.late_records = data["late"]


_MISSING = object()


def _slot_order(slot: tuple[int, Any]) -> tuple[int, str, Any]:
    # keys of mixed types still sort: by type name first, then value where comparable
    return (slot[0], type(slot[1]).__name__, slot[1] if slot[1] is not None else "")


class EventTimeWindowDStream(DStream):
    """The DStream node around :class:`EventTimeWindows`."""

    def __init__(self, parent: DStream, timestamp: Callable[[Any], float],
                 windowDuration: float, slideDuration: float | None,
                 allowedLateness: float, key: Callable[[Any], Any] | None,
                 value: Callable[[Any], Any] | None,
                 reduce: Callable[[Any, Any], Any]) -> None:
        super().__init__(parent._ssc, [parent])
        window_ms = to_ms(windowDuration)
        slide_ms = to_ms(slideDuration) if slideDuration else window_ms
        self._windows = EventTimeWindows(window_ms, slide_ms, to_ms(allowedLateness),
                                         reduce)
        self._timestamp = timestamp
        self._key = key
        self._value = value

    @property
    def lateRecords(self) -> int:
        return self._windows.late_records

    @property
    def watermark(self) -> float | None:
        wm = self._windows.watermark_ms
        return None if wm is None else wm / 1000.0

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        add = self._windows.add
        ts, key, value = self._timestamp, self._key, self._value
        for record in parent_rdds[0]._data:
            add(round(ts(record) * 1000), key(record) if key else None,
                value(record) if value else 1)
        return RDD(self._windows.advance(), self.ctx)

    def _has_state(self) -> bool:
        return True

    def _snapshot(self) -> Any:
        return self._windows.snapshot()

    def _restore(self, data: Any) -> None:
        self._windows.restore(data)
