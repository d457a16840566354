"""``addStreamingListener``: PySpark's listener events (batch submitted / started /
completed with their BatchInfo, receiver started / error / stopped), in order, under the real
loop and under ``step()``; a failing listener does not stop the others or the job."""

from __future__ import annotations

import threading
from typing import Any

from common.clock import ManualClock
from consumer import SparkContext
from consumer.streaming import StreamingContext, StreamingListener
from consumer.streaming.listener import BatchInfo, ListenerBus, Option, ProgressEvents
from tests.unit.test_streaming_context import Recorder


class Log(StreamingListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.threads: set[str] = set()

    def _add(self, name: str, value: Any) -> None:
        self.events.append((name, value))
        self.threads.add(threading.current_thread().name)

    def onStreamingStarted(self, streamingStarted: Any) -> None:
        self._add("started", streamingStarted.time)

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        info = receiverStarted.receiverInfo()
        self._add("receiver started", (info.streamId(), info.name(), info.active()))

    def onReceiverError(self, receiverError: Any) -> None:
        self._add("receiver error", receiverError.receiverInfo().lastErrorMessage())

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        self._add("receiver stopped", receiverStopped.receiverInfo().active())

    def onBatchSubmitted(self, batchSubmitted: Any) -> None:
        info = batchSubmitted.batchInfo()
        self._add("submitted", (info.batchTime().milliseconds(), info.numRecords()))

    def onBatchStarted(self, batchStarted: Any) -> None:
        self._add("batch started", batchStarted.batchInfo().batchTime().milliseconds())

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        info = batchCompleted.batchInfo()
        self._add("completed", (info.batchTime().milliseconds(), info.numRecords(),
                                info.processingDelay().isDefined()))


def test_batch_info_delays_are_sparks() -> None:
    info = BatchInfo(batch_ms=10_000, records=3, submitted_ms=10_004, started_ms=10_050,
                     ended_ms=10_300)
    assert info.schedulingDelay().get() == 46
    assert info.processingDelay().get() == 250
    assert info.totalDelay().get() == 296
    pending = BatchInfo(10_000, 0, 10_004)
    assert pending.processingDelay().isEmpty() and pending.totalDelay() == Option(None)
    assert pending.processingStartTime().getOrElse(-1) == -1


def test_progress_events_carry_the_clock_times() -> None:
    now = iter([100, 130, 190])
    bus = ListenerBus()
    bus.synchronous = True
    got: list[BatchInfo] = []

    class Keep(StreamingListener):
        def onBatchCompleted(self, batchCompleted: Any) -> None:
            got.append(batchCompleted.batchInfo())

    bus.add(Keep())
    progress = ProgressEvents(bus, lambda: next(now))
    progress.batch_submitted(90, {0: 2, 3: 5})
    progress.batch_started(90)
    progress.batch_completed(90)
    assert got == [BatchInfo(90, 7, 100, 130, 190, {0: 2, 3: 5})]
    assert got[0].schedulingDelay().get() == 30 and got[0].streamIdToInputInfo() == {0: 2, 3: 5}


def test_step_delivers_every_batch_event_before_it_returns() -> None:
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(5.0))
    ssc.queueStream([[1, 2], [3]]).pprint()

    class Broken(StreamingListener):
        def onBatchSubmitted(self, batchSubmitted: Any) -> None:
            raise RuntimeError("a listener bug")

    log = Log()
    ssc.addStreamingListener(Broken())  # logged; the next listener and the job go on
    ssc.addStreamingListener(log)
    ssc.step()
    ssc.step()
    assert log.events == [("submitted", (6000, 0)), ("batch started", 6000),
                          ("completed", (6000, 0, True)),
                          ("submitted", (7000, 0)), ("batch started", 7000),
                          ("completed", (7000, 0, True))]


def test_the_running_loop_posts_receiver_and_batch_events_off_its_thread() -> None:
    clock = ManualClock(1_000.4)
    ssc = StreamingContext(SparkContext(), 1, clock=clock)
    receiver = Recorder()
    stream = ssc.receiverStream(receiver)
    stream.pprint()
    log = Log()
    ssc.addStreamingListener(log)
    ssc.start()
    try:
        assert receiver.started.wait(5)
        receiver.ctx.store(["a", "b", "c"])
        receiver.ctx.report_error("peer went away")
        clock.set_ms(1_001_000)
        assert ssc.awaitBatchCompleted(1_001_000)
    finally:
        ssc.stop(stopSparkContext=False)  # drains the bus
    names = [name for name, _ in log.events]
    assert names[:2] == ["started", "receiver started"]
    assert log.events[1][1] == (stream._id, "Recorder", True)
    assert ("receiver error", "peer went away") in log.events
    assert ("submitted", (1_001_000, 3)) in log.events
    assert ("completed", (1_001_000, 3, True)) in log.events
    assert names.index("submitted") < names.index("batch started") < names.index("completed")
    assert log.events[-1] == ("receiver stopped", False)
    assert log.threads == {"flumelet-listener-bus"}
