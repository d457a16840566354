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

Durations are integer milliseconds here; the API layer converts seconds with
``int(seconds * 1000)`` as PySpark does.
"""

from __future__ import annotations

import operator
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from consumer.engine.checkpoint import Blob
from consumer.engine.rdd import fresh

__all__ = [
    "BatchWindow",
    "ReducedWindow",
    "check_window",
    "is_valid_time",
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
