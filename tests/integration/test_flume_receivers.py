"""FlumeUtils receivers inside a running StreamingContext (real loop, manual clock)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.channels.file import FileChannel
from agent.channels.memory import MemoryChannel
from agent.sinks.spark import SparkSink
from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.receiver import BlockBuffer, ReceiverContext
from consumer.flume import FlumeUtils
from consumer.flume.receivers import FlumePollingReceiver, FlumePushReceiver, utf8_decoder
from consumer.flume.wal import WriteAheadLog
from consumer.streaming import StreamingContext
from protocol.event import Event
from protocol.schemas import AVRO_SOURCE_PROTOCOL, SPARK_FLUME_PROTOCOL
from protocol.transport import RpcClient

T0 = 1_700_000_000_300


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _push(port: int, batches: list[list[str]], deflate: bool = False) -> list[str]:
    async def main() -> list[str]:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port, deflate=deflate)
        try:
            return [await client.call("appendBatch", {"events": [
                {"headers": {"n": b}, "body": b.encode()} for b in batch]})
                for batch in batches]
        finally:
            await client.close()

    return asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _context(clock: ManualClock, checkpoint: Path | None = None) -> StreamingContext:
    ssc = StreamingContext(SparkContext(appName="test"), 1, clock=clock)
    if checkpoint is not None:
        ssc.checkpoint(str(checkpoint))
    return ssc


@pytest.mark.parametrize("deflate", [False, True])
def test_push_stream_delivers_headers_and_decoded_bodies(deflate: bool) -> None:
    clock = ManualClock(T0 / 1000)
    ssc = _context(clock)
    stream = FlumeUtils.createStream(ssc, "127.0.0.1", 0, enableDecompression=deflate)
    got: list[Any] = []
    stream.foreachRDD(lambda rdd: got.append(rdd.collect()))
    ssc.start()
    try:
        receiver = stream.receiver
        assert isinstance(receiver, FlumePushReceiver)
        assert _push(receiver.port, [["a", "b"], ["é"]], deflate) == ["OK", "OK"]
        clock.set_ms(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
    finally:
        ssc.stop()
    assert got == [[({"n": "a"}, "a"), ({"n": "b"}, "b"), ({"n": "é"}, "é")]]


def _counting_job(clock: ManualClock, checkpoint: Path, make_stream: Callable[[Any], Any],
                  results: list[dict[str, int]]) -> Callable[[], StreamingContext]:
    def setup() -> StreamingContext:
        ssc = _context(clock, checkpoint)
        stream = make_stream(ssc)
        totals = stream.map(lambda r: (r[1], 1)).updateStateByKey(
            lambda new, old: sum(new) + (old or 0))
        totals.foreachRDD(lambda rdd: results.append(dict(rdd.collect())))
        return ssc

    return setup


def test_push_with_checkpoint_replays_the_write_ahead_log_after_a_crash(tmp_path: Path) -> None:
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []
    port = _free_port()  # the log lives under the receiver's address: keep it across restarts

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createStream(ssc, "127.0.0.1", port)

    setup = _counting_job(clock, tmp_path / "cp", stream, results)
    ssc = StreamingContext.getOrCreate(str(tmp_path / "cp"), setup)
    ssc.start()
    receiver = ssc.graph.inputs[0].receiver
    assert _push(receiver.port, [["a", "b"]]) == ["OK"]  # durable in the log
    clock.set_ms(T0 + 700)
    assert ssc.awaitBatchCompleted(T0 + 700)
    assert results[-1] == {"a": 1, "b": 1}
    assert _push(receiver.port, [["b", "c"]]) == ["OK"]  # logged, never processed
    ssc.stop(stopGraceFully=False)  # a crash as far as batch T0+1700 is concerned

    clock2 = ManualClock((T0 + 1_000) / 1000)
    results2: list[dict[str, int]] = []
    setup2 = _counting_job(clock2, tmp_path / "cp", stream, results2)
    ssc2 = StreamingContext.getOrCreate(str(tmp_path / "cp"), setup2)
    ssc2.start()
    try:
        clock2.set_ms(T0 + 1_700)
        assert ssc2.awaitBatchCompleted(T0 + 1_700)
    finally:
        ssc2.stop()
    # "a" and "b" from the first batch are not replayed: the checkpoint covered them.
    assert results2[-1] == {"a": 1, "b": 2, "c": 1}


def test_push_into_a_fresh_context_never_replays_a_previous_runs_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13: the tutorial pattern (``ssc.checkpoint(dir)``, no ``getOrCreate``) counted
    the previous run's logged events again on every restart. As in Spark, a fresh context
    skips them and says so; getOrCreate (the test above) still resumes them."""
    port = _free_port()
    cp = tmp_path / "cp"

    def run(clock: ManualClock, batches: list[list[str]], leave: bool = True,
            ) -> list[dict[str, int]]:
        results: list[dict[str, int]] = []
        ssc = _counting_job(clock, cp, lambda s: FlumeUtils.createStream(s, "127.0.0.1", port),
                            results)()
        ssc.start()
        try:
            for batch in batches:
                assert _push(port, [batch]) == ["OK"]
            clock.advance(1)
            assert ssc.awaitBatchCompleted(clock.now_ms())
            if leave:
                assert _push(port, [["logged", "never", "processed"]]) == ["OK"]
        finally:
            ssc.stop(stopGraceFully=False)
        return results

    assert run(ManualClock((T0 - 300) / 1000), [["a", "b"]])[-1] == {"a": 1, "b": 1}
    caplog.set_level("WARNING", logger="consumer.flume")
    again = run(ManualClock((T0 + 10_000 - 300) / 1000), [], leave=False)
    assert again[-1] == {}, "a fresh context counted the previous run's events"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("skipping 3 events (1 batches)" in w and "getOrCreate" in w
               for w in warnings), warnings
    caplog.clear()
    run(ManualClock((T0 + 20_000 - 300) / 1000), [])
    assert not any("skipping" in r.getMessage() for r in caplog.records), "skipped twice"


class HeldSink(SparkSink):
    """A SparkSink that serves no batch before it has answered an ack or a nack: the hook
    that makes a restarted agent's answer to an old ack come before its replay."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.settled = asyncio.Event()

    async def _handle(self, call: Any, conn: Any) -> Any:
        if call.message == "getEventBatch":
            await self.settled.wait()
            return await super()._handle(call, conn)
        try:
            return await super()._handle(call, conn)
        finally:
            self.settled.set()


class AgentThread:
    """A SparkSink on its own loop in a thread (the agent process): on a memory channel, or
    on a file channel in ``data`` (then ``kill()`` is a SIGKILL: nothing is committed or
    rolled back on disk, and a new AgentThread on the same directory replays it)."""

    def __init__(self, timeout: float = 60.0, close_grace: float = 0.3, data: Path | None = None,
                 port: int = 0, sink: type[SparkSink] = SparkSink) -> None:
        self.loop = asyncio.new_event_loop()
        self.channel = (MemoryChannel("c1", capacity=10_000, transaction_capacity=1000)
                        if data is None else
                        FileChannel("c1", data, capacity=10_000, transaction_capacity=1000))
        self.sink = sink("k1", "127.0.0.1", port, timeout=timeout, close_grace=close_grace)
        self.sink.channel = self.channel
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.sink.start())

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def fill(self, bodies: list[str]) -> None:
        async def put() -> None:
            tx = self.channel.transaction()
            tx.begin()
            for b in bodies:
                tx.put(Event({"n": b}, b.encode()))
            tx.commit()
            tx.close()

        self.call(put())

    def size(self) -> int:
        async def size() -> int:
            return self.channel.size() + self.sink.outstanding

        return int(self.call(size()))

    def stop(self) -> None:
        self.call(self.sink.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def kill(self) -> None:
        """Vanish at once: connections and port closed, nothing settled."""
        self.call(self.sink.server.stop())
        if isinstance(self.channel, FileChannel):
            self.channel._unlock()  # the system releases a killed process's directory lock
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def agent() -> Any:
    a = AgentThread()
    yield a
    a.stop()


def test_pull_stream_acks_after_each_batch(agent: AgentThread) -> None:
    clock = ManualClock(T0 / 1000)
    ssc = _context(clock)
    stream = FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)],
                                            maxBatchSize=7, parallelism=2)
    got: list[Any] = []
    stream.foreachRDD(lambda rdd: got.extend(rdd.collect()))
    ssc.start()
    try:
        agent.fill([f"e{i}" for i in range(20)])
        _wait(lambda: stream.buffer.pending_count() == 20)
        clock.set_ms(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
    finally:
        ssc.stop()
    assert sorted(b for _, b in got) == sorted(f"e{i}" for i in range(20))
    assert agent.size() == 0


def test_pull_with_checkpoint_acks_only_after_the_checkpoint(agent: AgentThread,
                                                              tmp_path: Path) -> None:
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)])

    ssc = StreamingContext.getOrCreate(str(tmp_path / "cp"),
                                       _counting_job(clock, tmp_path / "cp", stream, results))
    ssc.start()
    try:
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
        assert agent.sink.outstanding == 1  # held open in the agent until the checkpoint
        clock.set_ms(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
        _wait(lambda: agent.size() == 0)
    finally:
        ssc.stop()
    assert results[-1] == {"x": 2, "y": 1}


def test_pull_exactly_once_when_the_crash_falls_between_checkpoint_and_ack(
        agent: AgentThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)],
                                              parallelism=3)

    cp = tmp_path / "cp"
    ssc = StreamingContext.getOrCreate(str(cp), _counting_job(clock, cp, stream, results))

    async def crash_before_ack(self: FlumePollingReceiver, tokens: Any) -> None:
        return None  # the process "dies" right after the checkpoint became durable

    monkeypatch.setattr(FlumePollingReceiver, "on_batch_done", crash_before_ack)
    ssc.start()
    agent.fill(["x", "y", "x"])
    _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
    clock.set_ms(T0 + 700)
    assert ssc.awaitBatchCompleted(T0 + 700)
    ssc.stop()  # connections close: the agent rolls the unacked batch back
    monkeypatch.undo()
    _wait(lambda: agent.sink.outstanding == 0 and agent.channel.size() == 3)
    assert results[-1] == {"x": 2, "y": 1}

    clock2 = ManualClock((T0 + 1_000) / 1000)
    results2: list[dict[str, int]] = []
    ssc2 = StreamingContext.getOrCreate(str(cp), _counting_job(clock2, cp, stream, results2))
    ssc2.start()
    try:
        agent.fill(["y", "z"])
        _wait(lambda: ssc2.graph.inputs[0].buffer.pending_count() == 2)
        clock2.set_ms(T0 + 1_700)
        assert ssc2.awaitBatchCompleted(T0 + 1_700)
        _wait(lambda: agent.size() == 0)
    finally:
        ssc2.stop()
    assert results2[-1] == {"x": 2, "y": 2, "z": 1}  # redelivered x, y, x counted once


def _recorded_batches() -> list[dict[str, Any]]:
    """The EventBatch values a Java SparkSink answered in the recorded pull capture."""
    from protocol.rpc import ClientSession
    from protocol.schemas import SPARK_FLUME_PROTOCOL
    from tests.vectors import load

    cap = load("spark-poll-ack-nack")
    client = ClientSession(SPARK_FLUME_PROTOCOL)
    for message, params in [("getEventBatch", {"n": 3}), ("ack", {"sequenceNumber": "0"}),
                            ("getEventBatch", {"n": 3}), ("nack", {"sequenceNumber": "1"}),
                            ("getEventBatch", {"n": 3}), ("ack", {"sequenceNumber": "2"})]:
        client.send_request(message, params)
    return [r.value for r in client.feed(cap.server_to_client) if r.message == "getEventBatch"]


def test_receiver_drives_the_recorded_sink_conversation(tmp_path: Path) -> None:
    """Serve the recorded batches: the receiver acks the first, nacks the one its job failed
    on, and after a restart acks the redelivery, as the recorded Java poller did."""
    from protocol.rpc import CallRequest
    from protocol.schemas import SPARK_FLUME_PROTOCOL
    from protocol.transport import Connection, RpcServer

    batches = _recorded_batches()
    settled: list[tuple[str, str]] = []
    loop = asyncio.new_event_loop()
    served = [0]

    changed: list[asyncio.Event] = []

    async def handler(call: CallRequest, conn: Connection) -> Any:
        if not changed:
            changed.append(asyncio.Event())
        if call.message != "getEventBatch":
            settled.append((call.message, call.params["sequenceNumber"]))
            changed[0].set()
            return None
        assert call.params["n"] == 3
        # like the recorded sink: the next batch only once the previous one was settled
        while not (served[0] < len(batches) and len(settled) == served[0]):
            changed[0].clear()
            await changed[0].wait()
        served[0] += 1
        batch = batches[served[0] - 1]

        def roll_back() -> None:  # as a SparkSink does when the poller goes away
            if all(seq != batch["sequenceNumber"] for _, seq in settled):
                served[0] -= 1
                changed[0].set()

        conn.on_close(roll_back)
        return batch

    server = RpcServer(SPARK_FLUME_PROTOCOL, handler)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    cp = tmp_path / "cp"
    seen: list[list[str]] = []

    def setup(clock: ManualClock, fail_on: str | None) -> Callable[[], StreamingContext]:
        def make() -> StreamingContext:
            ssc = _context(clock, cp)
            stream = FlumeUtils.createPollingStream(ssc, [("127.0.0.1", server.port)],
                                                    maxBatchSize=3, parallelism=1)

            def out(rdd: Any) -> None:
                bodies = [b[:10] for _, b in rdd.collect()]
                if bodies:
                    seen.append(bodies)
                if fail_on is not None and len(bodies) == 2:
                    raise RuntimeError(fail_on)

            stream.foreachRDD(out)
            return ssc

        return make

    try:
        clock = ManualClock(T0 / 1000)
        ssc = StreamingContext.getOrCreate(str(cp), setup(clock, "job bug"))
        ssc.start()
        for t in (T0 + 700, T0 + 1_700):
            _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() > 0)
            clock.set_ms(t)
            ssc.awaitBatchCompleted(t)
        with pytest.raises(RuntimeError, match="job bug"):
            ssc.awaitTermination(10)
        clock2 = ManualClock((T0 + 2_000) / 1000)
        ssc2 = StreamingContext.getOrCreate(str(cp), setup(clock2, None))
        ssc2.start()
        _wait(lambda: ssc2.graph.inputs[0].buffer.pending_count() > 0)
        clock2.set_ms(T0 + 2_700)
        assert ssc2.awaitBatchCompleted(T0 + 2_700)
        _wait(lambda: len(settled) == 3)
        ssc2.stop()
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert settled == [("ack", "0"), ("nack", "1"), ("ack", "2")]
    assert [len(b) for b in seen] == [3, 2, 2]


def _pull_job(clock: ManualClock, cp: Path, port: int,
              results: list[dict[str, int]]) -> StreamingContext:
    def stream(ssc: Any) -> Any:
        return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", port)], parallelism=2)

    return StreamingContext.getOrCreate(str(cp), _counting_job(clock, cp, stream, results))


def _batch(ssc: StreamingContext, clock: ManualClock, t: int) -> None:
    clock.set_ms(t)
    assert ssc.awaitBatchCompleted(t, timeout=20)


def test_pull_digests_of_a_batch_whose_ack_failed_survive_a_consumer_crash(
        tmp_path: Path) -> None:
    """Issue 13: the agent dies before the ack of a counted batch; newer checkpoints are
    written (empty batches); the consumer dies; the restarted agent replays the batch from
    its file channel. The digests kept only in memory were lost with the consumer."""
    cp, data = tmp_path / "cp", tmp_path / "channel"
    agent = AgentThread(data=data)
    port = agent.sink.port
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []
    ssc = _pull_job(clock, cp, port, results)
    ssc.start()
    agent.fill(["x", "y", "x"])
    _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
    agent.kill()
    _batch(ssc, clock, T0 + 700)  # counted and checkpointed; every ack attempt fails
    _batch(ssc, clock, T0 + 1_700)
    _batch(ssc, clock, T0 + 2_700)  # newer checkpoints: the batch is no longer "covered"
    ssc.stop(stopGraceFully=False)  # the consumer dies
    assert results[-1] == {"x": 2, "y": 1}

    again = AgentThread(data=data, port=port)
    try:
        assert again.channel.size() == 3  # the file channel replays the unacked batch
        clock2 = ManualClock((T0 + 3_000) / 1000)
        results2: list[dict[str, int]] = []
        ssc2 = _pull_job(clock2, cp, port, results2)
        ssc2.start()
        try:
            again.fill(["z"])
            _wait(lambda: again.channel.size() == 0
                  and ssc2.graph.inputs[0].buffer.pending_count() == 1)  # z; x, y, x dropped
            _batch(ssc2, clock2, T0 + 3_700)
            _wait(lambda: again.size() == 0)
        finally:
            ssc2.stop()
    finally:
        again.stop()
    assert results2[-1] == {"x": 2, "y": 1, "z": 1}


def test_pull_an_ack_answered_by_a_restarted_agent_does_not_count_as_one(
        tmp_path: Path) -> None:
    """Issue 21: the agent is killed and restarted while the consumer holds a polled batch;
    the batch's ack reaches the new agent, which does not know the sequence number (the
    hook makes it answer before it serves the replay). Taken as success, the replayed batch
    was counted twice."""
    cp, data = tmp_path / "cp", tmp_path / "channel"
    agent = AgentThread(data=data)
    port = agent.sink.port
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []
    ssc = _pull_job(clock, cp, port, results)
    ssc.start()
    again: AgentThread | None = None
    try:
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
        agent.kill()
        again = AgentThread(data=data, port=port, sink=HeldSink)
        assert again.channel.size() == 3
        _batch(ssc, clock, T0 + 700)  # counted; the ack is answered "unknown"
        assert again.sink.settled.is_set()
        _wait(lambda: again is not None and again.channel.size() == 0)  # the replay is served
        _batch(ssc, clock, T0 + 1_700)  # ... and recognised
        _wait(lambda: again is not None and again.size() == 0)
        _batch(ssc, clock, T0 + 2_700)
    finally:
        ssc.stop()
        if again is not None:
            again.stop()
    assert results[-1] == {"x": 2, "y": 1}


def test_pull_a_batch_replayed_before_it_was_counted_is_counted_once(tmp_path: Path) -> None:
    """The other order: the restarted agent serves its replay while the consumer still holds
    the first copy, not yet counted. The broken connections make the receiver watch the
    batches in flight, and the copy is dropped."""
    cp, data = tmp_path / "cp", tmp_path / "channel"
    agent = AgentThread(data=data)
    port = agent.sink.port
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []
    ssc = _pull_job(clock, cp, port, results)
    ssc.start()
    again: AgentThread | None = None
    try:
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
        agent.kill()
        again = AgentThread(data=data, port=port)
        _wait(lambda: again is not None and again.channel.size() == 0
              and again.sink.outstanding == 1)  # the replay reached the consumer
        assert ssc.graph.inputs[0].buffer.pending_count() == 3
        _batch(ssc, clock, T0 + 700)
        _wait(lambda: again is not None and again.size() == 0)  # the replay's ack commits
        again.fill(["x"])  # a new identical event is counted: the watch is over
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 1)
        _batch(ssc, clock, T0 + 1_700)
    finally:
        ssc.stop()
        if again is not None:
            again.stop()
    assert results[-1] == {"x": 3, "y": 1}


class JavaLikeSink:
    """Serves fixed batches the way Spark's SparkSink answers: ``null`` to every ack, known
    or not, with no metadata; no batch before the previous one is settled. ``restart()``
    is a new process on the same port that serves its unsettled batch again under a new
    sequence number (a file channel's replay)."""

    def __init__(self, batches: list[list[str]]) -> None:
        from protocol.transport import RpcServer

        self.batches = [[{"headers": {"n": b}, "body": b.encode()} for b in batch]
                        for batch in batches]
        self.acked: list[str] = []
        self.served = 0
        self.incarnation = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settled = threading.Event()
        self.server = RpcServer(SPARK_FLUME_PROTOCOL, self._handle)
        self._call(self.server.start())
        self.port = self.server.port

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _handle(self, call: Any, conn: Any) -> Any:
        if call.message != "getEventBatch":
            self.acked.append(call.params["sequenceNumber"])
            if call.params["sequenceNumber"] == f"i{self.incarnation}-{self.served}":
                self.settled.set()
            return None
        while self.served >= len(self.batches) or (self.served and not self.settled.is_set()):
            await asyncio.sleep(0.01)
        self.settled.clear()
        self.served += 1
        return {"errorMsg": "", "sequenceNumber": f"i{self.incarnation}-{self.served}",
                "events": self.batches[self.served - 1]}

    def restart(self) -> None:
        """Killed before the served batch was settled; the new process serves it again."""
        from protocol.transport import RpcServer

        self._call(self.server.stop())
        self.incarnation += 1
        self.served -= 1
        self.settled.set()
        self.server = RpcServer(SPARK_FLUME_PROTOCOL, self._handle, port=self.port)
        self._call(self.server.start())

    def stop(self) -> None:
        self._call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_pull_from_a_sink_without_ack_proofs_trusts_only_an_unbroken_ack_connection(
        tmp_path: Path) -> None:
    """Spark's SparkSink answers null to any ack. Its null counts when it came on the ack
    connection that was open when the batch was polled; after a reconnect (the agent was
    restarted) it proves nothing, and the replayed batch is counted once."""
    sink = JavaLikeSink([["a", "b"], ["c", "a"]])
    cp = tmp_path / "cp"
    clock = ManualClock(T0 / 1000)
    results: list[dict[str, int]] = []

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", sink.port)], parallelism=1)

    ssc = StreamingContext.getOrCreate(str(cp), _counting_job(clock, cp, stream, results))
    ssc.start()
    try:
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 2)
        _batch(ssc, clock, T0 + 700)  # acked on the unbroken connection: proven
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 2)
        sink.restart()  # killed before the second batch's ack; it comes back
        _batch(ssc, clock, T0 + 1_700)  # its ack reaches the new process: null, unproven
        receiver = ssc.graph.inputs[0].receiver
        _wait(lambda: sink.served == 2 and receiver.ledger.expecting == 0)  # replay dropped
        _batch(ssc, clock, T0 + 2_700)
        _wait(lambda: sink.acked[-1:] == ["i1-2"])  # and acked after that checkpoint
    finally:
        ssc.stop()
        sink.stop()
    assert results[-1] == {"a": 2, "b": 1, "c": 1}
    address = f"127.0.0.1:{sink.port}"
    proven = (cp / "receivers" / "pull-acks.log").read_text().splitlines()
    assert proven == [f"{address} i0-1", f"{address} i1-2"]  # not i0-2


def test_the_redelivery_horizon_runs_on_the_contexts_clock_not_wall_time() -> None:
    """A ManualClock drives how long counted events are awaited (only while the agent is
    reachable), so tests never sleep through the horizon."""
    from consumer.engine.receiver import BlockBuffer, ReceiverContext
    from consumer.flume.redelivery import digest

    clock = ManualClock(T0 / 1000)
    receiver = FlumePollingReceiver(object(), [("h", 1)], 1000, 1, lambda b: b, horizon=30)
    receiver._ctx = ReceiverContext(0, 1000, clock, BlockBuffer())
    receiver.ledger.expect("h:1", [digest({"headers": {}, "body": b"x"})])
    receiver.ledger.reachable("h:1", True, receiver._now())
    clock.set_ms(T0 + 30_000 - 1)
    assert receiver.ledger.expire(receiver._now()) == []
    clock.set_ms(T0 + 30_000)
    assert receiver.ledger.expire(receiver._now()) == [("h:1", 1)]


def test_pull_graceful_stop_then_restart_counts_once(tmp_path: Path) -> None:
    """Found in review: a graceful stop closes the poll connections before the last batch's
    acks go out; the sink must let those acks commit (its close grace) so the restart does
    not count the same events again."""
    agent = AgentThread(close_grace=5.0)
    try:
        clock = ManualClock(T0 / 1000)
        results: list[dict[str, int]] = []

        def stream(ssc: Any) -> Any:
            return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)])

        cp = tmp_path / "cp"
        ssc = StreamingContext.getOrCreate(str(cp), _counting_job(clock, cp, stream, results))
        ssc.start()
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc.graph.inputs[0].buffer.pending_count() == 3)
        ssc.stop(stopGraceFully=True)
        assert results[-1] == {"x": 2, "y": 1}
        assert agent.size() == 0  # the final batch's acks were committed

        clock2 = ManualClock((T0 + 1_000) / 1000)
        results2: list[dict[str, int]] = []
        ssc2 = StreamingContext.getOrCreate(str(cp), _counting_job(clock2, cp, stream, results2))
        ssc2.start()
        try:
            agent.fill(["z"])
            _wait(lambda: ssc2.graph.inputs[0].buffer.pending_count() == 1)
            clock2.set_ms(T0 + 1_700)
            assert ssc2.awaitBatchCompleted(T0 + 1_700)
        finally:
            ssc2.stop()
        assert results2[-1] == {"x": 2, "y": 1, "z": 1}
    finally:
        agent.stop()



def test_push_graceful_stop_answers_every_call_it_logged(tmp_path: Path) -> None:
    """A call whose events reached the write-ahead log (a restart replays them) must be
    answered OK before the receiver stops: an agent that saw its connection close instead
    sends the batch again, and it is counted twice (seen in tests/e2e/test_pipeline.py's
    graceful restart under load). Calls that come once the stop began get FAILED and are not
    logged: the agent keeps them for the next run."""

    class Ssc:
        checkpointDir = str(tmp_path / "cp")

    async def send(client: RpcClient, body: str) -> str:
        try:
            return str(await client.call("appendBatch", {"events": [
                {"headers": {}, "body": body.encode()}]}))
        except (ConnectionError, OSError) as exc:
            return f"no answer: {exc}"
        finally:
            await client.close()

    async def main() -> tuple[list[Any], list[str]]:
        receiver = FlumePushReceiver(Ssc(), "127.0.0.1", 0, False, utf8_decoder)
        await receiver.start(ReceiverContext(0, 1000, ManualClock(T0 / 1000), BlockBuffer()))
        wal = receiver._wal
        assert wal is not None
        append, logged, go = wal.append, asyncio.Event(), asyncio.Event()

        async def append_then_wait(records: Any) -> int:
            end = await append(records)  # durable now; the stop lands before the reply
            logged.set()
            await go.wait()
            return end

        wal.append = append_then_wait  # type: ignore[method-assign]
        late = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", receiver.port)
        await late.connect()
        first = asyncio.create_task(
            send(RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", receiver.port), "logged"))
        await logged.wait()
        stopping = asyncio.create_task(receiver.stop())
        await asyncio.sleep(0.05)
        late_answer = await send(late, "late")
        go.set()
        await stopping
        entries = await asyncio.to_thread(WriteAheadLog(wal.dir).open, 0)
        return [r for _, records in entries for r in records], [await first, late_answer]

    logged, answers = asyncio.run(main())
    assert logged == [({}, b"logged")]
    assert answers == ["OK", "FAILED"]
