"""PURE: a slide's results cut into windows, each window's rows ranked, the top kept.

A processing-time job closes one window per slide; an event-time job closes any number (a
file dropped at once closes many), so every reader of results (the console, the web UI, the
terminal view) goes through :func:`top_per_window`: one :class:`WindowTop` per window, in
time order, each with its own top N. Ranking is deterministic, unlike Spark's ``sortBy``:
numeric values descending, ties (and non-numeric values) by the key's text.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from consumer.engine.windows import EventWindow

__all__ = ["WindowTop", "rank_key", "rank_results", "top_of_window", "top_per_window"]


def _rank(value: Any, key: Any) -> tuple[Any, ...]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, -value, str(key))
    return (1, 0, str(key))


def rank_key(row: Any) -> tuple[Any, ...]:
    """Sort key of a result row: ``EventWindow`` rows first by window start."""
    if isinstance(row, EventWindow):
        return (row.start, *_rank(row.value, row.key))
    return _rank(row[1], row[0])


def rank_results(rows: Iterable[Any]) -> list[Any]:
    """All rows in console order."""
    return sorted(rows, key=rank_key)


@dataclass(frozen=True)
class WindowTop:
    """One closed window: bounds in epoch ms, its ``top`` rows ranked (the rows as the job
    produced them: ``(key, value)`` or ``EventWindow``), and how many keys it had."""

    start_ms: int
    end_ms: int
    top: tuple[Any, ...]
    keys: int

    def pairs(self) -> list[tuple[Any, Any]]:
        """The top rows as ``(key, value)``."""
        return [(r.key, r.value) if isinstance(r, EventWindow) else (r[0], r[1])
                for r in self.top]


def _bounds(row: EventWindow) -> tuple[float, float]:
    return row.start, row.end


def top_per_window(rows: Sequence[Any], n: int, window: tuple[int, int] | None = None,
                   ) -> list[WindowTop]:
    """Rows of one slide -> its windows in time order, each with its top ``n``.

    ``window``: the bounds of a processing-time slide's one window (``(key, value)`` rows,
    reported even when empty); None for ``EventWindow`` rows, which carry their bounds (a
    slide may close none)."""
    if window is not None:
        top = heapq.nsmallest(n, rows, key=rank_key)
        return [WindowTop(window[0], window[1], tuple(top), len(rows))]
    out = []
    for (lo, hi), group in groupby(sorted(rows, key=_bounds), key=_bounds):
        members = list(group)
        top = heapq.nsmallest(n, members, key=rank_key)
        out.append(WindowTop(round(lo * 1000), round(hi * 1000), tuple(top), len(members)))
    return out


def top_of_window(start: float, end: float, keys: Sequence[Any], values: Sequence[Any],
                  n: int) -> WindowTop:
    """One event-time window given as columns (the engine's ``WindowBlock``) -> the same
    :class:`WindowTop` as :func:`top_per_window` gives for its rows. A window can hold 10^5
    keys and a batch close dozens of windows, so integer values (counts) take a fast path: the
    n-th largest value is found first and only the keys at or above it are ranked."""
    if n > 0 and values and all(type(v) is int for v in values):
        chosen = _top_ints(keys, values, n)
    else:
        chosen = heapq.nsmallest(n, zip(keys, values, strict=True), key=_pair_rank)
    rows = tuple(EventWindow(start, end, k, v) for k, v in chosen)
    return WindowTop(round(start * 1000), round(end * 1000), rows, len(keys))


def _pair_rank(kv: tuple[Any, Any]) -> tuple[Any, ...]:
    return _rank(kv[1], kv[0])


def _top_ints(keys: Sequence[Any], values: Sequence[int], n: int) -> list[tuple[Any, int]]:
    """The n best ``(key, value)`` by value descending, then key text, then position (what
    ``heapq.nsmallest(n, pairs, key=_pair_rank)`` picks): fewer than n values lie above the
    n-th largest, and the rest are its ties with the smallest key texts."""
    threshold = sorted(values, reverse=True)[min(n, len(values)) - 1]
    candidates = [(k, v) for k, v in zip(keys, values, strict=True) if v >= threshold]
    above = sorted((kv for kv in candidates if kv[1] > threshold), key=_pair_rank)
    tied = [k for k, v in candidates if v == threshold]
    return above + [(k, threshold) for k in heapq.nsmallest(n - len(above), tied, key=str)]
