"""StreamingContext: pyspark.streaming's entry point, driving the pure engine.

Two ways to run a context:

* ``start()`` / ``awaitTermination()`` / ``stop()`` as in PySpark: one asyncio event loop in
  a background thread (the process's only loop) wakes at each batch boundary of the injected
  clock, cuts the receivers' blocks and runs the batch in a worker thread;
* ``step()`` (flumelet extension, for tests and tools): run the next batch synchronously in
  the caller's thread, with whatever receivers stored so far; receivers are not started.

A third knob for tests: ``StreamingContext(sc, 1, clock=ManualClock(...))`` (``common.clock``; or
``StreamingContext.defaultClock``) makes batch boundaries follow a manual clock.

The context is the PySpark facade only: the graph DStreams add themselves to is its public
:class:`~consumer.engine.graph.StreamGraph` (``ssc.graph``), the batch logic is the engine's
scheduler, the loop is the engine's runtime (which reports back through callbacks), and
stopping and waiting go through a :class:`~consumer.engine.termination.Termination`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any, ClassVar

from common.clock import Clock, SystemClock
from consumer.engine.checkpoint import CheckpointStore
from consumer.engine.errors import IllegalStateException
from consumer.engine.graph import StreamGraph
from consumer.engine.rdd import RDD
from consumer.engine.receiver import Block
from consumer.engine.runtime import StreamingRuntime, records_by_stream
from consumer.engine.scheduler import (
    BatchPipeline,
    JobScheduler,
    first_batch_time,
    receiver_hooks,
)
from consumer.engine.spark_context import SparkContext
from consumer.engine.termination import Termination
from consumer.engine.windows import to_ms
from consumer.streaming.dstream import DStream, TransformedDStream
from consumer.streaming.inputs import QueueInputDStream, ReceiverInputDStream, TextFileInputDStream
from consumer.streaming.listener import ListenerBus, ProgressEvents
from consumer.streaming.process import adopt

log = logging.getLogger(__name__)

__all__ = ["StreamingContext"]

INITIALIZED, ACTIVE, STOPPED = "INITIALIZED", "ACTIVE", "STOPPED"


class StreamingContext:
    """``StreamingContext(sc, batchDuration)``; ``batchDuration`` in seconds."""

    _activeContext: ClassVar[StreamingContext | None] = None
    defaultClock: ClassVar[Clock | None] = None
    # flumelet extension: called with each context that start()s, before it validates;
    # ``flume-consumer run job.py`` attaches its web UI this way (addService is still open)
    startHooks: ClassVar[list[Callable[[StreamingContext], None]]] = []

    def __init__(self, sparkContext: SparkContext, batchDuration: float | None = None,
                 jssc: Any = None, *, clock: Clock | None = None) -> None:
        if batchDuration is None:
            raise ValueError("batchDuration is required")
        self._sc = sparkContext
        batch_ms = to_ms(batchDuration)
        if batch_ms <= 0:
            raise ValueError(f"batchDuration must be positive, got {batchDuration}")
        self.graph = StreamGraph(batch_ms,
                                 clock or StreamingContext.defaultClock or SystemClock())
        self._state = INITIALIZED
        self._mode = ""
        self._checkpoint_dir: str | None = None
        self._restore_from: tuple[dict[str, Any], str] | None = None
        self._pipeline: BatchPipeline | None = None
        self._replay: list[tuple[int, dict[int, Block]]] = []
        self._runtime: StreamingRuntime | None = None
        self._termination = Termination()
        self._services: list[Any] = []
        self._listeners = ListenerBus()
        self._progress = ProgressEvents(self._listeners, self.graph.clock.now_ms)

    def _stop_on_receiver_error(self, message: str, error: BaseException | None) -> None:
        """Handed to receivers (``ReceiverContext.stop_context``)."""
        self._termination.fail(error or RuntimeError(message))
        if self._runtime is not None:
            self._runtime.request_stop(graceful=False)

    # ---- configuration ---------------------------------------------------------------
    @property
    def sparkContext(self) -> SparkContext:
        return self._sc

    @property
    def checkpointDir(self) -> str | None:
        """flumelet extension (Scala's field): the checkpoint directory, if one was set."""
        return self._checkpoint_dir

    def checkpoint(self, directory: str) -> None:
        """Set the checkpoint directory (created if missing). Allowed any time before start."""
        os.makedirs(directory, exist_ok=True)
        self._checkpoint_dir = directory

    def remember(self, duration: float) -> None:
        """Keep each stream's generated RDDs for ``duration`` seconds (for ``slice``)."""
        self.graph.remember_ms = to_ms(duration)

    def addService(self, service: Any) -> None:
        """flumelet extension: run ``service`` (``async start()`` / ``async stop()``) on the
        context's event loop, as receivers run: started after them when the context starts
        (a failing start fails ``start()``), stopped after the last batch. The web UI is
        one."""
        if self._state != INITIALIZED:
            raise IllegalStateException("services are added before the context starts")
        self._services.append(service)

    def addStreamingListener(self, streamingListener: Any) -> None:
        """Send this context's progress events to ``streamingListener`` (a
        :class:`~consumer.streaming.listener.StreamingListener`), as Spark's listener bus
        does: in order, on a thread of their own."""
        self._listeners.add(streamingListener)

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
        return ReceiverInputDStream(self, receiver, self._stop_on_receiver_error)

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
            ssc.graph.check_fingerprint(payload.get("graph"), path)
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
        scheduler = JobScheduler(self.graph)
        scheduler.validate(self._checkpoint_dir)
        store = CheckpointStore(self._checkpoint_dir) if self._checkpoint_dir else None
        pipeline = BatchPipeline(scheduler, self.graph.receiver_inputs(),
                                 store.write if store else None)
        if self._restore_from is not None:
            payload, path = self._restore_from
            self._replay = pipeline.restore(payload, path)
        else:
            batch_ms = self.graph.batch_ms
            scheduler.initialize(first_batch_time(self.graph.clock.now_ms(), batch_ms)
                                 - batch_ms)
        self._pipeline = pipeline
        for node in pipeline.inputs:
            node.receiver_context.on_error = (
                lambda message, n=node: self._progress.receiver_error(n._id, n.receiver,
                                                                      message))
        self._listeners.synchronous = mode == "manual"
        self._state, self._mode = ACTIVE, mode
        self.graph.close("starting")
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
        adopt(StreamingContext.getActive)  # `python job.py`: flume-consumer's logs and Ctrl-C
        for hook in list(StreamingContext.startHooks):
            hook(self)
        self._prepare("thread")
        assert self._pipeline is not None
        self._runtime = StreamingRuntime(
            self._pipeline, self._replay, self.graph.clock,
            on_batch_done=self._termination.batch_done,
            on_batch_failed=self._termination.fail, on_stopped=self._terminate,
            services=self._services, progress=self._progress)
        self._replay = []
        self._progress.streaming_started()
        try:
            self._runtime.start()
        except BaseException:
            self._state = STOPPED
            self.graph.close("stopping")
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
        self._progress.batch_submitted(t, records_by_stream(blocks))
        self._progress.batch_started(t)
        outcome = self._pipeline.run(t, blocks, self._replay)
        for hook, args in receiver_hooks(self._pipeline, outcome):
            result = hook(*args)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        self._progress.batch_completed(t)
        self._termination.batch_done(t)
        if outcome.error is not None:
            raise outcome.error
        return t

    def awaitBatchCompleted(self, t_ms: int, timeout: float = 10.0) -> bool:
        """flumelet extension for tests: wait until the batch at ``t_ms`` has been processed
        (outputs, checkpoint, acknowledgements) or the context terminated."""
        return self._termination.wait_for_batch(t_ms, timeout)

    def _terminate(self, error: BaseException | None) -> None:
        self._state = STOPPED
        self._listeners.stop()
        self.graph.close("stopping")
        if StreamingContext._activeContext is self:
            StreamingContext._activeContext = None
        self._termination.stopped(error)

    def awaitTermination(self, timeout: float | None = None) -> None:
        """Block until stopped (or ``timeout`` seconds); re-raise a batch or receiver error."""
        self._termination.wait(timeout)

    def awaitTerminationOrTimeout(self, timeout: float) -> bool:
        """True if the context stopped within ``timeout`` seconds."""
        return self._termination.wait(timeout)

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
