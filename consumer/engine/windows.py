"""PURE window arithmetic and window state for DStream windows (no I/O, no clocks).

Spark's rules, kept exactly:

* window and slide durations must be multiples of the parent stream's slide; PySpark 2.x
  checks up front with ``ValueError("windowDuration must be multiple of the slide duration
  (N ms)")`` (``slideDuration`` likewise);
* a windowed stream emits only at times ``t`` with ``(t - zeroTime) % slide == 0``; the
  window at ``t`` covers the parent's batches in ``(t - window, t]`` (partial at start-up);
* ``reduceByKeyAndWindow`` with an inverse function follows PySpark's
  ``PythonReducedWindowedDStream``: it goes incremental only when the previous window result
  exists **and** ``window >= 5 * slide``; then it applies ``invFunc`` to the previous result
  for keys of the batches that left (a left outer join: only keys already in the window),
  adds the reduced new batches, and applies ``filterFunc`` to the whole result. Otherwise it
  re-reduces every batch of the window and still applies ``filterFunc``. Keys whose value
  fell back to the identity (0 for counts) therefore stay in the output until ``filterFunc``
  removes them; the recompute path never shows them.

Event-time windows (:class:`EventTimeWindows`, beyond DStreams, modelled on Structured
Streaming) group records by the time inside each record instead of their arrival batch, and
emit each window once a watermark has finalised it.

Durations are integer milliseconds here; the API layer converts seconds with
``int(seconds * 1000)`` as PySpark does.
"""

from __future__ import annotations

import math
import operator
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from itertools import repeat
from typing import Any, NamedTuple

from consumer.engine.checkpoint_format import Blob

__all__ = [
    "BatchWindow",
    "EventTimeWindows",
    "EventWindow",
    "Pane",
    "ReducedWindow",
    "WindowBlock",
    "check_window",
    "fresh",
    "is_valid_time",
    "pane_ms",
    "to_ms",
]

Pair = tuple[Any, Any]


def to_ms(seconds: float) -> int:
    """Seconds (PySpark's unit) to integer milliseconds, truncating like ``_jduration``."""
    return int(seconds * 1000)


def check_window(window_s: float, slide_s: float | None, parent_slide_ms: int) -> None:
    """Raise PySpark 2.x's ``ValueError`` unless window/slide are multiples of the parent slide."""
    if to_ms(window_s) % parent_slide_ms != 0:
        raise ValueError(
            f"windowDuration must be multiple of the slide duration ({parent_slide_ms} ms)")
    if slide_s and to_ms(slide_s) % parent_slide_ms != 0:
        raise ValueError(
            f"slideDuration must be multiple of the slide duration ({parent_slide_ms} ms)")


def is_valid_time(t_ms: int, zero_ms: int, slide_ms: int) -> bool:
    """Spark's ``DStream.isTimeValid``: strictly after zero time, on a slide boundary."""
    return t_ms > zero_ms and (t_ms - zero_ms) % slide_ms == 0


def fresh(value: Any) -> Any:
    """A shallow copy of mutable builtins (and ``Counter``s), so reduce functions that update
    their first argument in place (PySpark's own ``groupByKeyAndWindow`` uses ``a.extend(b)
    or a``; flumelet's top_k merges counters in place) never change data kept elsewhere, such
    as batches held for later windows. Spark gets this isolation from serialisation."""
    t = type(value)
    if t is list or t is dict or t is set or t is bytearray:
        return value.copy()
    if t is Counter:  # Counter.copy() refills value by value in Python
        copy: Counter[Any] = Counter.__new__(Counter)  # (Counter.__init__ is Python too)
        dict.update(copy, value)
        return copy
    if isinstance(value, Counter):
        return value.copy()
    return value


class BatchWindow:
    """Keeps a parent's per-batch data for ``window()``; emits their concatenation."""

    def __init__(self, window_ms: int, slide_ms: int) -> None:
        self.window_ms = window_ms
        self.slide_ms = slide_ms
        self.batches: dict[int, list[Any]] = {}
        self._encoded = EncodedCache()

    def add(self, t_ms: int, items: list[Any]) -> None:
        self.batches[t_ms] = items

    def window_at(self, t_ms: int) -> list[Any]:
        lo = t_ms - self.window_ms
        out: list[Any] = []
        for bt, items in self.batches.items():
            if lo < bt <= t_ms:
                out.extend(items)
        return out

    def evict(self, t_ms: int) -> None:
        """Drop batches no later window can contain (the next one starts after t+slide-window)."""
        horizon = t_ms + self.slide_ms - self.window_ms
        for bt in [bt for bt in self.batches if bt <= horizon]:
            del self.batches[bt]

    def snapshot(self) -> dict[str, Any]:
        return {"batches": self._encoded.encode_all(self.batches)}

    def restore(self, data: dict[str, Any]) -> None:
        self.batches = self._encoded.decode_all(data["batches"])


class ReducedWindow:
    """Per-key windowed reduction (``reduceByKeyAndWindow``), incremental where PySpark is.

    ``add_batch`` is called for every parent batch with that batch's pairs (or an already
    reduced dict); ``result_at`` is called at slide times and returns the window's dict.
    With ``func is operator.add`` and ``inv_func is operator.sub`` the same arithmetic runs
    without a Python call per key (the declarative fast path; results are identical).
    """

    def __init__(self, func: Callable[[Any, Any], Any],
                 inv_func: Callable[[Any, Any], Any] | None,
                 filter_func: Callable[[Pair], Any] | None,
                 window_ms: int, slide_ms: int) -> None:
        self.func = func
        self.inv_func = inv_func
        self.filter_func = filter_func
        self.window_ms = window_ms
        self.slide_ms = slide_ms
        self.additive = func is operator.add and inv_func in (operator.sub, None)
        self.batches: dict[int, dict[Any, Any]] = {}
        self._encoded = EncodedCache()
        self.prev_time: int | None = None
        self.prev: dict[Any, Any] = {}
        self.last_path = ""  # "incremental" or "recompute": observable for tests

    # ---- per-batch partials ----------------------------------------------------------
    def reduce_batch(self, pairs: Iterable[Pair]) -> dict[Any, Any]:
        acc: dict[Any, Any] = {}
        if self.additive:
            for k, v in pairs:
                if k in acc:
                    acc[k] = acc[k] + v
                else:
                    acc[k] = v
            return acc
        func = self.func
        for k, v in pairs:
            if k in acc:
                acc[k] = func(acc[k], v)
            else:
                acc[k] = fresh(v)
        return acc

    def add_batch(self, t_ms: int, partial: dict[Any, Any]) -> None:
        self.batches[t_ms] = partial

    def add_counts(self, t_ms: int, keys: Iterable[Any]) -> None:
        """Fast path for counting: the batch's partial is ``Counter(keys)`` (C speed)."""
        self.batches[t_ms] = dict(Counter(keys))

    # ---- window results --------------------------------------------------------------
    def _merge_into(self, acc: dict[Any, Any], src: dict[Any, Any],
                    shared: set[Any] | None = None) -> None:
        """Fold ``src`` into ``acc``. Values ``acc`` got from this pass are its own copies, so
        ``func`` may update them in place; ``shared`` holds the keys whose values others may
        still hold (the previous window's result, already emitted): copied on first update."""
        if self.additive:
            for k, v in src.items():
                if k in acc:
                    acc[k] = acc[k] + v
                else:
                    acc[k] = v
            return
        func = self.func
        for k, v in src.items():
            if k not in acc:
                acc[k] = fresh(v)
            elif shared is not None and k in shared:
                shared.discard(k)
                acc[k] = func(fresh(acc[k]), v)
            else:
                acc[k] = func(acc[k], v)

    def _reduce_times(self, times: list[int]) -> dict[Any, Any]:
        acc: dict[Any, Any] = {}
        for bt in times:
            self._merge_into(acc, self.batches[bt])
        return acc

    def result_at(self, t_ms: int) -> dict[Any, Any]:
        w, s = self.window_ms, self.slide_ms
        incremental = (self.inv_func is not None and self.prev_time is not None
                       and self.prev_time == t_ms - s and w >= 5 * s)
        if incremental:
            result = self.prev
            shared = None if self.additive else set(result)
            old_times = [bt for bt in self.batches if t_ms - s - w < bt <= t_ms - w]
            if old_times:
                old = self.batches[old_times[0]] if len(old_times) == 1 else \
                    self._reduce_times(old_times)
                self._subtract(result, old, shared)
            new_times = [bt for bt in self.batches if t_ms - s < bt <= t_ms]
            for bt in new_times:
                self._merge_into(result, self.batches[bt], shared)
            self.last_path = "incremental"
        else:
            result = self._reduce_times([bt for bt in self.batches if t_ms - w < bt <= t_ms])
            self.last_path = "recompute"
        if self.filter_func is not None and self.inv_func is not None:
            keep = self.filter_func
            result = {k: v for k, v in result.items() if keep((k, v))}
        self.prev_time, self.prev = t_ms, result
        self._evict(t_ms)
        return result

    def _subtract(self, acc: dict[Any, Any], old: dict[Any, Any],
                  shared: set[Any] | None = None) -> None:
        inv = self.inv_func
        assert inv is not None
        if self.additive:
            for k, v in old.items():
                if k in acc:
                    acc[k] = acc[k] - v
            return
        for k, v in old.items():
            if k not in acc:
                continue
            if shared is not None and k in shared:
                shared.discard(k)
                acc[k] = inv(fresh(acc[k]), v)
            else:
                acc[k] = inv(acc[k], v)

    def _evict(self, t_ms: int) -> None:
        # The next incremental step subtracts batches of the current window that leave it,
        # so keep everything in (t - window, t].
        horizon = t_ms - self.window_ms
        for bt in [bt for bt in self.batches if bt <= horizon]:
            del self.batches[bt]

    # ---- checkpoint data -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"batches": self._encoded.encode_all(self.batches), "prev_time": self.prev_time,
                "prev": list(self.prev.items())}

    def restore(self, data: dict[str, Any]) -> None:
        self.batches = self._encoded.decode_all(data["batches"])
        self.prev_time = data["prev_time"]
        self.prev = dict(data["prev"])


class EventWindow(NamedTuple):
    start: float
    end: float
    key: Any
    value: Any


class WindowBlock(NamedTuple):
    """A finalised event-time window whole: its keys in order and their values (the
    ``EventWindow`` rows of one window, without a tuple per key)."""

    start: float
    end: float
    keys: list[Any]
    values: list[Any]


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
    """Event-time window state: assign, drop the too-late, finalise by watermark.

    Windows are ``[k*slide, k*slide + window)`` of event time. The watermark is the newest
    event time seen minus the allowed lateness and only moves forward; :meth:`advance`
    (once per batch) emits every window whose end it has passed, once, as
    :class:`EventWindow` tuples sorted by (start, key), times in seconds. A record whose every
    window is already final when it arrives is dropped and counted (``late_records``). As
    long as records are at most the lateness behind the newest one, results do not depend on
    how records were spread over batches. Windows still open at shutdown are not emitted
    (Structured Streaming's append mode does the same); open windows and the watermark are
    checkpointed, so a resumed run continues them.

    Unlike Structured Streaming, the watermark that finalises windows is updated at the end
    of the same batch (not the next one), so results appear one batch earlier; which records
    are accepted does not change.

    State is one dict per open window (start -> key -> value): a pane of many records merges
    one value per key and window, and finalising takes whole windows without looking at the
    others. A window holds its own copy of each value (``fresh``), so ``reduce`` may update
    its first argument in place.
    """

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

    def _open_starts(self, ts_ms: int) -> range:
        """Starts of the windows holding ``ts_ms`` that the watermark has not finalised,
        newest first: multiples of the slide in ``(ts - window, ts]`` whose window ends after
        the watermark."""
        lowest = ts_ms - self.window_ms  # (exclusive)
        if self.watermark_ms is not None and self.watermark_ms - self.window_ms > lowest:
            lowest = self.watermark_ms - self.window_ms
        return range(ts_ms - ts_ms % self.slide_ms, lowest, -self.slide_ms)

    def add(self, ts_ms: int, key: Any, value: Any) -> bool:
        """Add one record; False (and counted) if all its windows are already final.
        (Called once per record by ``eventTimeWindow`` when it cannot sum records per pane
        first: kept free of calls it can avoid.)"""
        starts = self._open_starts(ts_ms)
        if not starts:
            self.late_records += 1
            return False
        windows, reduce = self.windows, self.reduce
        own = type(value) in _IMMUTABLE  # else each window gets its own copy
        for start in starts:
            d = windows.get(start)
            if d is None:
                windows[start] = {key: value if own else fresh(value)}
                continue
            cur = d.get(key, _MISSING)
            if cur is _MISSING:
                d[key] = value if own else fresh(value)
            else:
                d[key] = reduce(cur, value)
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
        kind = type(pane.values[0]) if pane.values else int
        immutable = kind in _IMMUTABLE
        for i, start in enumerate(starts):
            d = windows.get(start)
            if d is None:  # the first window takes the pane's values, the others copies
                if immutable or i == 0:
                    windows[start] = dict(items)
                elif kind is list:
                    windows[start] = {k: v[:] for k, v in items}
                else:
                    windows[start] = {k: fresh(v) for k, v in items}
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
        out: list[EventWindow] = []
        for block in self.advance_blocks():
            n = len(block.keys)
            # EventWindow(start, end, key, value) per key, built without a Python call per key
            out.extend(map(_new_window, zip(repeat(block.start, n), repeat(block.end, n),
                                            block.keys, block.values, strict=True)))
        return out

    def advance_blocks(self) -> list[WindowBlock]:
        """``advance``, one ``WindowBlock`` per window (no tuple per key)."""
        if self.max_event_ms is None:
            return []
        candidate = self.max_event_ms - self.lateness_ms
        if self.watermark_ms is None or candidate > self.watermark_ms:
            self.watermark_ms = candidate
        wm = self.watermark_ms
        out: list[WindowBlock] = []
        for start in sorted(s for s in self.windows if s + self.window_ms <= wm):
            values = self.windows.pop(start)
            keys = _key_order(values)
            out.append(WindowBlock(start / 1000.0, (start + self.window_ms) / 1000.0, keys,
                                   list(map(values.__getitem__, keys))))
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


class EncodedCache:
    """Pickles each retained batch once, as a checkpoint :class:`Blob`: batches never change
    after they are added, so a per-batch checkpoint encodes (and the store writes) only the
    newest one and refers to the others by name."""

    def __init__(self) -> None:
        self._bytes: dict[int, Blob] = {}

    def encode_all(self, batches: dict[int, Any]) -> list[tuple[int, Blob]]:
        cache = self._bytes
        for t in [t for t in cache if t not in batches]:
            del cache[t]
        out = []
        for t, data in batches.items():
            blob = cache.get(t)
            if blob is None:
                cache[t] = blob = Blob(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
            out.append((t, blob))
        return out

    def decode_all(self, encoded: list[tuple[int, Blob]]) -> dict[int, Any]:
        self._bytes = dict(encoded)
        return {t: pickle.loads(blob.data) for t, blob in encoded}
