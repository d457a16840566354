"""DStream: pyspark.streaming's API over list-backed RDDs, and the graph nodes behind it.

Each DStream is also a node of its context's :class:`~consumer.engine.graph.StreamGraph`
(the engine knows it only through the ``Node`` protocol there), which the
:class:`~consumer.engine.scheduler.JobScheduler` runs: at batch time ``t`` a node whose
parents produced RDDs at ``t`` gets
``_step(t, parent_rdds)`` and returns its RDD for ``t``, or ``None`` when ``t`` is not one of
its slide times (windowed streams). Node ids are creation order, so re-running the same setup
code rebuilds the same ids: that is how checkpoints find their state again.
"""

from __future__ import annotations

import inspect
import operator
import time as _time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common.console import write_block
from consumer.engine.rdd import RDD, ResultIterable
from consumer.engine.state import MapWithStateStore, StateSpec, UpdateStateStore
from consumer.engine.windows import (
    BatchWindow,
    EventTimeWindows,
    Pane,
    ReducedWindow,
    check_window,
    is_valid_time,
    to_ms,
)

if TYPE_CHECKING:
    from consumer.streaming.context import StreamingContext

__all__ = ["DStream"]


def batch_datetime(t_ms: int) -> datetime:
    """The ``time`` argument PySpark hands to transform/foreachRDD functions."""
    return datetime.fromtimestamp(t_ms / 1000.0)


def arity(func: Callable[..., Any]) -> int:
    """Positional parameter count; PySpark reads ``__code__.co_argcount`` (which miscounts
    bound methods, so those go through ``inspect``)."""
    code = getattr(func, "__code__", None)
    if code is not None and not inspect.ismethod(func):
        return int(code.co_argcount)
    params = inspect.signature(func).parameters.values()
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def rdd_to_file_name(prefix: str, suffix: str | None, t_ms: int) -> str:
    """PySpark's ``rddToFileName``: ``prefix-<ms>[.suffix]``."""
    name = f"{prefix}-{t_ms}"
    return name if suffix is None else f"{name}.{suffix}"


class DStream:
    """A discretized stream: one RDD per slide time."""

    _is_input = False
    _is_output = False

    def __init__(self, ssc: StreamingContext, parents: Iterable[DStream] = (),
                 slide_ms: int | None = None) -> None:
        self._ssc = ssc
        self.ctx = ssc.sparkContext
        self._sc = self.ctx
        self._parents: list[DStream] = list(parents)
        if slide_ms is None:
            slide_ms = self._parents[0]._slide_ms if self._parents else ssc.graph.batch_ms
        self._slide_ms: int = slide_ms
        self._zero_ms: int | None = None
        self._must_checkpoint = False
        self._checkpoint_ms: int | None = None
        self._generated: dict[int, RDD] = {}
        self.is_cached = False
        self.is_checkpointed = False
        self._id: int = ssc.graph.add(self)

    # ---- engine hooks ----------------------------------------------------------------
    def _initialize(self, zero_ms: int) -> None:
        self._zero_ms = zero_ms

    def _valid(self, t_ms: int) -> bool:
        assert self._zero_ms is not None
        return is_valid_time(t_ms, self._zero_ms, self._slide_ms)

    def _step(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None:
        return self._compute(t_ms, parent_rdds)

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None:
        raise NotImplementedError

    def _snapshot(self) -> Any:
        """Plain data to checkpoint, or None for stateless nodes."""
        return None

    def _restore(self, data: Any) -> None:
        return None

    def _has_state(self) -> bool:
        return False

    def _describe(self) -> str:
        parents = ",".join(str(p._id) for p in self._parents)
        return f"{type(self).__name__}[{parents}]/{self._slide_ms}"

    @property
    def _slideDuration(self) -> float:
        return self._slide_ms / 1000.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} #{self._id} slide={self._slide_ms}ms>"

    # ---- basic transformations -------------------------------------------------------
    def context(self) -> StreamingContext:
        return self._ssc

    def _rdd_op(self, op: Callable[[RDD], RDD]) -> DStream:
        return TransformedDStream(self, lambda _t, rdd: op(rdd), with_time=False)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> DStream:
        return self._rdd_op(lambda rdd: rdd.map(f))

    def flatMap(self, f: Callable[[Any], Iterable[Any]],
                preservesPartitioning: bool = False) -> DStream:
        return self._rdd_op(lambda rdd: rdd.flatMap(f))

    def filter(self, f: Callable[[Any], Any]) -> DStream:
        return self._rdd_op(lambda rdd: rdd.filter(f))

    def mapValues(self, f: Callable[[Any], Any]) -> DStream:
        return self._rdd_op(lambda rdd: rdd.mapValues(f))

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._rdd_op(lambda rdd: rdd.flatMapValues(f))

    def mapPartitions(self, f: Callable[[Any], Iterable[Any]],
                      preservesPartitioning: bool = False) -> DStream:
        return self._rdd_op(lambda rdd: rdd.mapPartitions(f))

    def mapPartitionsWithIndex(self, f: Callable[[int, Any], Iterable[Any]],
                               preservesPartitioning: bool = False) -> DStream:
        return self._rdd_op(lambda rdd: rdd.mapPartitionsWithIndex(f))

    def glom(self) -> DStream:
        return self._rdd_op(lambda rdd: rdd.glom())

    def count(self) -> DStream:
        """Per batch, one element: the count. Like PySpark (per-partition counts then a
        reduce), a batch with no partitions (empty receiver batch) yields no element."""
        return self._rdd_op(
            lambda rdd: rdd._new([len(rdd._data)]) if rdd._num_partitions else rdd._new([]))

    def reduce(self, func: Callable[[Any, Any], Any]) -> DStream:
        return self._rdd_op(
            lambda rdd: rdd._new([rdd.reduce(func)], 1) if rdd._data else rdd._new([]))

    def reduceByKey(self, func: Callable[[Any, Any], Any],
                    numPartitions: int | None = None) -> DStream:
        return self._rdd_op(lambda rdd: rdd.reduceByKey(func))

    def combineByKey(self, createCombiner: Callable[[Any], Any],
                     mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: int | None = None) -> DStream:
        return self._rdd_op(lambda rdd: rdd.combineByKey(createCombiner, mergeValue,
                                                         mergeCombiners))

    def groupByKey(self, numPartitions: int | None = None) -> DStream:
        return self._rdd_op(lambda rdd: rdd.groupByKey())

    def countByValue(self) -> DStream:
        """``(value, count)`` per distinct value (PySpark: map to (x, 1) and reduceByKey)."""
        return self._rdd_op(lambda rdd: rdd._new(list(Counter(rdd._data).items())))

    def partitionBy(self, numPartitions: int, partitionFunc: Any = None) -> DStream:
        return self._rdd_op(lambda rdd: rdd)

    def repartition(self, numPartitions: int) -> DStream:
        return self._rdd_op(lambda rdd: rdd)

    def cache(self) -> DStream:
        self.is_cached = True
        return self

    def persist(self, storageLevel: Any = None) -> DStream:
        self.is_cached = True
        return self

    def checkpoint(self, interval: float) -> DStream:
        """Checkpoint every ``interval`` seconds (a multiple of the slide). flumelet
        checkpoints every batch by default; when every stateful stream sets a longer
        interval, checkpoints (and so the acknowledgements receivers wait for) come at that
        interval instead, trading recovery work for throughput as in Spark."""
        self.is_checkpointed = True
        self._checkpoint_ms = to_ms(interval)
        return self

    def transform(self, func: Callable[..., RDD]) -> DStream:
        """``func(rdd)`` or ``func(time, rdd)`` (``time`` a ``datetime``) returning an RDD."""
        n = arity(func)
        if n == 1:
            return TransformedDStream(self, lambda _t, rdd: func(rdd), with_time=False)
        if n != 2:
            raise ValueError("func should take one or two arguments")
        return TransformedDStream(self, func, with_time=True)

    def transformWith(self, func: Callable[..., RDD], other: DStream,
                      keepSerializer: bool = False) -> DStream:
        """``func(rdd_a, rdd_b)`` or ``func(time, rdd_a, rdd_b)``."""
        n = arity(func)
        if n == 2:
            return TransformedDStream([self, other], lambda _t, a, b: func(a, b),
                                      with_time=False)
        if n != 3:
            raise ValueError("func should take two or three arguments")
        return TransformedDStream([self, other], func, with_time=True)

    def union(self, other: DStream) -> DStream:
        if self._slide_ms != other._slide_ms:
            raise ValueError("the two DStream should have same slide duration")
        return self.transformWith(lambda a, b: a.union(b), other, True)

    def cogroup(self, other: DStream, numPartitions: int | None = None) -> DStream:
        return self.transformWith(lambda a, b: a.cogroup(b), other)

    def join(self, other: DStream, numPartitions: int | None = None) -> DStream:
        return self.transformWith(lambda a, b: a.join(b), other)

    def leftOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        return self.transformWith(lambda a, b: a.leftOuterJoin(b), other)

    def rightOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        return self.transformWith(lambda a, b: a.rightOuterJoin(b), other)

    def fullOuterJoin(self, other: DStream, numPartitions: int | None = None) -> DStream:
        return self.transformWith(lambda a, b: a.fullOuterJoin(b), other)

    # ---- output operations -----------------------------------------------------------
    def foreachRDD(self, func: Callable[..., Any]) -> None:
        """``func(rdd)`` or ``func(time, rdd)``; registers an output operation."""
        if arity(func) == 1:
            one = func
            ForEachDStream(self, lambda _t, rdd: one(rdd), with_time=False)
        else:
            ForEachDStream(self, func, with_time=True)

    def pprint(self, num: int = 10) -> None:
        """Print the first ``num`` elements of each RDD, byte for byte as PySpark does."""

        def take_and_print(when: datetime, rdd: RDD) -> None:
            taken = rdd.take(num + 1)
            lines = ["-------------------------------------------", f"Time: {when}",
                     "-------------------------------------------"]
            lines.extend(str(record) for record in taken[:num])
            if len(taken) > num:
                lines.append("...")
            lines.append("")
            write_block("\n".join(lines))

        ForEachDStream(self, take_and_print, with_time=True)

    def saveAsTextFiles(self, prefix: str, suffix: str | None = None) -> None:
        """Each RDD to ``prefix-<time in ms>[.suffix]/part-00000``."""

        def save(when: datetime, rdd: RDD) -> None:
            t_ms = int(_time.mktime(when.timetuple())) * 1000 + when.microsecond // 1000
            rdd.saveAsTextFile(rdd_to_file_name(prefix, suffix, t_ms))

        ForEachDStream(self, save, with_time=True)

    # ---- slices ----------------------------------------------------------------------
    def slice(self, begin: datetime | float, end: datetime | float) -> list[RDD]:
        """RDDs this stream generated between ``begin`` and ``end`` (both included) that are
        still remembered (see ``StreamingContext.remember``)."""

        def ms(x: datetime | float) -> int:
            if isinstance(x, datetime):
                return int(_time.mktime(x.timetuple()) * 1000) + x.microsecond // 1000
            return int(x * 1000)

        lo, hi = ms(begin), ms(end)
        return [rdd for t, rdd in sorted(self._generated.items()) if lo <= t <= hi]

    # ---- windows ---------------------------------------------------------------------
    def _validate_window_param(self, window: float, slide: float | None) -> None:
        check_window(window, slide, self._slide_ms)

    def window(self, windowDuration: float, slideDuration: float | None = None) -> DStream:
        self._validate_window_param(windowDuration, slideDuration)
        slide_ms = to_ms(slideDuration) if slideDuration else self._slide_ms
        return WindowedDStream(self, to_ms(windowDuration), slide_ms)

    def reduceByWindow(self, reduceFunc: Callable[[Any, Any], Any],
                       invReduceFunc: Callable[[Any, Any], Any] | None,
                       windowDuration: float, slideDuration: float) -> DStream:
        keyed = self.map(lambda x: (1, x))
        reduced = keyed.reduceByKeyAndWindow(reduceFunc, invReduceFunc, windowDuration,
                                             slideDuration, 1)
        return reduced.map(lambda kv: kv[1])

    def countByWindow(self, windowDuration: float, slideDuration: float) -> DStream:
        return self.map(lambda x: 1).reduceByWindow(operator.add, operator.sub,
                                                    windowDuration, slideDuration)

    def countByValueAndWindow(self, windowDuration: float, slideDuration: float,
                              numPartitions: int | None = None) -> DStream:
        """PySpark's ``map((x, 1)).reduceByKeyAndWindow(add, sub).filter(count > 0)``, with the
        per-batch counting done by ``collections.Counter`` (the fast path; same results)."""
        self._validate_window_param(windowDuration, slideDuration)
        counted = ReducedWindowedDStream(
            self, operator.add, operator.sub, None, to_ms(windowDuration),
            to_ms(slideDuration) if slideDuration else self._slide_ms, count_values=True)
        return counted.filter(lambda kv: kv[1] > 0)

    def countByKeyAndWindow(self, windowDuration: float, slideDuration: float | None = None,
                            ) -> DStream:
        """flumelet extension, the declarative fast path: ``(key, count)`` of the stream's
        elements over the window, zero counts dropped. Equals
        ``map(lambda k: (k, 1)).reduceByKeyAndWindow(add, sub, w, s, filterFunc=lambda kv:
        kv[1] > 0)`` and needs a checkpoint directory like it."""
        self._validate_window_param(windowDuration, slideDuration)
        return ReducedWindowedDStream(
            self, operator.add, operator.sub, lambda kv: kv[1] > 0, to_ms(windowDuration),
            to_ms(slideDuration) if slideDuration else self._slide_ms, count_values=True)

    def groupByKeyAndWindow(self, windowDuration: float, slideDuration: float,
                            numPartitions: int | None = None) -> DStream:
        ls = self.mapValues(lambda x: [x])
        grouped = ls.reduceByKeyAndWindow(lambda a, b: a.extend(b) or a,
                                          lambda a, b: a[len(b):],
                                          windowDuration, slideDuration, numPartitions)
        return grouped.mapValues(ResultIterable)

    def reduceByKeyAndWindow(self, func: Callable[[Any, Any], Any],
                             invFunc: Callable[[Any, Any], Any] | None,
                             windowDuration: float, slideDuration: float | None = None,
                             numPartitions: int | None = None,
                             filterFunc: Callable[[Any], Any] | None = None) -> DStream:
        """Per-key reduction over a sliding window; see :mod:`consumer.engine.windows` for exactly
        when it is incremental and which zero-valued keys stay."""
        self._validate_window_param(windowDuration, slideDuration)
        slide_ms = to_ms(slideDuration) if slideDuration else self._slide_ms
        if invFunc is None:
            # PySpark: window().reduceByKey(func); no filterFunc, no checkpoint required
            return self.reduceByKey(func).window(windowDuration, slideDuration) \
                .reduceByKey(func, numPartitions)
        return ReducedWindowedDStream(self, func, invFunc, filterFunc, to_ms(windowDuration),
                                      slide_ms)

    # ---- state -----------------------------------------------------------------------
    def updateStateByKey(self, updateFunc: Callable[[list[Any], Any], Any],
                         numPartitions: int | None = None, initialRDD: Any = None) -> DStream:
        initial = None
        if initialRDD is not None:
            initial = initialRDD.collect() if isinstance(initialRDD, RDD) else list(initialRDD)
        return StateDStream(self, UpdateStateStore(updateFunc, initial))

    def mapWithState(self, spec: StateSpec) -> MapWithStateDStream:
        """flumelet extension mirroring Scala's ``mapWithState`` (see
        :mod:`consumer.engine.state`)."""
        return MapWithStateDStream(self, spec)

    def eventTimeWindow(self, timestamp: Callable[[Any], float] | None, windowDuration: float,
                        slideDuration: float | None = None, allowedLateness: float = 0.0,
                        key: Callable[[Any], Any] | None = None,
                        value: Callable[[Any], Any] | None = None,
                        reduce: Callable[[Any, Any], Any] = operator.add, *,
                        panes: bool = False) -> EventTimeWindowDStream:
        """flumelet extension: event-time windows finalised by a watermark.

        DStream windows group records by *arrival* batch, so a late or jittery delivery
        changes the counts; this groups by the time inside each record instead::

            hits = lines.map(parse).eventTimeWindow(
                timestamp=lambda r: r.epoch_seconds,   # event time, in seconds
                windowDuration=60, slideDuration=30,   # windows [k*30, k*30 + 60)
                allowedLateness=10,                     # watermark = max event time - 10 s
                key=lambda r: r.url)                    # optional; counts per key

        Each batch emits the windows the watermark finalised, as ``EventWindow(start, end,
        key, value)`` (seconds); ``value`` reduces ``value(record)`` (default 1) with
        ``reduce``. Records too late for every window are counted in ``lateRecords``. The
        exact rules are :class:`consumer.engine.windows.EventTimeWindows`.

        ``panes=True``: the elements are ``Pane``s, records grouped already (declarative
        jobs merge one value per key and window instead of one per record; ``timestamp``,
        ``key`` and ``value`` are then not used), and the stream emits one ``WindowBlock``
        per finalised window instead of one ``EventWindow`` per key."""
        if timestamp is None and not panes:
            raise TypeError("eventTimeWindow needs a timestamp function")
        return EventTimeWindowDStream(self, timestamp, windowDuration, slideDuration,
                                      allowedLateness, key, value, reduce, panes)


def _summed_panes(added: list[tuple[int, Any, int]], size_ms: int) -> list[Pane]:
    """Records ``(time ms, key, int value)`` summed per pane and key, panes and keys in order
    of first appearance. Adding these panes leaves the windows as adding the records one by
    one does: integer ``+`` does not depend on order or grouping, and whether a record is too
    late depends only on its pane (the watermark moves between batches, not within one). It
    merges one value per key and window instead of one per record (W1-like records, 5 windows
    each: 2.0 -> 0.7 µs of CPU a record, key and timestamp functions included)."""
    panes: dict[int, list[Any]] = {}
    for t, k, v in added:
        start = t - t % size_ms
        pane = panes.get(start)
        if pane is None:
            panes[start] = [t, 1, {k: v}]
            continue
        if t > pane[0]:
            pane[0] = t
        pane[1] += 1
        sums = pane[2]
        sums[k] = sums[k] + v if k in sums else v
    return [Pane(start, newest, records, list(sums), list(sums.values()))
            for start, (newest, records, sums) in panes.items()]


# ---- node types ----------------------------------------------------------------------
class TransformedDStream(DStream):
    """``func(time, *parent_rdds) -> RDD``; ``time`` is built only when the func wants it."""

    def __init__(self, parents: DStream | list[DStream], func: Callable[..., RDD],
                 with_time: bool) -> None:
        plist = parents if isinstance(parents, list) else [parents]
        if len({p._slide_ms for p in plist}) > 1:
            raise ValueError("Some of the DStreams have different slide durations")
        super().__init__(plist[0]._ssc, plist)
        self._func = func
        self._with_time = with_time

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        when = batch_datetime(t_ms) if self._with_time else None
        out = self._func(when, *parent_rdds)
        if not isinstance(out, RDD):
            raise TypeError(
                f"transform function of {self!r} returned {type(out).__name__}, not an RDD")
        return out


class ForEachDStream(DStream):
    """An output operation: runs ``func(time, rdd)`` for every RDD of its parent."""

    _is_output = True

    def __init__(self, parent: DStream, func: Callable[..., Any], with_time: bool) -> None:
        super().__init__(parent._ssc, [parent])
        self._func = func
        self._with_time = with_time
        self._ssc.graph.add_output(self)

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None:
        self._func(batch_datetime(t_ms) if self._with_time else None, parent_rdds[0])
        return None


class StatefulDStream(DStream):
    """A stream whose ``_state`` (window partials, per-key state) goes into checkpoints."""

    _state: Any

    def _has_state(self) -> bool:
        return True

    def _snapshot(self) -> Any:
        return self._state.snapshot()

    def _restore(self, data: Any) -> None:
        self._state.restore(data)


class WindowedDStream(StatefulDStream):
    """``window()``: the union of the parent's RDDs in ``(t - window, t]``."""

    def __init__(self, parent: DStream, window_ms: int, slide_ms: int) -> None:
        super().__init__(parent._ssc, [parent], slide_ms)
        self._window = self._state = BatchWindow(window_ms, slide_ms)

    def _step(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None:
        self._window.add(t_ms, parent_rdds[0]._data)
        if not self._valid(t_ms):
            return None
        out = RDD(self._window.window_at(t_ms), self.ctx)
        self._window.evict(t_ms)
        return out

    def _describe(self) -> str:
        return f"{super()._describe()}/w{self._window.window_ms}"


class ReducedWindowedDStream(StatefulDStream):
    """``reduceByKeyAndWindow`` with an inverse function (and the counting fast paths)."""

    def __init__(self, parent: DStream, func: Callable[[Any, Any], Any],
                 inv_func: Callable[[Any, Any], Any], filter_func: Callable[[Any], Any] | None,
                 window_ms: int, slide_ms: int, count_values: bool = False) -> None:
        super().__init__(parent._ssc, [parent], slide_ms)
        self._window = self._state = ReducedWindow(func, inv_func, filter_func, window_ms,
                                                   slide_ms)
        self._count_values = count_values
        self._must_checkpoint = True

    def _step(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None:
        data = parent_rdds[0]._data
        if self._count_values:
            self._window.add_counts(t_ms, data)
        else:
            self._window.add_batch(t_ms, self._window.reduce_batch(data))
        if not self._valid(t_ms):
            return None
        return RDD(list(self._window.result_at(t_ms).items()), self.ctx)

    def _describe(self) -> str:
        return f"{super()._describe()}/w{self._window.window_ms}"


class StateDStream(StatefulDStream):
    """``updateStateByKey``: the whole state after each batch."""

    def __init__(self, parent: DStream, store: UpdateStateStore) -> None:
        super().__init__(parent._ssc, [parent])
        self._store = self._state = store
        self._must_checkpoint = True

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        return RDD(self._store.step(parent_rdds[0]._data), self.ctx)


class MapWithStateDStream(StatefulDStream):
    """``mapWithState``: the mapping function's return values, one per record/timeout."""

    def __init__(self, parent: DStream, spec: StateSpec) -> None:
        super().__init__(parent._ssc, [parent])
        self._store = self._state = MapWithStateStore(spec)
        self._must_checkpoint = True

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        when = batch_datetime(t_ms)
        return RDD(self._store.step(t_ms, when, parent_rdds[0]._data), self.ctx)

    def stateSnapshots(self) -> DStream:
        """A DStream of ``(key, state)`` for every key, after each batch."""
        return TransformedDStream(self, lambda _t, _rdd: RDD(self._store.snapshots(), self.ctx),
                                  with_time=False)


class EventTimeWindowDStream(DStream):
    """``eventTimeWindow``: the node around :class:`~consumer.engine.windows.EventTimeWindows`."""

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
            return RDD(self._windows.advance_blocks(), self.ctx)
        ts, key, value = self._timestamp, self._key, self._value
        assert ts is not None
        added = [(round(ts(r) * 1000), key(r) if key else None, value(r) if value else 1)
                 for r in parent_rdds[0]._data]
        if self._windows.reduce is operator.add and (
                value is None or all(type(v) is int for _, _, v in added)):
            for pane in _summed_panes(added, self._windows.pane_ms):
                self._windows.add_pane(pane)
        else:
            add = self._windows.add
            for t, k, v in added:
                add(t, k, v)
        return RDD(self._windows.advance(), self.ctx)

    def _has_state(self) -> bool:
        return True

    def _snapshot(self) -> Any:
        return self._windows.snapshot()

    def _restore(self, data: Any) -> None:
        self._windows.restore(data)
