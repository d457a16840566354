"""Job spec -> DStream graph, using only the engine's public DStream API.

The graph for a processing-time job (window/slide in batch units, as Spark's)::

    events --transform(timer.begin)--> marked --mapPartitions(RecordPipeline)--> (key, value)
      count:  keys --countByKeyAndWindow (checkpoint set: incremental fast path)
                   or per-batch Counter --reduceByKeyAndWindow(add, None) (no checkpoint)
      others: per-batch partials --reduceByKeyAndWindow(combine, inverse, filterFunc=keep)
                   (recomputed from the window's partials without a checkpoint or an inverse)
      --> (key, final value) --> outputs;  marked --foreachRDD(timer.end) registered last

An event-time job uses the engine's ``eventTimeWindow`` instead of the window step and emits
``EventWindow(start, end, key, value)`` rows once the watermark closes each window.

Incremental windows need a checkpoint directory (Spark's rule, enforced by the engine), so
without ``checkpoint`` the job recomputes each window from per-batch partials: correct, a bit
more CPU, and nothing survives a restart.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import repeat
from typing import Any

from consumer.engine.rdd import RDD
from consumer.engine.windows import EventWindow, WindowBlock, to_ms
from consumer.jobs.aggregations import Aggregation
from consumer.jobs.chunks import EventChunk
from consumer.jobs.extract import JobCounters
from consumer.jobs.logsummary import BatchTimer
from consumer.jobs.observe import BatchReport, JobObserver
from consumer.jobs.outputs import ConsoleOutput, ResultRow, Writer, open_writer
from consumer.jobs.ranking import WindowTop, top_of_window, top_per_window
from consumer.jobs.spec import JobSpec
from consumer.jobs.vectorised import BatchStep

__all__ = ["BuiltJob", "build_job"]

log = logging.getLogger("consumer.jobs")


def ms_of(when: datetime) -> int:
    """Back from the ``datetime`` the engine passes to ``foreachRDD`` to epoch ms."""
    return round(when.timestamp() * 1000)


@dataclass
class BuiltJob:
    """What the runner needs after wiring: counters for the summary, writers to close."""

    spec: JobSpec
    counters: JobCounters
    timer: BatchTimer
    writers: list[Writer] = field(default_factory=list)
    event_windows: Any = None  # the EventTimeWindowDStream, for lateRecords
    step: BatchStep | None = None
    consoles: list[ConsoleOutput] = field(default_factory=list)
    # called after each batch (see consumer.jobs.observe); add them before the job starts
    observers: list[JobObserver] = field(default_factory=list)
    top: int = 10  # rows per window reported to observers: the console's top, or 10

    def mute_console(self) -> None:
        """A live view owns stdout: the console outputs print nothing."""
        for console in self.consoles:
            console.muted = True

    def dropped(self) -> dict[str, int]:
        d = self.counters.as_dict()
        d.pop("events")
        d.pop("filtered")
        if self.event_windows is not None:
            d["late"] = self.event_windows.lateRecords
        return d

    def close(self) -> None:
        for w in self.writers:
            w.close()


def build_job(ssc: Any, spec: JobSpec, events: Any, *,
              perf: Callable[[], float] = time.perf_counter,
              clock_ms: Callable[[], int] | None = None,
              summary_interval_s: float = 10.0, vectorised: bool = True) -> BuiltJob:
    """Wire ``spec`` onto ``events`` (a DStream of Flume ``(headers, body)`` records).
    ``vectorised=False`` runs every batch through the record path (tests compare the two)."""
    counters = JobCounters()
    window_ms = to_ms(spec.window)
    step = BatchStep(spec, counters, window_ms, to_ms(spec.slide), vectorised)
    agg = step.agg
    if clock_ms is None:
        clock = ssc.graph.clock  # the engine's clock: batch times live on it
        clock_ms = clock.now_ms
    timer = BatchTimer(clock_ms, perf, summary_interval_s, dropped=lambda: built.dropped())
    built = BuiltJob(spec, counters, timer, step=step)

    def begin(when: datetime, rdd: RDD) -> RDD:
        timer.begin(ms_of(when), count_events(rdd.collect()))
        return rdd

    marked = events.transform(begin)

    if spec.event_time is not None:
        panes = marked.mapPartitions(step.panes)
        windows = panes.eventTimeWindow(
            None, windowDuration=spec.window, slideDuration=spec.slide,
            allowedLateness=spec.event_time.allowed_lateness, reduce=agg.combine, panes=True)
        built.event_windows = windows
        results = windows.map(_same if agg.final_is_value else lambda b: WindowBlock(
            b.start, b.end, b.keys, agg.finalize_all(b.values)))
        blocks = True

        def to_rows(t_ms: int, data: list[Any]) -> tuple[list[ResultRow], list[Any]]:
            rows: list[Any] = []
            for start, end, keys, values in _blocks_ms(data):
                n = len(keys)
                rows.extend(zip(repeat(start, n), repeat(end, n), keys, values, strict=True))
            return rows, []
    else:
        partials = marked.mapPartitions(step.partials)
        results = _windowed(partials, spec, agg, checkpointed=spec.checkpoint is not None)
        blocks = False

        def to_rows(t_ms: int, data: list[Any]) -> tuple[list[ResultRow], list[Any]]:
            start = t_ms - window_ms
            return [ResultRow(start, t_ms, k, v) for k, v in data], [(start, t_ms)]

    def windows_of(t_ms: int, rows: list[Any], n: int) -> list[Any]:
        if blocks:
            return _tops_of_blocks(rows, n)
        return top_per_window(rows, n, (t_ms - window_ms, t_ms))

    for out in spec.outputs:
        if out.kind == "console":
            console = ConsoleOutput(out.top)
            built.consoles.append(console)
            _console_output(results, console, windows_of)
        else:
            assert out.path is not None
            built.writers.append(open_writer(out.kind, out.path, out.table))
    built.top = max((c.top for c in built.consoles), default=built.top)
    if built.writers:
        writers = list(built.writers)

        def write(when: datetime, rdd: RDD) -> None:
            data = rdd.collect()
            if blocks and all(hasattr(w, "write_windows") for w in writers):
                whole = _blocks_ms(data)
                for w in writers:
                    w.write_windows(whole)  # type: ignore[attr-defined]
                return
            rows, windows = to_rows(ms_of(when), data)
            for w in writers:
                w.write(rows, windows)

        results.foreachRDD(write)
    def end(when: datetime, _rdd: RDD) -> None:
        t_ms = ms_of(when)
        sample = timer.end(t_ms)
        if sample is None or not built.observers:
            return
        # what ``results`` generated for this batch (the slide's windows): read back rather
        # than through an output of its own, so watching a job never changes its graph
        generated = results.slice(when, when)  # [] between slides
        windows = windows_of(t_ms, generated[0].collect(), built.top) if generated else []
        report = BatchReport(sample, tuple(windows), built.dropped())
        for observer in built.observers:
            try:
                observer(report)
            except Exception:
                log.exception("job observer %r failed", observer)

    marked.foreachRDD(end)  # last: ends the timing
    return built


def _console_output(results: Any, console: ConsoleOutput,
                    windows_of: Callable[[int, list[Any], int], list[Any]]) -> None:
    """The same graph shape as ``.transform(...).pprint(top)`` had (checkpoints stay
    valid): a transform cutting the slide into windows, then one print per slide."""
    n = console.top + 1  # one more than shown: it says whether "..." follows

    def cut(when: datetime, rdd: RDD) -> RDD:
        return RDD(windows_of(ms_of(when), rdd.collect(), n), rdd.ctx)

    def show(when: datetime, rdd: RDD) -> None:
        console.write(when, rdd.collect())

    results.transform(cut).foreachRDD(show)


def _windowed(partials: Any, spec: JobSpec, agg: Aggregation, checkpointed: bool) -> Any:
    """Windows over per-batch ``(key, accumulator)`` partials. (The pass-through steps keep
    the graph the shape earlier versions checkpointed.)"""
    w, s = spec.window, spec.slide
    if agg.name == "count":
        counts = partials.map(_same)
        if checkpointed:
            return counts.reduceByKeyAndWindow(operator.add, operator.sub, w, s,
                                               filterFunc=_positive)
        return counts.mapPartitions(_same).reduceByKeyAndWindow(operator.add, None, w, s)
    partials = partials.mapPartitions(_same)
    if checkpointed and agg.inverse is not None:
        keep = agg.keep
        windowed = partials.reduceByKeyAndWindow(agg.combine, agg.inverse, w, s,
                                                 filterFunc=lambda kv: keep(kv[1]))
    else:
        windowed = partials.reduceByKeyAndWindow(agg.combine, None, w, s)
    def finalize_all(rdd: RDD) -> RDD:
        pairs = rdd.collect()
        values = agg.finalize_all([v for _, v in pairs])
        return RDD(list(zip([k for k, _ in pairs], values, strict=True)), rdd.ctx)

    return windowed.transform(finalize_all)


def count_events(records: list[Any]) -> int:
    """Events in a batch: a record is an event, or a chunk of them (``consumer.jobs.intake``)."""
    if records and isinstance(records[0], EventChunk):
        return sum(chunk.size for chunk in records)
    return len(records)


_new_window = partial(tuple.__new__, EventWindow)  # EventWindow(*fields), without a Python call


def _rows_of_block(block: WindowBlock) -> list[EventWindow]:
    n = len(block.keys)
    return list(map(_new_window, zip(repeat(block.start, n), repeat(block.end, n),
                                     block.keys, block.values, strict=True)))


def _tops_of_blocks(blocks: list[WindowBlock], n: int) -> list[WindowTop]:
    """Event-time results (one block per closed window) -> each window's top ``n`` rows, in
    time order: what :func:`top_per_window` gives for the same rows, without regrouping."""
    return [top_of_window(b.start, b.end, b.keys, b.values, n)
            for b in sorted(blocks, key=_bounds)]


def _bounds(block: WindowBlock) -> tuple[float, float]:
    return block.start, block.end


def _blocks_ms(blocks: list[WindowBlock]) -> list[tuple[int, int, list[Any], list[Any]]]:
    return [(round(b.start * 1000), round(b.end * 1000), b.keys, b.values) for b in blocks]


def _same(x: Any) -> Any:
    return x


def _positive(kv: tuple[Any, int]) -> bool:
    return kv[1] > 0
