"""The only asyncio in the streaming engine: one loop, in one background thread.

The loop runs the receivers, wakes at each batch boundary of the clock, cuts the receivers'
blocks and queues the batch; a single worker coroutine runs queued batches one at a time in a
thread (``asyncio.to_thread``: user functions and checkpoint writes block), then calls the
receivers' ``on_batch_done``/``on_batch_failed`` back on the loop. Batches never overlap; when
one runs long, later boundaries still cut on time and wait in the queue (Spark queues jobs the
same way).

The runtime knows nothing of the StreamingContext: it reports back through the callbacks it
is given (a batch completed, a batch failed, the loop ended).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from common.clock import Clock
from consumer.engine.receiver import Block
from consumer.engine.scheduler import BatchPipeline, receiver_hooks

log = logging.getLogger(__name__)

__all__ = ["Progress", "StreamingRuntime", "records_by_stream"]


class Progress(Protocol):
    """Told of each batch's and receiver's progress (the listener bus, see
    ``consumer.streaming.listener``); called on the loop's thread, must be quick."""

    def batch_submitted(self, t_ms: int, records_by_stream: dict[int, int]) -> None: ...
    def batch_started(self, t_ms: int) -> None: ...
    def batch_completed(self, t_ms: int) -> None: ...
    def receiver_started(self, stream_id: int, receiver: object) -> None: ...
    def receiver_stopped(self, stream_id: int, receiver: object) -> None: ...


def records_by_stream(blocks: dict[int, Block]) -> dict[int, int]:
    return {stream_id: len(block.records) for stream_id, block in blocks.items()}


class StreamingRuntime:
    """``on_batch_done(t_ms)`` after each batch (hooks called); ``on_batch_failed(error)``
    before the loop stops for a failed batch; ``on_stopped(error or None)`` once, when the loop
    has ended (``error``: the loop itself crashed)."""

    def __init__(self, pipeline: BatchPipeline, replay: list[tuple[int, dict[int, Block]]],
                 clock: Clock, *, on_batch_done: Callable[[int], None],
                 on_batch_failed: Callable[[BaseException], None],
                 on_stopped: Callable[[BaseException | None], None],
                 services: list[Any] | None = None, progress: Progress | None = None) -> None:
        self._on_batch_done = on_batch_done
        self._progress = progress
        self._on_batch_failed = on_batch_failed
        self._on_stopped = on_stopped
        self._pipeline = pipeline
        self._replay = list(replay)
        self._clock = clock
        self._batch_ms = pipeline.scheduler.batch_ms
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_requested: asyncio.Event | None = None
        self._graceful = False
        self._pending: collections.deque[tuple[int, dict[int, Block]]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker_thread_ids: set[int] = set()
        self._receivers_started: list[Any] = []  # ReceiverNodes
        # objects with async start()/stop() living on the loop (the web UI): started after
        # the receivers, stopped once the last batch is done
        self._services = list(services or [])
        self._services_started: list[Any] = []

    # ---- called from user threads ----------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="flumelet-streaming",
                                        daemon=True)
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def request_stop(self, graceful: bool) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._set_stop, graceful)
        except RuntimeError:  # loop already closed
            pass

    def stop(self, graceful: bool) -> None:
        self.request_stop(graceful)
        current = threading.current_thread()
        if self._thread is None or current is self._thread:
            return
        if threading.get_ident() in self._worker_thread_ids:
            return  # stop() from inside a batch: the loop finishes once this batch returns
        self._thread.join()

    # ---- the loop thread -------------------------------------------------------------
    def _set_stop(self, graceful: bool) -> None:
        if self._stop_requested is not None and not self._stop_requested.is_set():
            self._graceful = graceful
            self._stop_requested.set()

    def _thread_main(self) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # never leave awaitTermination hanging
            error = exc
            log.exception("streaming loop crashed")
        finally:
            self._started.set()
            self._on_stopped(error)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._wakeup = asyncio.Event()
        try:
            for inp in self._pipeline.inputs:
                await inp.receiver.start(inp.receiver_context)
                self._receivers_started.append(inp)
                if self._progress is not None:
                    self._progress.receiver_started(inp._id, inp.receiver)
            for service in self._services:
                await service.start()
                self._services_started.append(service)
        except Exception as exc:
            self._startup_error = exc
            await self._stop_receivers()
            await self._stop_services()
            self._started.set()
            return
        self._started.set()
        worker = asyncio.create_task(self._worker())
        scheduler = self._pipeline.scheduler
        for item in self._replay:
            self._enqueue(item)
        t = max([scheduler.next_batch_time()] + [t + self._batch_ms for t, _ in self._replay])
        self._replay = []
        stop_wait = asyncio.create_task(self._stop_requested.wait())
        while not self._stop_requested.is_set():
            sleeper = asyncio.create_task(self._clock.sleep_until(t))
            await asyncio.wait({sleeper, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop_requested.is_set():
                sleeper.cancel()
                break
            self._enqueue((t, self._pipeline.cut()))
            t += self._batch_ms
        await self._stop_receivers()
        if self._graceful:
            # what was received before the receivers stopped becomes one last batch
            self._enqueue((t, self._pipeline.cut()))
        else:
            self._pending.clear()
        self._enqueue(None)
        await worker
        await self._stop_services()

    def _enqueue(self, item: tuple[int, dict[int, Block]] | None) -> None:
        self._pending.append(item)  # type: ignore[arg-type]
        if item is not None and self._progress is not None:
            self._progress.batch_submitted(item[0], records_by_stream(item[1]))
        assert self._wakeup is not None
        self._wakeup.set()

    async def _worker(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            item = self._pending.popleft()
            if item is None:
                return
            t, blocks = item
            queued = [x for x in self._pending if x is not None]
            final = self._graceful and list(self._pending) == [None]
            if self._progress is not None:
                self._progress.batch_started(t)
            outcome = await asyncio.to_thread(self._run_batch, t, blocks, queued, final)
            for hook, args in receiver_hooks(self._pipeline, outcome):
                try:
                    result = hook(*args)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("receiver hook %r failed", hook)
            if self._progress is not None:
                self._progress.batch_completed(t)
            self._on_batch_done(t)
            if outcome.error is not None:
                self._on_batch_failed(outcome.error)
                self._pending.clear()
                self._set_stop(False)
                return

    def _run_batch(self, t: int, blocks: dict[int, Block], queued: list[Any],
                   final: bool = False) -> Any:
        self._worker_thread_ids.add(threading.get_ident())
        return self._pipeline.run(t, blocks, queued, final)

    async def _stop_services(self) -> None:
        for service in reversed(self._services_started):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %r failed", service)
        self._services_started = []

    async def _stop_receivers(self) -> None:
        for inp in reversed(self._receivers_started):
            try:
                await inp.receiver.stop()
            except Exception:
                log.exception("stopping receiver %r failed", inp.receiver)
            if self._progress is not None:
                self._progress.receiver_stopped(inp._id, inp.receiver)
        self._receivers_started = []
