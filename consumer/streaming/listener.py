"""``pyspark.streaming.listener``: progress events for a job's own code.

A job subclasses :class:`StreamingListener`, overrides the ``on...`` methods it cares about
and passes an instance to ``ssc.addStreamingListener``. The events carry what PySpark hands
over from the JVM, with the same method names, so a listener written for PySpark runs
unchanged: ``batchCompleted.batchInfo().processingDelay().get()``,
``batchInfo.batchTime().milliseconds()``, ``numRecords()``, ``receiverInfo().name()``.

Delivery is Spark's listener bus: asynchronous, on one thread of its own, in order; a slow
listener delays only later events, never a batch. A listener that raises is logged and keeps
its place. The queue holds :data:`QUEUE_CAPACITY` events (Spark's default); past that, events
are dropped with one warning, as Spark does. ``StreamingContext.step()`` delivers each event
before it returns (tests need no waiting).

Not emitted: ``onOutputOperationStarted`` / ``onOutputOperationCompleted`` (outputs are not
timed one by one).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

__all__ = ["BatchInfo", "ListenerBus", "Option", "ProgressEvents", "ReceiverInfo",
           "StreamingListener",
           "StreamingListenerBatchCompleted", "StreamingListenerBatchStarted",
           "StreamingListenerBatchSubmitted", "StreamingListenerReceiverError",
           "StreamingListenerReceiverStarted", "StreamingListenerReceiverStopped",
           "StreamingListenerStreamingStarted", "Time"]

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 10_000  # spark.scheduler.listenerbus.eventqueue.capacity
T = TypeVar("T")


class StreamingListener:
    """Override what you need; every method does nothing by default."""

    def onStreamingStarted(self, streamingStarted: Any) -> None:
        """The context started (``streamingStarted.time``: epoch ms)."""

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        """A receiver started (``receiverStarted.receiverInfo()``)."""

    def onReceiverError(self, receiverError: Any) -> None:
        """A receiver reported an error."""

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        """A receiver stopped."""

    def onBatchSubmitted(self, batchSubmitted: Any) -> None:
        """A batch was cut and queued (``batchSubmitted.batchInfo()``)."""

    def onBatchStarted(self, batchStarted: Any) -> None:
        """A batch began processing."""

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        """A batch finished: its outputs ran (and its checkpoint, when one was due)."""

    def onOutputOperationStarted(self, outputOperationStarted: Any) -> None:
        """Not emitted (see the module docstring)."""

    def onOutputOperationCompleted(self, outputOperationCompleted: Any) -> None:
        """Not emitted (see the module docstring)."""


class Option(Generic[T]):
    """Scala's ``Option`` as PySpark's listeners see it through py4j."""

    __slots__ = ("_value",)

    def __init__(self, value: T | None) -> None:
        self._value = value

    def isDefined(self) -> bool:
        return self._value is not None

    def isEmpty(self) -> bool:
        return self._value is None

    def get(self) -> T:
        if self._value is None:
            raise ValueError("None.get")  # Scala's NoSuchElementException message
        return self._value

    def getOrElse(self, default: T) -> T:
        return default if self._value is None else self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Option) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "None" if self._value is None else f"Some({self._value!r})"


@dataclass(frozen=True)
class Time:
    """``org.apache.spark.streaming.Time``: a batch time."""

    ms: int

    def milliseconds(self) -> int:
        return self.ms


@dataclass(frozen=True)
class BatchInfo:
    """One batch's progress (Spark's ``BatchInfo``), all times in epoch ms."""

    batch_ms: int
    records: int
    submitted_ms: int
    started_ms: int | None = None
    ended_ms: int | None = None
    records_by_stream: dict[int, int] = field(default_factory=dict)

    def batchTime(self) -> Time:
        return Time(self.batch_ms)

    def numRecords(self) -> int:
        return self.records

    def submissionTime(self) -> int:
        return self.submitted_ms

    def processingStartTime(self) -> Option[int]:
        return Option(self.started_ms)

    def processingEndTime(self) -> Option[int]:
        return Option(self.ended_ms)

    def schedulingDelay(self) -> Option[int]:
        """From queued to started."""
        return Option(None if self.started_ms is None else self.started_ms - self.submitted_ms)

    def processingDelay(self) -> Option[int]:
        """From started to done."""
        if self.started_ms is None or self.ended_ms is None:
            return Option(None)
        return Option(self.ended_ms - self.started_ms)

    def totalDelay(self) -> Option[int]:
        """Scheduling plus processing delay."""
        if self.started_ms is None or self.ended_ms is None:
            return Option(None)
        return Option(self.ended_ms - self.submitted_ms)

    def streamIdToInputInfo(self) -> dict[int, int]:
        """Records per input stream id (Spark maps to an ``StreamInputInfo``)."""
        return dict(self.records_by_stream)

    def outputOperationInfos(self) -> dict[int, Any]:
        return {}


@dataclass(frozen=True)
class ReceiverInfo:
    """Spark's ``ReceiverInfo``."""

    stream_id: int
    receiver_name: str
    is_active: bool
    error_message: str = ""
    error_ms: int = -1

    def streamId(self) -> int:
        return self.stream_id

    def name(self) -> str:
        return self.receiver_name

    def active(self) -> bool:
        return self.is_active

    def location(self) -> str:
        return "localhost"

    def executorId(self) -> str:
        return "driver"

    def lastErrorMessage(self) -> str:
        return self.error_message

    def lastError(self) -> str:
        return self.error_message

    def lastErrorTime(self) -> int:
        return self.error_ms


@dataclass(frozen=True)
class StreamingListenerStreamingStarted:
    time: int


@dataclass(frozen=True)
class _BatchEvent:
    info: BatchInfo

    def batchInfo(self) -> BatchInfo:
        return self.info


class StreamingListenerBatchSubmitted(_BatchEvent):
    pass


class StreamingListenerBatchStarted(_BatchEvent):
    pass


class StreamingListenerBatchCompleted(_BatchEvent):
    pass


@dataclass(frozen=True)
class _ReceiverEvent:
    info: ReceiverInfo

    def receiverInfo(self) -> ReceiverInfo:
        return self.info


class StreamingListenerReceiverStarted(_ReceiverEvent):
    pass


class StreamingListenerReceiverError(_ReceiverEvent):
    pass


class StreamingListenerReceiverStopped(_ReceiverEvent):
    pass


_METHOD: dict[type, str] = {
    StreamingListenerStreamingStarted: "onStreamingStarted",
    StreamingListenerBatchSubmitted: "onBatchSubmitted",
    StreamingListenerBatchStarted: "onBatchStarted",
    StreamingListenerBatchCompleted: "onBatchCompleted",
    StreamingListenerReceiverStarted: "onReceiverStarted",
    StreamingListenerReceiverError: "onReceiverError",
    StreamingListenerReceiverStopped: "onReceiverStopped",
}


class ListenerBus:
    """Hands events to the listeners, in order, off the caller's thread (``synchronous``:
    in it, for ``step()``)."""

    def __init__(self, capacity: int = QUEUE_CAPACITY) -> None:
        self.listeners: list[Any] = []
        self.synchronous = False
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None

    def add(self, listener: Any) -> None:
        self.listeners.append(listener)

    def post(self, event: Any) -> None:
        if not self.listeners:
            return
        if self.synchronous:
            self._deliver(event)
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flumelet-listener-bus",
                                            daemon=True)
            self._thread.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            if not self.dropped:
                log.warning("streaming listener bus: %d events queued, the listeners are "
                            "too slow; dropping events", self._queue.maxsize)
            self.dropped += 1

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (``timeout`` seconds at most), then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                return  # the listeners are stuck: the thread is a daemon, leave it
            if thread is not threading.current_thread():  # a listener may stop the context
                thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            self._deliver(event)

    def _deliver(self, event: Any) -> None:
        method = _METHOD[type(event)]
        for listener in list(self.listeners):
            handler: Callable[[Any], Any] | None = getattr(listener, method, None)
            if handler is None:
                continue
            try:
                handler(event)
            except Exception:
                log.exception("streaming listener %r failed in %s", listener, method)


class ProgressEvents:
    """The engine's progress callbacks turned into listener events on ``bus`` (times from
    ``now_ms``). Batch callbacks come from one thread (the loop's, or ``step()``'s caller);
    receiver errors may come from any."""

    def __init__(self, bus: ListenerBus, now_ms: Callable[[], int]) -> None:
        self.bus = bus
        self._now_ms = now_ms
        self._batches: dict[int, BatchInfo] = {}

    def streaming_started(self) -> None:
        self.bus.post(StreamingListenerStreamingStarted(self._now_ms()))

    def batch_submitted(self, t_ms: int, records_by_stream: dict[int, int]) -> None:
        info = BatchInfo(t_ms, sum(records_by_stream.values()), self._now_ms(),
                         records_by_stream=dict(records_by_stream))
        self._batches[t_ms] = info
        self.bus.post(StreamingListenerBatchSubmitted(info))

    def batch_started(self, t_ms: int) -> None:
        info = self._batches.get(t_ms)
        if info is not None:
            info = self._batches[t_ms] = replace(info, started_ms=self._now_ms())
            self.bus.post(StreamingListenerBatchStarted(info))

    def batch_completed(self, t_ms: int) -> None:
        info = self._batches.pop(t_ms, None)
        if info is not None:
            self.bus.post(StreamingListenerBatchCompleted(replace(info,
                                                                  ended_ms=self._now_ms())))

    def receiver_started(self, stream_id: int, receiver: object) -> None:
        self.bus.post(StreamingListenerReceiverStarted(
            ReceiverInfo(stream_id, type(receiver).__name__, True)))

    def receiver_stopped(self, stream_id: int, receiver: object) -> None:
        self.bus.post(StreamingListenerReceiverStopped(
            ReceiverInfo(stream_id, type(receiver).__name__, False)))

    def receiver_error(self, stream_id: int, receiver: object, message: str) -> None:
        self.bus.post(StreamingListenerReceiverError(
            ReceiverInfo(stream_id, type(receiver).__name__, True, message, self._now_ms())))
