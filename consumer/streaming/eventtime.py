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

Records already grouped per pane (``Pane``: records close enough in event time to fall in
the same windows, with each key's values reduced) go in with ``eventTimeWindow(panes=True)``:
each element is then a ``Pane`` and the results are those of adding its records one by one.
Declarative jobs use it to merge one value per key and window instead of one per record.

Unlike Structured Streaming, the watermark used to finalise windows is updated at the end of
the same batch (not the next one), so results appear one batch earlier; which records are
accepted does not change.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from consumer.engine.rdd import RDD, fresh
from consumer.engine.windows import to_ms
from consumer.streaming.dstream import DStream

__all__ = ["EventTimeWindowDStream", "EventTimeWindows", "EventWindow", "Pane", "pane_ms"]


class EventWindow(NamedTuple):
    start: float
    end: float
    key: Any
    value: Any


class Pane(NamedTuple):
    """Records already grouped: all of them have event times in ``[start_ms, start_ms +
    pane_ms(window, slide))``, so they fall in the same windows and are too late or not
    together; ``max_ms`` is the newest of them, ``records`` how many there are, and
    ``values[i]`` the reduced value of ``keys[i]`` (reduced in record order)."""

    start_ms: int
    max_ms: int
    records: int
    keys: list[Any]
    values: list[Any]


def pane_ms(window_ms: int, slide_ms: int) -> int:
    """The longest stretch of time whose every instant is in the same windows (starts are
    multiples of the slide, ends are starts + window)."""
    return math.gcd(window_ms, slide_ms)


class EventTimeWindows:
    """PURE event-time window state: assign, drop the too-late, finalise by watermark.

    State is one dict per open window (start -> key -> value): a pane of many records merges
    one value per key and window, and finalising takes whole windows without looking at the
    others. A window holds its own copy of each value (``fresh``), so ``reduce`` may update
    its first argument in place."""

    def __init__(self, window_ms: int, slide_ms: int, lateness_ms: int,
                 reduce: Callable[[Any, Any], Any] = operator.add) -> None:
        if window_ms <= 0 or slide_ms <= 0:
            raise ValueError("eventTimeWindow: windowDuration and slideDuration must be > 0")
        if lateness_ms < 0:
            raise ValueError("eventTimeWindow: allowedLateness must be >= 0")
        self.window_ms = window_ms
        self.slide_ms = slide_ms
        self.lateness_ms = lateness_ms
        self.pane_ms = pane_ms(window_ms, slide_ms)
        self.reduce = reduce
        self.windows: dict[int, dict[Any, Any]] = {}  # window start ms -> key -> value
        self.max_event_ms: int | None = None
        self.watermark_ms: int | None = None
        self.late_records = 0

    def _open_starts(self, ts_ms: int) -> list[int]:
        """Starts of the windows holding ``ts_ms`` that the watermark has not finalised,
        newest first."""
        wm = self.watermark_ms
        start = ts_ms - ts_ms % self.slide_ms
        starts = []
        while start > ts_ms - self.window_ms:
            if wm is None or start + self.window_ms > wm:
                starts.append(start)
            start -= self.slide_ms
        return starts

    def add(self, ts_ms: int, key: Any, value: Any) -> bool:
        """Add one record; False (and counted) if all its windows are already final."""
        starts = self._open_starts(ts_ms)
        if not starts:
            self.late_records += 1
            return False
        windows, reduce = self.windows, self.reduce
        for start in starts:
            d = windows.get(start)
            if d is None:
                windows[start] = {key: fresh(value)}
                continue
            cur = d.get(key, _MISSING)
            d[key] = fresh(value) if cur is _MISSING else reduce(cur, value)
        if self.max_event_ms is None or ts_ms > self.max_event_ms:
            self.max_event_ms = ts_ms
        return True

    def add_pane(self, pane: Pane) -> bool:
        """Add a pane's records at once (as ``add`` would one by one, with each key's values
        reduced first); False (and all counted) if they are too late. The windows take over
        the pane's values: the caller must not use them afterwards."""
        starts = self._open_starts(pane.start_ms)
        if not starts:
            self.late_records += pane.records
            return False
        windows, reduce = self.windows, self.reduce
        items = list(zip(pane.keys, pane.values, strict=True))
        immutable = all(type(v) in _IMMUTABLE for v in pane.values[:1])
        for i, start in enumerate(starts):
            d = windows.get(start)
            if d is None:  # the first window takes the pane's values, the others copies
                windows[start] = dict(items) if immutable or i == 0 else \
                    {k: fresh(v) for k, v in items}
            elif reduce is operator.add and immutable:
                get = d.get
                for key, value in items:
                    cur = get(key, _MISSING)
                    d[key] = value if cur is _MISSING else cur + value
            else:
                for key, value in items:
                    cur = d.get(key, _MISSING)
                    if cur is _MISSING:
                        d[key] = value if immutable or i == 0 else fresh(value)
                    else:
                        d[key] = reduce(cur, value)
        if self.max_event_ms is None or pane.max_ms > self.max_event_ms:
            self.max_event_ms = pane.max_ms
        return True

    def advance(self) -> list[EventWindow]:
        """Move the watermark to (max event time - lateness); return newly final windows."""
        if self.max_event_ms is None:
            return []
        candidate = self.max_event_ms - self.lateness_ms
        if self.watermark_ms is None or candidate > self.watermark_ms:
            self.watermark_ms = candidate
        wm = self.watermark_ms
        out: list[EventWindow] = []
        for start in sorted(s for s in self.windows if s + self.window_ms <= wm):
            values = self.windows.pop(start)
            keys = _key_order(values)
            n = len(keys)
            bounds = repeat(start / 1000.0, n), repeat((start + self.window_ms) / 1000.0, n)
            # EventWindow(lo, hi, key, value) per key, built without a Python call per key
            out.extend(map(_new_window, zip(*bounds, keys, map(values.__getitem__, keys),
                                            strict=True)))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"open": [((start, key), value) for start, d in self.windows.items()
                         for key, value in d.items()],
                "max": self.max_event_ms, "wm": self.watermark_ms, "late": self.late_records}

    def restore(self, data: dict[str, Any]) -> None:
        self.windows = {}
        for (start, key), value in data["open"]:
            self.windows.setdefault(start, {})[key] = value
        self.max_event_ms = data["max"]
        self.watermark_ms = data["wm"]
        self.late_records = data["late"]


_MISSING = object()
_IMMUTABLE = frozenset({int, float, str, tuple, bool, type(None)})
_new_window = partial(tuple.__new__, EventWindow)


def _key_order(values: dict[Any, Any]) -> list[Any]:
    """Keys sorted; keys of mixed types by type name first, then value where comparable."""
    keys = list(values)
    kinds = set(map(type, keys))
    if kinds == {str} or kinds == {int}:
        keys.sort()
        return keys
    return sorted(keys, key=lambda k: (type(k).__name__, k if k is not None else ""))


class EventTimeWindowDStream(DStream):
    """The DStream node around :class:`EventTimeWindows`."""

    def __init__(self, parent: DStream, timestamp: Callable[[Any], float] | None,
                 windowDuration: float, slideDuration: float | None,
                 allowedLateness: float, key: Callable[[Any], Any] | None,
                 value: Callable[[Any], Any] | None,
                 reduce: Callable[[Any, Any], Any], panes: bool = False) -> None:
        super().__init__(parent._ssc, [parent])
        self._panes = panes
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
        if self._panes:
            add_pane = self._windows.add_pane
            for pane in parent_rdds[0]._data:
                add_pane(pane)
            return RDD(self._windows.advance(), self.ctx)
        add = self._windows.add
        ts, key, value = self._timestamp, self._key, self._value
        assert ts is not None
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
