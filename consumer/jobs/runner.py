"""Running a job as a daemon: receiver, checkpoint recovery, signals, exit codes.

Exit codes (docs/jobs.md): 0 clean stop, 1 runtime failure, 2 bad job or usage (CLI), 130
forced stop. SIGTERM/SIGINT ask for a graceful stop (``ssc.stop(stopGraceFully=True)``: the
data already received is processed, checkpointed and acknowledged, then the process exits 0);
a second signal exits at once with 130, without waiting for anything.
"""

from __future__ import annotations

import errno
import logging
import runpy
import sys
from collections.abc import Callable, Sequence
from typing import Any

from common.outage import error_text
from consumer.engine.errors import CheckpointMismatch
from consumer.engine.spark_context import SparkContext
from consumer.flume import FlumeUtils
from consumer.jobs.graph import BuiltJob, build_job
from consumer.jobs.intake import ProcessPushReceiver
from consumer.jobs.spec import JobSpec
from consumer.jobs.vectorised import BatchEvaluator, header_refs
from consumer.streaming import StreamingContext
from consumer.streaming.process import EXIT_FORCED, SignalStopper
from protocol.limits import ListenerLimits

__all__ = ["EXIT_FAILURE", "EXIT_FORCED", "EXIT_OK", "EXIT_USAGE", "SignalStopper", "run_job",
           "run_script"]

log = logging.getLogger("consumer.jobs")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def make_input(ssc: Any, spec: JobSpec) -> Any:
    """The Flume input DStream for a job's receiver. A push job without a checkpoint whose
    batches the vectorised path takes gets its receiver in a process of its own (the receive
    path on the second core: consumer.jobs.intake)."""
    receiver = spec.receiver
    limits = ListenerLimits().with_settings(dict(receiver.limits))
    if receiver.kind == "push" and spec.checkpoint is None and BatchEvaluator.supports(spec):
        return ssc.receiverStream(ProcessPushReceiver(
            receiver.host, receiver.port, receiver.deflate, header_refs(spec),
            settings={"limits": limits}))
    if receiver.kind == "pull":
        return FlumeUtils.createPollingStream(ssc, list(receiver.addresses),
                                              maxBatchSize=receiver.max_batch_size,
                                              parallelism=receiver.parallelism)
    return FlumeUtils.createStream(ssc, receiver.host, receiver.port,
                                   enableDecompression=receiver.deflate, limits=limits)


def run_job(spec: JobSpec, *, duration: float | None = None, clock: Any = None,
            install_signals: bool = True, summary_interval_s: float = 10.0,
            make_events: Callable[[Any, JobSpec], Any] = make_input,
            watch: Callable[[Any, BuiltJob], None] | None = None) -> int:
    """Build the job's context (recovering from ``spec.checkpoint`` when it holds one), run
    it until stopped (or for ``duration`` seconds), return the exit code. ``watch(ssc,
    built)`` is called once the graph is built, before the context starts: the CLI attaches
    the web UI and the terminal view there."""
    sc = SparkContext(appName=spec.name)
    built: list[BuiltJob] = []

    def setup() -> Any:
        ssc = StreamingContext(sc, spec.batch, clock=clock)
        job = build_job(ssc, spec, make_events(ssc, spec),
                        summary_interval_s=summary_interval_s)
        built.append(job)
        if watch is not None:
            watch(ssc, job)
        return ssc

    try:
        ssc = (StreamingContext.getOrCreate(spec.checkpoint, setup) if spec.checkpoint
               else setup())
    except CheckpointMismatch as exc:
        log.error("%s (the job changed since the checkpoint was written: restore the job or "
                  "move the checkpoint directory away)", exc)
        return EXIT_USAGE
    describe(spec)
    try:
        return run_context(ssc, duration=duration, install_signals=install_signals)
    finally:
        for job in built:
            job.close()


def describe(spec: JobSpec) -> None:
    log.info("job %s: %s", spec.name, summarize(spec))
    log.info("job %s: %s, checkpoint %s", spec.name, source_text(spec),
             spec.checkpoint or "off")


def source_text(spec: JobSpec) -> str:
    """Where the job's events come from."""
    r = spec.receiver
    if r.kind == "push":
        return f"push receiver on {r.host}:{r.port}"
    return "pull receiver from " + ", ".join(f"{h}:{p}" for h, p in r.addresses)


def summarize(spec: JobSpec) -> str:
    """One line describing what the job computes (also printed by ``validate``)."""
    agg = spec.aggregation if spec.aggregation != "top_k" else f"top_k(k={spec.k})"
    what = agg if spec.value is None else f"{agg}({spec.value})"
    key = ", ".join(spec.key)
    if spec.event_time is not None:
        et = spec.event_time
        src = f"header {et.header}" if et.header else f"field {et.field}"
        when = (f"event-time windows of {spec.window:g} s every {spec.slide:g} s ({src}, "
                f"{et.format}, allowed lateness {et.allowed_lateness:g} s)")
    else:
        when = f"{spec.window:g} s window every {spec.slide:g} s"
    outs = ", ".join(o.kind if o.kind != "console" else f"console(top {o.top})"
                     for o in spec.outputs)
    return (f"{spec.parser.kind} lines, {len(spec.filters)} filter(s), {what} by {key} over "
            f"{when}, batch {spec.batch:g} s -> {outs}")


def run_context(ssc: Any, *, duration: float | None = None, install_signals: bool = True,
                ) -> int:
    stopper = SignalStopper(lambda: ssc)
    if install_signals:
        stopper.install()
    try:
        try:
            ssc.start()
        except OSError as exc:
            log.error("cannot start the receiver: %s%s", error_text(exc), _hint(exc))
            return EXIT_FAILURE
        if duration is not None and not ssc.awaitTerminationOrTimeout(duration):
            log.info("--duration %g s reached: stopping gracefully", duration)
            ssc.stop(stopSparkContext=False, stopGraceFully=True)
        ssc.awaitTermination()
        if stopper.stopper is not None:
            stopper.stopper.join()
    except Exception as exc:  # a batch failed: the world (OSError) or a bug (its traceback)
        log.error("job failed: %s", exc,
                  exc_info=log.isEnabledFor(logging.DEBUG) or not isinstance(exc, OSError))
        return EXIT_FAILURE
    finally:
        stopper.uninstall()
    log.info("stopped cleanly")
    return EXIT_OK


def _hint(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (" (another process has this port, perhaps another flume-consumer: stop it, or "
                "listen on another port: --port, or the job's receiver port)")
    return ""


def run_script(path: str, args: Sequence[str], *, install_signals: bool = True) -> int:
    """Run a pyspark.streaming-style script as ``__main__`` with ``sys.argv = [path, *args]``."""
    stopper = SignalStopper(StreamingContext.getActive)
    if install_signals:
        stopper.install()
    saved_argv = sys.argv
    sys.argv = [path, *args]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_FORCED
    except Exception as exc:
        log.error("%s failed: %s", path, exc, exc_info=True)
        return EXIT_FAILURE
    finally:
        sys.argv = saved_argv
        stopper.uninstall()
        if stopper.stopper is not None:
            stopper.stopper.join()
    return EXIT_OK
