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
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consumer.engine.rdd import RDD
from consumer.engine.windows import EventWindow, to_ms
from consumer.jobs.aggregations import Aggregation, make_aggregation
from consumer.jobs.extract import JobCounters, RecordPipeline
from consumer.jobs.logsummary import BatchTimer
from consumer.jobs.observe import BatchReport, JobObserver
from consumer.jobs.outputs import ConsoleOutput, ResultRow, Writer, open_writer
from consumer.jobs.ranking import top_per_window
from consumer.jobs.spec import JobSpec

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
              summary_interval_s: float = 10.0) -> BuiltJob:
    """Wire ``spec`` onto ``events`` (a DStream of Flume ``(headers, body)`` records)."""
    counters = JobCounters()
    pipeline = RecordPipeline(spec, counters)
    agg = make_aggregation(spec.aggregation, spec.k)
    if clock_ms is None:
        clock = ssc.graph.clock  # the engine's clock: batch times live on it
        clock_ms = clock.now_ms
    timer = BatchTimer(clock_ms, perf, summary_interval_s, dropped=lambda: built.dropped())
    built = BuiltJob(spec, counters, timer)

    def begin(when: datetime, rdd: RDD) -> RDD:
        timer.begin(ms_of(when), rdd.count())
        return rdd

    marked = events.transform(begin)
    extracted = marked.mapPartitions(pipeline.process)
    window_ms = to_ms(spec.window)

    if spec.event_time is not None:
        windows = extracted.eventTimeWindow(
            timestamp=operator.itemgetter(0), windowDuration=spec.window,
            slideDuration=spec.slide, allowedLateness=spec.event_time.allowed_lateness,
            key=operator.itemgetter(1), value=lambda r: agg.lift(r[2]), reduce=agg.combine)
        built.event_windows = windows
        finalize = agg.finalize
        results = windows.map(lambda w: EventWindow(w.start, w.end, w.key, finalize(w.value)))

        def to_rows(t_ms: int, data: list[Any]) -> tuple[list[ResultRow], list[Any]]:
            rows = [ResultRow(round(w.start * 1000), round(w.end * 1000), w.key, w.value)
                    for w in data]
            return rows, []
    else:
        results = _windowed(extracted, spec, agg, checkpointed=spec.checkpoint is not None)

        def to_rows(t_ms: int, data: list[Any]) -> tuple[list[ResultRow], list[Any]]:
            start = t_ms - window_ms
            return [ResultRow(start, t_ms, k, v) for k, v in data], [(start, t_ms)]

    def windows_of(t_ms: int, rows: list[Any], n: int) -> list[Any]:
        bounds = None if spec.event_time is not None else (t_ms - window_ms, t_ms)
        return top_per_window(rows, n, bounds)

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
            rows, windows = to_rows(ms_of(when), rdd.collect())
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


def _windowed(extracted: Any, spec: JobSpec, agg: Aggregation, checkpointed: bool) -> Any:
    w, s = spec.window, spec.slide
    if agg.name == "count":
        keys = extracted.map(operator.itemgetter(0))
        if checkpointed:
            return keys.countByKeyAndWindow(w, s)
        per_batch = keys.mapPartitions(_count_keys)
        return per_batch.reduceByKeyAndWindow(operator.add, None, w, s)
    partials = extracted.mapPartitions(lambda pairs: list(agg.batch(pairs).items()))
    if checkpointed and agg.inverse is not None:
        keep = agg.keep
        windowed = partials.reduceByKeyAndWindow(agg.combine, agg.inverse, w, s,
                                                 filterFunc=lambda kv: keep(kv[1]))
    else:
        windowed = partials.reduceByKeyAndWindow(agg.combine, None, w, s)
    finalize = agg.finalize
    return windowed.map(lambda kv: (kv[0], finalize(kv[1])))


def _count_keys(keys: Iterable[Any]) -> list[tuple[Any, int]]:
    return list(Counter(keys).items())
