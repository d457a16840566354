"""PURE aggregations for declarative jobs: how values of one key combine inside a window.

Each aggregation works on an *accumulator* and is described by five functions:

* ``batch(pairs)``: one batch's ``(key, value)`` pairs -> ``{key: accumulator}``, computed in
  one pass with in-place updates (the window then merges one partial per key per batch
  instead of one per record);
* ``lift(value)``: the accumulator of a single value (event-time windows fold records one by
  one);
* ``combine(a, b)``: merge ``b`` into ``a`` and return the result; it may update ``a`` in
  place (value counters do, so merging costs the size of ``b``, not of the window): the engine
  only hands it accumulators it owns (windows copy a value before its first merge, see
  ``consumer.engine.rdd.fresh``) and never changes ``b``;
* ``inverse(a, b)``: remove partial ``b`` from ``a`` (in place too), or ``None`` when the
  aggregation cannot be undone (min, max): such windows are recomputed from their batches
  each slide;
* ``keep(acc)``: False once a key has nothing left in the window (its records all slid out),
  so incremental windows drop it instead of reporting a zero (Spark's ``filterFunc``);
* ``finalize(acc)``: the reported value.

Sums of floats computed incrementally (add the new batch, subtract the old) can drift in the
last bits; integer sums are exact.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = ["AGGREGATIONS", "Aggregation", "make_aggregation", "rank_top_k"]

Pair = tuple[Any, Any]


@dataclass(frozen=True)
class Aggregation:
    name: str
    needs_value: bool
    numeric: bool  # values must be numbers (validation/extraction converts them)
    batch: Callable[[Iterable[Pair]], dict[Any, Any]]
    lift: Callable[[Any], Any]
    combine: Callable[[Any, Any], Any]
    inverse: Callable[[Any, Any], Any] | None
    keep: Callable[[Any], bool]
    finalize: Callable[[Any], Any]
    k: int = 10

    @property
    def final_is_value(self) -> bool:
        """The reported value is the accumulator itself (nothing to finalize)."""
        return self.finalize is _identity

    bags: bool = False  # accumulators are bags of counters (event-time top_k/distinct_count)

    def finalize_all(self, accs: list[Any]) -> list[Any]:
        """``finalize`` of each accumulator (a window's keys at once: top_k ranks them all
        in one sort)."""
        if self.bags:
            return rank_bags(accs, self.k) if self.name == "top_k" else count_bags(accs)
        if self.name == "top_k":
            return rank_top_k_all(accs, self.k)
        return list(map(self.finalize, accs))


def _count_batch(pairs: Iterable[Pair]) -> dict[Any, Any]:
    return dict(Counter(k for k, _ in pairs))


def _sum_batch(pairs: Iterable[Pair]) -> dict[Any, Any]:
    acc: dict[Any, list[Any]] = {}
    for k, v in pairs:
        slot = acc.get(k)
        if slot is None:
            acc[k] = [v, 1]
        else:
            slot[0] += v
            slot[1] += 1
    return {k: (s, n) for k, (s, n) in acc.items()}


def _sum_n_add(a: tuple[Any, int], b: tuple[Any, int]) -> tuple[Any, int]:
    return (a[0] + b[0], a[1] + b[1])


def _sum_n_sub(a: tuple[Any, int], b: tuple[Any, int]) -> tuple[Any, int]:
    return (a[0] - b[0], a[1] - b[1])


def _extreme_batch(pick: Callable[[Any, Any], Any]) -> Callable[[Iterable[Pair]], dict[Any, Any]]:
    def batch(pairs: Iterable[Pair]) -> dict[Any, Any]:
        acc: dict[Any, Any] = {}
        for k, v in pairs:
            acc[k] = v if k not in acc else pick(acc[k], v)
        return acc

    return batch


def _counter_batch(pairs: Iterable[Pair]) -> dict[Any, Any]:
    acc: dict[Any, Counter[Any]] = {}
    for k, v in pairs:
        c = acc.get(k)
        if c is None:
            acc[k] = c = Counter()
        c[v] += 1
    return acc


def _counter_add(a: Counter[Any], b: Counter[Any]) -> Counter[Any]:
    """``a + b`` for positive counts, updating ``a``: O(len(b)), not O(len(a) + len(b))."""
    get = a.get
    for value, n in b.items():  # Counter.update, minus its per-call checks
        a[value] = get(value, 0) + n
    return a


def _counter_sub(a: Counter[Any], b: Counter[Any]) -> Counter[Any]:
    """``a - b`` for positive counts, updating ``a``: values whose count reaches 0 go (exact,
    no drift)."""
    if a is b:
        a.clear()
        return a
    for value, n in b.items():
        left = a.get(value, 0) - n
        if left > 0:
            a[value] = left
        else:
            a.pop(value, None)
    return a


def rank_top_k(counts: Counter[Any], k: int) -> list[tuple[Any, int]]:
    """The ``k`` most frequent values, count descending, ties by ``str(value)`` (stable).

    Sorts only the values that can make the top ``k`` (count at least the k-th largest),
    by value text and then by count (both stable): one row per key per window, so this
    runs as often as rows are written."""
    items = list(counts.items())
    if len(items) < 2 and k > 0:
        return items
    if k <= 0:
        return sorted(items, key=lambda vc: (-vc[1], str(vc[0])))[:k]
    if len(items) > k:
        kth = heapq.nlargest(k, counts.values())[-1]
        items = [vc for vc in items if vc[1] >= kth]
    if set(map(type, counts)) == {str}:
        items.sort(key=_first)
    else:
        items.sort(key=lambda vc: str(vc[0]))
    items.sort(key=_second, reverse=True)
    return items[:k]


_first, _second = operator.itemgetter(0), operator.itemgetter(1)


def rank_top_k_all(accs: list[Counter[Any]], k: int) -> list[list[tuple[Any, int]]]:
    """``rank_top_k`` of many counters (a window's keys) in one polars sort: count
    descending, then value text, within each counter. Counters whose values are not all
    strings (or all integers) of one type are ranked one by one."""
    if k <= 0 or len(accs) < 64:
        return [rank_top_k(acc, k) for acc in accs]
    kinds = set(map(type, itertools.chain.from_iterable(accs)))
    if kinds not in ({str}, {int}):
        return [rank_top_k(acc, k) for acc in accs]
    sizes = list(map(len, accs))
    values = list(itertools.chain.from_iterable(accs))
    frame = pl.DataFrame({
        "g": pl.Series(range(len(accs)), dtype=pl.UInt32).repeat_by(
            pl.Series(sizes, dtype=pl.UInt32)).explode(),
        "v": values,
        "n": list(itertools.chain.from_iterable(acc.values() for acc in accs)),
    }, strict=False)
    text = pl.col("v") if kinds == {str} else pl.col("v").cast(pl.String)
    top = (frame.sort(["g", "n", text], descending=[False, True, False], maintain_order=True)
           .group_by("g", maintain_order=True).head(k))
    ranked = top["v"].to_list(), top["n"].to_list()
    out, i = [], 0
    for size in sizes:  # head(k) kept min(size, k) rows of each counter, in counter order
        m = min(size, k)
        out.append(list(zip(ranked[0][i:i + m], ranked[1][i:i + m], strict=True)))
        i += m
    return out


# ---- bags of counters: top_k and distinct_count over event-time windows -------------------
# A window holds the list of the value counters merged into it (a pane's counter is shared by
# the pane's windows, never changed), and merges them once, when the window is final: all the
# window's keys in one polars group-by. Adding a pane to a window costs O(1) per key instead
# of a Python loop over its values; memory holds each pane's counter once, not a merged copy
# per window.
Bag = list[Counter[Any]]


def _bag_extend(a: Bag, b: Bag) -> Bag:
    a.extend(b)
    return a


def _merged(bag: Bag) -> Counter[Any]:
    total: Counter[Any] = Counter()
    for counter in bag:
        _counter_add(total, counter)
    return total


def _bag_frame(bags: list[Bag]) -> tuple[pl.DataFrame, set[type]] | None:
    """Every key's value counts (``g`` the key's index), summed; None when the values are
    not all strings or all integers (then the bags are merged one by one)."""
    counters = list(itertools.chain.from_iterable(bags))
    kinds = set(map(type, itertools.chain.from_iterable(counters)))
    if kinds not in ({str}, {int}):
        return None
    per_bag = [sum(map(len, bag)) for bag in bags]
    frame = pl.DataFrame({
        "g": pl.Series(range(len(bags)), dtype=pl.UInt32).repeat_by(
            pl.Series(per_bag, dtype=pl.UInt32)).explode(),
        "v": list(itertools.chain.from_iterable(counters)),
        "n": list(itertools.chain.from_iterable(c.values() for c in counters)),
    }, strict=False)
    return frame.group_by(["g", "v"]).agg(pl.col("n").sum()), kinds


def rank_bags(bags: list[Bag], k: int) -> list[list[tuple[Any, int]]]:
    """``rank_top_k`` of each bag's merged counter, a window's keys at once."""
    summed = _bag_frame(bags) if k > 0 and len(bags) >= 64 else None
    if summed is None:
        return [rank_top_k(_merged(bag), k) for bag in bags]
    frame, kinds = summed
    text = pl.col("v") if kinds == {str} else pl.col("v").cast(pl.String)
    top = (frame.sort(["g", "n", text], descending=[False, True, False])
           .group_by("g", maintain_order=True).head(k))
    ranked = list(zip(top["v"].to_list(), top["n"].to_list(), strict=True))
    sizes = dict(top.group_by("g").len().iter_rows())
    out, i = [], 0
    for g in range(len(bags)):  # rows are in key order, at most k per key
        m = sizes.get(g, 0)
        out.append(ranked[i:i + m])
        i += m
    return out


def count_bags(bags: list[Bag]) -> list[int]:
    """Distinct values of each bag's merged counter, a window's keys at once."""
    summed = _bag_frame(bags) if len(bags) >= 64 else None
    if summed is None:
        return [len(_merged(bag)) for bag in bags]
    per_key = summed[0].group_by("g").len()
    out = [0] * len(bags)
    for g, n in zip(per_key["g"].to_list(), per_key["len"].to_list(), strict=True):
        out[g] = n
    return out


def _always(_acc: Any) -> bool:
    return True


def _positive(acc: Any) -> bool:
    return bool(acc > 0)


def _has_records(acc: tuple[Any, int]) -> bool:
    return acc[1] > 0


def _nonempty(acc: Counter[Any]) -> bool:
    return len(acc) > 0


def _identity(x: Any) -> Any:
    return x


def _mean(acc: tuple[Any, int]) -> float:
    return float(acc[0]) / acc[1]


AGGREGATIONS = ("count", "sum", "avg", "min", "max", "distinct_count", "top_k")


def make_aggregation(name: str, k: int = 10, event_time: bool = False) -> Aggregation:
    """The aggregation called ``name`` (``k`` only matters for ``top_k``). ``event_time``:
    for event-time windows, where top_k and distinct_count keep bags of counters (nothing
    ever subtracts from an event-time window)."""
    if event_time and name in ("top_k", "distinct_count"):
        finalize = ((lambda bag: rank_top_k(_merged(bag), k)) if name == "top_k"
                    else (lambda bag: len(_merged(bag))))
        return Aggregation(name, True, False, _counter_batch, lambda v: [Counter({v: 1})],
                           _bag_extend, None, _nonempty, finalize, k, bags=True)
    if name == "count":
        return Aggregation("count", False, False, _count_batch, lambda _v: 1, operator.add,
                           operator.sub, _positive, _identity)
    if name in ("sum", "avg"):
        return Aggregation(name, True, True, _sum_batch, lambda v: (v, 1), _sum_n_add,
                           _sum_n_sub, _has_records,
                           (lambda acc: acc[0]) if name == "sum" else _mean)
    if name in ("min", "max"):
        pick = min if name == "min" else max
        return Aggregation(name, True, True, _extreme_batch(pick), _identity, pick, None,
                           _always, _identity)
    if name == "distinct_count":
        return Aggregation(name, True, False, _counter_batch, lambda v: Counter({v: 1}),
                           _counter_add, _counter_sub, _nonempty, len)
    if name == "top_k":
        return Aggregation(name, True, False, _counter_batch, lambda v: Counter({v: 1}),
                           _counter_add, _counter_sub, _nonempty,
                           lambda acc: rank_top_k(acc, k), k)
    raise ValueError(f"unknown aggregation {name!r}")
