"""StreamingContext: pyspark.streaming's entry point, driving the pure engine.

Two ways to run a context:

* ``start()`` / ``awaitTermination()`` / ``stop()`` as in PySpark: one asyncio event loop in
  a background thread (the process's only loop) wakes at each batch boundary of the injected
  clock, cuts the receivers' blocks and runs the batch in a worker thread;
* ``step()`` (flumelet extension, for tests and tools): run the next batch synchronously in
  the caller's thread, with whatever receivers stored so far; receivers are not started.

A third knob for tests: ``StreamingContext(sc, 1, clock=ManualClock(...))`` (or
``StreamingContext.defaultClock``) makes batch boundaries follow a manual clock.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from consumer.engine.checkpoint import CheckpointStore
from consumer.engine.clock import Clock, SystemClock
from consumer.engine.rdd import RDD
from consumer.engine.receiver import Block
from consumer.engine.scheduler import (
    BatchOutcome,
    BatchPipeline,
    CheckpointMismatch,
    IllegalStateException,
    JobScheduler,
    first_batch_time,
)
from consumer.engine.spark_context import SparkContext
from consumer.engine.windows import to_ms
from consumer.streaming.dstream import (
    DStream,
    QueueInputDStream,
    ReceiverInputDStream,
    TextFileInputDStream,
    TransformedDStream,
)

log = logging.getLogger(__name__)

__all__ = ["StreamingContext"]

INITIALIZED, ACTIVE, STOPPED = "INITIALIZED", "ACTIVE", "STOPPED"


class StreamingContext:
    """``StreamingContext(sc, batchDuration)``; ``batchDuration`` in seconds."""

    _activeContext: ClassVar[StreamingContext | None] = None
    defaultClock: ClassVar[Clock | None] = None

    def __init__(self, sparkContext: SparkContext, batchDuration: float | None = None,
                 jssc: Any = None, *, clock: Clock | None = None) -> None:
        if batchDuration is None:
            raise ValueError("batchDuration is required")
        self._sc = sparkContext
        self._batch_ms = to_ms(batchDuration)
        if self._batch_ms <= 0:
            raise ValueError(f"batchDuration must be positive, got {batchDuration}")
        self._clock: Clock = clock or StreamingContext.defaultClock or SystemClock()
        self._streams: list[DStream] = []
        self._outputs: list[DStream] = []
        self._inputs: list[DStream] = []
        self._state = INITIALIZED
        self._mode = ""
        self._checkpoint_dir: str | None = None
        self._remember_ms = 0
        self._restore_from: tuple[dict[str, Any], str] | None = None
        self._pipeline: BatchPipeline | None = None
        self._replay: list[tuple[int, dict[int, Block]]] = []
        self._runtime: Any = None
        self._error: BaseException | None = None
        self._terminated = threading.Event()
        self._progress = threading.Condition()
        self._last_done_ms: int | None = None

    # ---- graph registration (called by DStream constructors) --------------------------
    def _register(self, stream: DStream) -> int:
        if self._state == ACTIVE:
            raise IllegalStateException(
                "Adding new inputs, transformations, and output operations after starting a "
                "context is not supported")
        if self._state == STOPPED:
            raise IllegalStateException(
                "Adding new inputs, transformations, and output operations after stopping a "
                "context is not supported")
        self._streams.append(stream)
        return len(self._streams) - 1

    def _register_output(self, stream: DStream) -> None:
        self._outputs.append(stream)

    def _register_input(self, stream: DStream) -> None:
        self._inputs.append(stream)

    def _stop_on_receiver_error(self, message: str, error: BaseException | None) -> None:
        self._error = error or RuntimeError(message)
        if self._runtime is not None:
            self._runtime.request_stop(graceful=False)

    # ---- configuration ---------------------------------------------------------------
    @property
    def sparkContext(self) -> SparkContext:
        return self._sc

    def checkpoint(self, directory: str) -> None:
        """Set the checkpoint directory (created if missing). Allowed any time before start."""
        os.makedirs(directory, exist_ok=True)
        self._checkpoint_dir = directory

    def remember(self, duration: float) -> None:
        """Keep each stream's generated RDDs for ``duration`` seconds (for ``slice``)."""
        self._remember_ms = to_ms(duration)

    def addStreamingListener(self, streamingListener: Any) -> None:
        """Accepted for compatibility; no listener events are emitted."""

    # ---- inputs ----------------------------------------------------------------------
    def queueStream(self, rdds: list[Any], oneAtATime: bool = True,
                    default: Any = None) -> DStream:
        """One RDD (or list, parallelized) per batch; ``default`` once the queue is empty."""
        if default is not None and not isinstance(default, RDD):
            default = self._sc.parallelize(default)
        queue = [r if isinstance(r, RDD) else self._sc.parallelize(r) for r in rdds]
        return QueueInputDStream(self, queue, oneAtATime, default)

    def textFileStream(self, directory: str) -> DStream:
        return TextFileInputDStream(self, directory)

    def receiverStream(self, receiver: Any) -> ReceiverInputDStream:
        """flumelet extension: a DStream of what ``receiver`` stores (see
        consumer.engine.receiver)."""
        if not (hasattr(receiver, "start") and hasattr(receiver, "stop")):
            raise TypeError(f"{receiver!r} is not a receiver: it needs async start(ctx) and "
                            "async stop()")
        return ReceiverInputDStream(self, receiver)

    def union(self, *dstreams: DStream) -> DStream:
        if not dstreams:
            raise ValueError("should have at least one DStream to union")
        if len(dstreams) == 1:
            return dstreams[0]
        if len({s._slide_ms for s in dstreams}) > 1:
            raise ValueError("All DStreams should have same slide duration")

        def union_all(_t: Any, *rdds: RDD) -> RDD:
            return self._sc.union(list(rdds))

        return TransformedDStream(list(dstreams), union_all, with_time=False)

    def transform(self, dstreams: list[DStream], transformFunc: Callable[..., RDD]) -> DStream:
        """``transformFunc(rdds)`` gets the list of the streams' RDDs for each batch."""
        return TransformedDStream(list(dstreams), lambda _t, *rdds: transformFunc(list(rdds)),
                                  with_time=False)

    # ---- recovery --------------------------------------------------------------------
    @classmethod
    def getOrCreate(cls, checkpointPath: str,
                    setupFunc: Callable[[], StreamingContext]) -> StreamingContext:
        """Rebuild from ``checkpointPath`` if it holds a valid checkpoint, else ``setupFunc()``.

        Unlike Spark (which deserialises the graph), the setup function always runs: it
        rebuilds the graph, then the checkpointed state is restored into it by stream id, so
        the setup code must be the same as when the checkpoint was written."""
        found = CheckpointStore(checkpointPath).load_latest()
        ssc = setupFunc()
        ssc.checkpoint(checkpointPath)
        if found is not None:
            payload, path = found
            fingerprint = [s._describe() for s in ssc._streams]
            if payload.get("graph") != fingerprint:
                raise CheckpointMismatch(
                    f"{path}: checkpoint was written by a different DStream graph; the setup "
                    "function must build the same graph (or delete the checkpoint directory)")
            ssc._restore_from = (payload, path)
            log.info("recovering streaming state from %s (last batch %s)", path,
                     payload.get("last_ms"))
        return ssc

    @classmethod
    def getActive(cls) -> StreamingContext | None:
        return cls._activeContext

    @classmethod
    def getActiveOrCreate(cls, checkpointPath: str | None,
                          setupFunc: Callable[[], StreamingContext]) -> StreamingContext:
        if cls._activeContext is not None:
            return cls._activeContext
        if checkpointPath is not None:
            return cls.getOrCreate(checkpointPath, setupFunc)
        return setupFunc()

    # ---- lifecycle -------------------------------------------------------------------
    def _prepare(self, mode: str) -> None:
        scheduler = JobScheduler(self._streams, self._outputs, self._batch_ms,
                                 self._remember_ms)
        scheduler.validate(self._checkpoint_dir)
        store = CheckpointStore(self._checkpoint_dir) if self._checkpoint_dir else None
        inputs = [s for s in self._inputs if isinstance(s, ReceiverInputDStream)]
        pipeline = BatchPipeline(scheduler, inputs, store.write if store else None)
        if self._restore_from is not None:
            payload, path = self._restore_from
            self._replay = pipeline.restore(payload, path)
        else:
            scheduler.initialize(first_batch_time(self._clock.now_ms(), self._batch_ms)
                                 - self._batch_ms)
        self._pipeline = pipeline
        self._state, self._mode = ACTIVE, mode
        if mode == "thread":
            StreamingContext._activeContext = self

    def start(self) -> None:
        """Validate the graph (Spark's checks and messages) and start the background loop."""
        if self._state == ACTIVE:
            log.warning("StreamingContext has already been started")
            return
        if self._state == STOPPED:
            raise IllegalStateException("StreamingContext has already been stopped")
        active = StreamingContext._activeContext
        if active not in (None, self) and active._state == ACTIVE:
            raise IllegalStateException(
                "Only one StreamingContext may be started in this process")
        from consumer.engine.runtime import StreamingRuntime

        self._prepare("thread")
        assert self._pipeline is not None
        self._runtime = StreamingRuntime(self, self._pipeline, self._replay, self._clock)
        self._replay = []
        try:
            self._runtime.start()
        except BaseException:
            self._state = STOPPED
            StreamingContext._activeContext = None
            raise

    def step(self) -> int:
        """flumelet extension: run the next batch now, in this thread; returns its time (ms).

        The first call validates and initializes like ``start()`` (zero time from the clock).
        Receivers are not started: tests put data in with
        ``stream.receiver_context.store(records, token)``. Receiver hooks are called before
        this returns (awaitable hooks are run to completion). Raises the batch's error."""
        if self._state == INITIALIZED:
            self._prepare("manual")
        elif self._mode != "manual" or self._state != ACTIVE:
            raise IllegalStateException("step() needs a context that was not start()ed")
        assert self._pipeline is not None
        if self._replay:
            t, blocks = self._replay.pop(0)
        else:
            t = self._pipeline.scheduler.next_batch_time()
            blocks = self._pipeline.cut()
        outcome = self._pipeline.run(t, blocks, self._replay)
        for hook, args in receiver_hooks(self._pipeline, outcome):
            result = hook(*args)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        self._batch_done(t)
        if outcome.error is not None:
            raise outcome.error
        return t

    def _batch_done(self, t_ms: int) -> None:
        with self._progress:
            self._last_done_ms = t_ms
            self._progress.notify_all()

    def awaitBatchCompleted(self, t_ms: int, timeout: float = 10.0) -> bool:
        """flumelet extension for tests: wait until the batch at ``t_ms`` has been processed
        (outputs, checkpoint, acknowledgements) or the context terminated."""
        with self._progress:
            return self._progress.wait_for(
                lambda: (self._last_done_ms is not None and self._last_done_ms >= t_ms)
                or self._terminated.is_set(), timeout)

    def _terminate(self, error: BaseException | None) -> None:
        if error is not None and self._error is None:
            self._error = error
        self._state = STOPPED
        if StreamingContext._activeContext is self:
            StreamingContext._activeContext = None
        self._terminated.set()
        with self._progress:
            self._progress.notify_all()

    def awaitTermination(self, timeout: float | None = None) -> None:
        """Block until stopped (or ``timeout`` seconds); re-raise a batch or receiver error."""
        self._terminated.wait(timeout)
        if self._error is not None:
            raise self._error

    def awaitTerminationOrTimeout(self, timeout: float) -> bool:
        """True if the context stopped within ``timeout`` seconds."""
        stopped = self._terminated.wait(timeout)
        if self._error is not None:
            raise self._error
        return stopped

    def stop(self, stopSparkContext: bool = True, stopGraceFully: bool = False) -> None:
        """Stop receivers and the loop. Graceful: the data already received is processed
        first; otherwise only the batch being processed finishes. Idempotent."""
        if self._runtime is not None:
            self._runtime.stop(graceful=stopGraceFully)
        if self._state != STOPPED:
            self._terminate(None)
        if stopSparkContext:
            self._sc.stop()


async def _await(awaitable: Any) -> None:
    await awaitable


def receiver_hooks(pipeline: BatchPipeline, outcome: BatchOutcome,
                   ) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The receiver callbacks a finished batch calls for: done (ack) or failed (nack)."""
    by_id = {i._id: i for i in pipeline.inputs}
    hooks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for node_id, tokens in outcome.tokens.items():
        receiver = by_id[node_id].receiver
        if outcome.error is None:
            hook = getattr(receiver, "on_batch_done", None)
            if hook is not None:
                hooks.append((hook, (tokens,)))
        else:
            hook = getattr(receiver, "on_batch_failed", None)
            if hook is not None:
                hooks.append((hook, (tokens, outcome.error)))
    return hooks
