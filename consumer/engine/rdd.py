"""A list-backed stand-in for ``pyspark.RDD``: one batch's data, with PySpark's method names.

Everything runs in this process, eagerly, over a plain list: a streaming batch is small
enough, and a list comprehension is far cheaper than any distributed machinery. Semantics
follow PySpark (argument names, defaults, error texts, what each method returns); element
order follows the input order (Spark's order after a shuffle is unspecified, so any order is
a valid Spark order, and ours is deterministic).

Deliberately no ``__len__``/``__bool__``: PySpark RDDs are always truthy, and user code such
as ``a.union(b) if a else b`` relies on that.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from consumer.engine.windows import fresh

__all__ = ["RDD", "ResultIterable", "reduce_pairs"]


class ResultIterable(list[Any]):
    """The grouped values of ``groupByKey``/``cogroup`` (a list; PySpark's is list-like too)."""

    @property
    def data(self) -> list[Any]:
        return list(self)

    @property
    def maxindex(self) -> int:
        return len(self)


def _identity(x: Any) -> Any:
    return x


class RDD:
    """One batch of data. ``num_partitions`` is informational except that an RDD with zero
    partitions (an empty receiver batch, ``emptyRDD``) makes ``mapPartitions`` call its
    function zero times, as Spark does (so ``DStream.count()`` emits nothing for it)."""

    __slots__ = ("_data", "_num_partitions", "ctx")

    def __init__(self, data: Iterable[Any] = (), ctx: Any = None, num_partitions: int = 1) -> None:
        self._data: list[Any] = data if isinstance(data, list) else list(data)
        self._num_partitions = num_partitions
        self.ctx = ctx

    def _new(self, data: list[Any], num_partitions: int | None = None) -> RDD:
        n = self._num_partitions if num_partitions is None else num_partitions
        return RDD(data, self.ctx, n)

    def __repr__(self) -> str:
        return f"RDD({len(self._data)} elements)"

    # ---- transformations -------------------------------------------------------------
    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> RDD:
        return self._new(list(map(f, self._data)))

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> RDD:
        return self._new(list(itertools.chain.from_iterable(map(f, self._data))))

    def filter(self, f: Callable[[Any], Any]) -> RDD:
        return self._new(list(filter(f, self._data)))

    def mapValues(self, f: Callable[[Any], Any]) -> RDD:
        return self._new([(k, f(v)) for k, v in self._data])

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> RDD:
        return self._new([(k, x) for k, v in self._data for x in f(v)])

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> RDD:
        return self.mapPartitionsWithIndex(lambda _i, it: f(it), preservesPartitioning)

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> RDD:
        if self._num_partitions == 0:
            return self._new([])
        out = f(0, iter(self._data))
        return self._new([] if out is None else list(out))

    def glom(self) -> RDD:
        return self._new([list(self._data)] if self._num_partitions else [])

    def keys(self) -> RDD:
        return self._new([kv[0] for kv in self._data])

    def values(self) -> RDD:
        return self._new([kv[1] for kv in self._data])

    def keyBy(self, f: Callable[[Any], Any]) -> RDD:
        return self._new([(f(x), x) for x in self._data])

    def combineByKey(self, createCombiner: Callable[[Any], Any],
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any] | None = None,
                     numPartitions: int | None = None, partitionFunc: Any = None) -> RDD:
        acc: dict[Any, Any] = {}
        for k, v in self._data:
            if k in acc:
                acc[k] = mergeValue(acc[k], v)
            else:
                acc[k] = createCombiner(v)
        return self._new(list(acc.items()))

    def reduceByKey(self, func: Callable[[Any, Any], Any], numPartitions: int | None = None,
                    partitionFunc: Any = None) -> RDD:
        return self._new(list(reduce_pairs(self._data, func).items()))

    def foldByKey(self, zeroValue: Any, func: Callable[[Any, Any], Any],
                  numPartitions: int | None = None, partitionFunc: Any = None) -> RDD:
        acc: dict[Any, Any] = {}
        for k, v in self._data:
            acc[k] = func(acc.get(k, zeroValue), v)
        return self._new(list(acc.items()))

    def aggregateByKey(self, zeroValue: Any, seqFunc: Callable[[Any, Any], Any],
                       combFunc: Callable[[Any, Any], Any], numPartitions: int | None = None,
                       partitionFunc: Any = None) -> RDD:
        return self.foldByKey(zeroValue, seqFunc)

    def groupByKey(self, numPartitions: int | None = None, partitionFunc: Any = None) -> RDD:
        groups: dict[Any, ResultIterable] = {}
        for k, v in self._data:
            g = groups.get(k)
            if g is None:
                groups[k] = g = ResultIterable()
            g.append(v)
        return self._new(list(groups.items()))

    def groupBy(self, f: Callable[[Any], Any], numPartitions: int | None = None,
                partitionFunc: Any = None) -> RDD:
        return self.keyBy(f).groupByKey()

    def sortBy(self, keyfunc: Callable[[Any], Any], ascending: bool = True,
               numPartitions: int | None = None) -> RDD:
        return self._new(sorted(self._data, key=keyfunc, reverse=not ascending))

    def sortByKey(self, ascending: bool = True, numPartitions: int | None = None,
                  keyfunc: Callable[[Any], Any] = _identity) -> RDD:
        return self._new(sorted(self._data, key=lambda kv: keyfunc(kv[0]), reverse=not ascending))

    def distinct(self, numPartitions: int | None = None) -> RDD:
        return self._new(list(dict.fromkeys(self._data)))

    def union(self, other: RDD) -> RDD:
        return RDD(self._data + other._data, self.ctx,
                   self._num_partitions + other._num_partitions)

    def cogroup(self, other: RDD, numPartitions: int | None = None) -> RDD:
        groups: dict[Any, tuple[ResultIterable, ResultIterable]] = {}
        for side, data in ((0, self._data), (1, other._data)):
            for k, v in data:
                g = groups.get(k)
                if g is None:
                    groups[k] = g = (ResultIterable(), ResultIterable())
                g[side].append(v)
        return self._new(list(groups.items()))

    def _join(self, other: RDD, need_left: bool, need_right: bool) -> RDD:
        out: list[Any] = []
        for k, (left, right) in self.cogroup(other)._data:
            if (need_left and not left) or (need_right and not right):
                continue
            out.extend((k, (a, b)) for a in (left or [None]) for b in (right or [None]))
        return self._new(out)

    def join(self, other: RDD, numPartitions: int | None = None) -> RDD:
        return self._join(other, need_left=True, need_right=True)

    def leftOuterJoin(self, other: RDD, numPartitions: int | None = None) -> RDD:
        return self._join(other, need_left=True, need_right=False)

    def rightOuterJoin(self, other: RDD, numPartitions: int | None = None) -> RDD:
        return self._join(other, need_left=False, need_right=True)

    def fullOuterJoin(self, other: RDD, numPartitions: int | None = None) -> RDD:
        return self._join(other, need_left=False, need_right=False)

    def subtractByKey(self, other: RDD, numPartitions: int | None = None) -> RDD:
        drop = {kv[0] for kv in other._data}
        return self._new([kv for kv in self._data if kv[0] not in drop])

    def subtract(self, other: RDD, numPartitions: int | None = None) -> RDD:
        drop = set(other._data)
        return self._new([x for x in self._data if x not in drop])

    def intersection(self, other: RDD) -> RDD:
        keep = set(other._data)
        return self._new([x for x in dict.fromkeys(self._data) if x in keep])

    def zipWithIndex(self) -> RDD:
        return self._new([(x, i) for i, x in enumerate(self._data)])

    def partitionBy(self, numPartitions: int | None, partitionFunc: Any = None) -> RDD:
        """No-op: there is one process, hence nothing to partition."""
        return self

    def repartition(self, numPartitions: int) -> RDD:
        return self

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> RDD:
        return self

    def cache(self) -> RDD:
        return self

    def persist(self, storageLevel: Any = None) -> RDD:
        return self

    def unpersist(self, blocking: bool = False) -> RDD:
        return self

    def checkpoint(self) -> None:
        return None

    # ---- actions ---------------------------------------------------------------------
    def collect(self) -> list[Any]:
        return list(self._data)

    def collectAsMap(self) -> dict[Any, Any]:
        return dict(self._data)

    def count(self) -> int:
        return len(self._data)

    def isEmpty(self) -> bool:
        return not self._data

    def take(self, num: int) -> list[Any]:
        return self._data[:num]

    def first(self) -> Any:
        if not self._data:
            raise ValueError("RDD is empty")
        return self._data[0]

    def takeOrdered(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        return heapq.nsmallest(num, self._data, key=key)

    def top(self, num: int, key: Callable[[Any], Any] | None = None) -> list[Any]:
        return heapq.nlargest(num, self._data, key=key)

    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        if not self._data:
            raise ValueError("Can not reduce() empty RDD")
        it = iter(self._data)
        acc = next(it)
        for x in it:
            acc = f(acc, x)
        return acc

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        acc = zeroValue
        for x in self._data:
            acc = op(acc, x)
        return acc

    def aggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                  combOp: Callable[[Any, Any], Any]) -> Any:
        return self.fold(zeroValue, seqOp)

    def sum(self) -> Any:
        return self.fold(0, operator.add)

    def max(self, key: Callable[[Any], Any] | None = None) -> Any:
        return max(self._data, key=key) if key else max(self._data)

    def min(self, key: Callable[[Any], Any] | None = None) -> Any:
        return min(self._data, key=key) if key else min(self._data)

    def mean(self) -> float:
        return float(self.sum()) / len(self._data) if self._data else float("nan")

    def countByKey(self) -> defaultdict[Any, int]:
        counts: defaultdict[Any, int] = defaultdict(int)
        for kv in self._data:
            counts[kv[0]] += 1
        return counts

    def countByValue(self) -> defaultdict[Any, int]:
        counts: defaultdict[Any, int] = defaultdict(int)
        for x in self._data:
            counts[x] += 1
        return counts

    def lookup(self, key: Any) -> list[Any]:
        return [v for k, v in self._data if k == key]

    def foreach(self, f: Callable[[Any], Any]) -> None:
        for x in self._data:
            f(x)

    def foreachPartition(self, f: Callable[[Iterator[Any]], Any]) -> None:
        if self._num_partitions:
            f(iter(self._data))

    def getNumPartitions(self) -> int:
        return self._num_partitions

    def saveAsTextFile(self, path: str, compressionCodecClass: Any = None) -> None:
        """Write ``str(element)`` lines to ``path/part-00000`` plus ``_SUCCESS``, as Spark's
        output committer lays them out (one part file: there is one partition here)."""
        if os.path.exists(path):
            raise FileExistsError(f"Output directory {path} already exists")
        os.makedirs(path)
        with open(os.path.join(path, "part-00000"), "w", encoding="utf-8") as fh:
            fh.writelines(f"{x}\n" for x in self._data)
        open(os.path.join(path, "_SUCCESS"), "w").close()


def reduce_pairs(pairs: Iterable[Any], func: Callable[[Any, Any], Any]) -> dict[Any, Any]:
    """Fold ``(key, value)`` pairs into a dict with ``func`` (insertion order = first sight);
    each key's first value is copied (``fresh``), so ``func`` may update it in place."""
    acc: dict[Any, Any] = {}
    for k, v in pairs:
        if k in acc:
            acc[k] = func(acc[k], v)
        else:
            acc[k] = fresh(v)
    return acc
