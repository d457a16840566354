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

from agent.channels.memory import MemoryChannel
from agent.sinks.spark import SparkSink
from consumer import SparkContext
from consumer.engine.clock import ManualClock
from consumer.flume import FlumeUtils
from consumer.flume.receivers import FlumePollingReceiver, FlumePushReceiver
from consumer.streaming import StreamingContext
from protocol.event import Event
from protocol.schemas import AVRO_SOURCE_PROTOCOL
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
    clock = ManualClock(T0)
    ssc = _context(clock)
    stream = FlumeUtils.createStream(ssc, "127.0.0.1", 0, enableDecompression=deflate)
    got: list[Any] = []
    stream.foreachRDD(lambda rdd: got.append(rdd.collect()))
    ssc.start()
    try:
        receiver = stream.receiver
        assert isinstance(receiver, FlumePushReceiver)
        assert _push(receiver.port, [["a", "b"], ["é"]], deflate) == ["OK", "OK"]
        clock.set(T0 + 700)
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
    clock = ManualClock(T0)
    results: list[dict[str, int]] = []
    port = _free_port()  # the log lives under the receiver's address: keep it across restarts

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createStream(ssc, "127.0.0.1", port)

    setup = _counting_job(clock, tmp_path / "cp", stream, results)
    ssc = StreamingContext.getOrCreate(str(tmp_path / "cp"), setup)
    ssc.start()
    receiver = ssc._inputs[0].receiver
    assert _push(receiver.port, [["a", "b"]]) == ["OK"]  # durable in the log
    clock.set(T0 + 700)
    assert ssc.awaitBatchCompleted(T0 + 700)
    assert results[-1] == {"a": 1, "b": 1}
    assert _push(receiver.port, [["b", "c"]]) == ["OK"]  # logged, never processed
    ssc.stop(stopGraceFully=False)  # a crash as far as batch T0+1700 is concerned

    clock2 = ManualClock(T0 + 1_000)
    results2: list[dict[str, int]] = []
    setup2 = _counting_job(clock2, tmp_path / "cp", stream, results2)
    ssc2 = StreamingContext.getOrCreate(str(tmp_path / "cp"), setup2)
    ssc2.start()
    try:
        clock2.set(T0 + 1_700)
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
            clock.advance(1_000)
            assert ssc.awaitBatchCompleted(clock.now_ms())
            if leave:
                assert _push(port, [["logged", "never", "processed"]]) == ["OK"]
        finally:
            ssc.stop(stopGraceFully=False)
        return results

    assert run(ManualClock(T0 - 300), [["a", "b"]])[-1] == {"a": 1, "b": 1}
    caplog.set_level("WARNING", logger="consumer.flume")
    again = run(ManualClock(T0 + 10_000 - 300), [], leave=False)
    assert again[-1] == {}, "a fresh context counted the previous run's events"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("skipping 3 events (1 batches)" in w and "getOrCreate" in w
               for w in warnings), warnings
    caplog.clear()
    run(ManualClock(T0 + 20_000 - 300), [])
    assert not any("skipping" in r.getMessage() for r in caplog.records), "skipped twice"


class AgentThread:
    """A SparkSink on a memory channel, on its own loop in a thread (the agent process)."""

    def __init__(self, timeout: float = 60.0, close_grace: float = 0.3) -> None:
        self.loop = asyncio.new_event_loop()
        self.channel = MemoryChannel("c1", capacity=10_000, transaction_capacity=1000)
        self.sink = SparkSink("k1", "127.0.0.1", 0, timeout=timeout, close_grace=close_grace)
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


@pytest.fixture
def agent() -> Any:
    a = AgentThread()
    yield a
    a.stop()


def test_pull_stream_acks_after_each_batch(agent: AgentThread) -> None:
    clock = ManualClock(T0)
    ssc = _context(clock)
    stream = FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)],
                                            maxBatchSize=7, parallelism=2)
    got: list[Any] = []
    stream.foreachRDD(lambda rdd: got.extend(rdd.collect()))
    ssc.start()
    try:
        agent.fill([f"e{i}" for i in range(20)])
        _wait(lambda: stream.buffer.pending_count() == 20)
        clock.set(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
    finally:
        ssc.stop()
    assert sorted(b for _, b in got) == sorted(f"e{i}" for i in range(20))
    assert agent.size() == 0


def test_pull_with_checkpoint_acks_only_after_the_checkpoint(agent: AgentThread,
                                                              tmp_path: Path) -> None:
    clock = ManualClock(T0)
    results: list[dict[str, int]] = []

    def stream(ssc: Any) -> Any:
        return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)])

    ssc = StreamingContext.getOrCreate(str(tmp_path / "cp"),
                                       _counting_job(clock, tmp_path / "cp", stream, results))
    ssc.start()
    try:
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc._inputs[0].buffer.pending_count() == 3)
        assert agent.sink.outstanding == 1  # held open in the agent until the checkpoint
        clock.set(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
        _wait(lambda: agent.size() == 0)
    finally:
        ssc.stop()
    assert results[-1] == {"x": 2, "y": 1}


def test_pull_exactly_once_when_the_crash_falls_between_checkpoint_and_ack(
        agent: AgentThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock(T0)
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
    _wait(lambda: ssc._inputs[0].buffer.pending_count() == 3)
    clock.set(T0 + 700)
    assert ssc.awaitBatchCompleted(T0 + 700)
    ssc.stop()  # connections close: the agent rolls the unacked batch back
    monkeypatch.undo()
    _wait(lambda: agent.sink.outstanding == 0 and agent.channel.size() == 3)
    assert results[-1] == {"x": 2, "y": 1}

    clock2 = ManualClock(T0 + 1_000)
    results2: list[dict[str, int]] = []
    ssc2 = StreamingContext.getOrCreate(str(cp), _counting_job(clock2, cp, stream, results2))
    ssc2.start()
    try:
        agent.fill(["y", "z"])
        _wait(lambda: ssc2._inputs[0].buffer.pending_count() == 2)
        clock2.set(T0 + 1_700)
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
        clock = ManualClock(T0)
        ssc = StreamingContext.getOrCreate(str(cp), setup(clock, "job bug"))
        ssc.start()
        for t in (T0 + 700, T0 + 1_700):
            _wait(lambda: ssc._inputs[0].buffer.pending_count() > 0)
            clock.set(t)
            ssc.awaitBatchCompleted(t)
        with pytest.raises(RuntimeError, match="job bug"):
            ssc.awaitTermination(10)
        clock2 = ManualClock(T0 + 2_000)
        ssc2 = StreamingContext.getOrCreate(str(cp), setup(clock2, None))
        ssc2.start()
        _wait(lambda: ssc2._inputs[0].buffer.pending_count() > 0)
        clock2.set(T0 + 2_700)
        assert ssc2.awaitBatchCompleted(T0 + 2_700)
        _wait(lambda: len(settled) == 3)
        ssc2.stop()
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    assert settled == [("ack", "0"), ("nack", "1"), ("ack", "2")]
    assert [len(b) for b in seen] == [3, 2, 2]


def test_counted_events_are_dropped_wherever_they_come_in_a_redelivery() -> None:
    """Agents roll batches back newest-first or interleaved: order must not matter."""
    from consumer.flume.receivers import PullToken, digest, utf8_decoder

    receiver = FlumePollingReceiver(object(), [("h", 1)], 1000, 1, utf8_decoder)

    def ev(i: int) -> dict[str, Any]:
        return {"headers": {}, "body": b"e%d" % i}

    covered, newer = [ev(i) for i in range(3)], [ev(i) for i in range(3, 5)]
    receiver.restore_unacknowledged(
        [PullToken("h:1", "s1", tuple(digest(e) for e in covered))])
    receiver._recovery_deadline = time.monotonic() + 60
    kept = receiver._drop_counted("h:1", newer + covered[:2])
    assert kept == newer
    assert receiver._drop_counted("other:2", [covered[2], ev(9)]) == [ev(9)]
    assert receiver._drop_counted("h:1", covered) == covered  # recovery is over


def test_pull_graceful_stop_then_restart_counts_once(tmp_path: Path) -> None:
    """Found in review: a graceful stop closes the poll connections before the last batch's
    acks go out; the sink must let those acks commit (its close grace) so the restart does
    not count the same events again."""
    agent = AgentThread(close_grace=5.0)
    try:
        clock = ManualClock(T0)
        results: list[dict[str, int]] = []

        def stream(ssc: Any) -> Any:
            return FlumeUtils.createPollingStream(ssc, [("127.0.0.1", agent.sink.port)])

        cp = tmp_path / "cp"
        ssc = StreamingContext.getOrCreate(str(cp), _counting_job(clock, cp, stream, results))
        ssc.start()
        agent.fill(["x", "y", "x"])
        _wait(lambda: ssc._inputs[0].buffer.pending_count() == 3)
        ssc.stop(stopGraceFully=True)
        assert results[-1] == {"x": 2, "y": 1}
        assert agent.size() == 0  # the final batch's acks were committed

        clock2 = ManualClock(T0 + 1_000)
        results2: list[dict[str, int]] = []
        ssc2 = StreamingContext.getOrCreate(str(cp), _counting_job(clock2, cp, stream, results2))
        ssc2.start()
        try:
            agent.fill(["z"])
            _wait(lambda: ssc2._inputs[0].buffer.pending_count() == 1)
            clock2.set(T0 + 1_700)
            assert ssc2.awaitBatchCompleted(T0 + 1_700)
        finally:
            ssc2.stop()
        assert results2[-1] == {"x": 2, "y": 1, "z": 1}
    finally:
        agent.stop()
