"""The push receiver in a process of its own (consumer.jobs.intake), inside a running
StreamingContext: chunks arrive with the headers the job reads, bodies decoded as in one
process, batches done go back to the child, a stop flushes everything answered, and a child
that cannot listen or that dies is reported."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from typing import Any

import pytest

from common.clock import ManualClock
from consumer import SparkContext
from consumer.jobs.chunks import EventChunk, chunk_records
from consumer.jobs.graph import count_events
from consumer.jobs.intake import ProcessPushReceiver
from consumer.streaming import StreamingContext
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import RpcClient

T0 = 1_700_000_000_300


def _push(port: int, batches: list[list[tuple[dict[str, str], bytes]]]) -> list[str]:
    async def main() -> list[str]:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
        try:
            return [await client.call("appendBatch", {"events": [
                {"headers": h, "body": b} for h, b in batch]}) for batch in batches]
        finally:
            await client.close()

    return asyncio.run(main())


def _wait(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _running(headers: tuple[str, ...] = ()) -> tuple[StreamingContext, ManualClock, Any,
                                                      list[list[Any]], Any]:
    clock = ManualClock(T0 / 1000)
    ssc = StreamingContext(SparkContext(appName="test"), 1, clock=clock)
    receiver = ProcessPushReceiver("127.0.0.1", 0, headers=headers)
    stream = ssc.receiverStream(receiver)
    got: list[list[Any]] = []
    stream.foreachRDD(lambda rdd: got.append(rdd.collect()))
    ssc.start()
    return ssc, clock, receiver, got, stream


def test_calls_arrive_as_chunks_with_the_headers_read_and_text_bodies() -> None:
    ssc, clock, receiver, got, stream = _running(headers=("host",))
    try:
        assert receiver.port != 0
        assert _push(receiver.port, [[({"host": "a", "other": "x"}, b"one"),
                                      ({}, "caf\xe9".encode("latin-1"))],
                                     [({"host": "b"}, "é".encode())]]) == ["OK", "OK"]
        # answered means queued for the parent; stored into the block a moment later
        _wait(lambda: stream.buffer.pending_count() == 2)
        clock.set_ms(T0 + 700)
        assert ssc.awaitBatchCompleted(T0 + 700)
    finally:
        ssc.stop()
    (batch,) = got
    assert all(isinstance(c, EventChunk) for c in batch) and count_events(batch) == 3
    assert chunk_records(batch) == [({"host": "a"}, "one"), ({}, "caf\ufffd"),
                                    ({"host": "b"}, "é")]


def test_stop_flushes_every_answered_call_into_the_last_batch() -> None:
    ssc, _clock, receiver, got, _stream = _running()
    port = receiver.port
    assert _push(port, [[({}, b"%d" % i) for i in range(100)]] * 20) == ["OK"] * 20
    ssc.stop(stopSparkContext=False, stopGraceFully=True)  # the last batch takes the rest
    assert sum(count_events(b) for b in got) == 2000
    with socket.socket() as s:  # the child is gone and its port free
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_port_in_use_fails_the_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ssc = StreamingContext(SparkContext(appName="test"), 1, clock=ManualClock(T0 / 1000))
        ssc.receiverStream(ProcessPushReceiver("127.0.0.1", taken.getsockname()[1])) \
            .foreachRDD(lambda rdd: None)
        with pytest.raises(OSError, match=r"push receiver on 127\.0\.0\.1"):
            ssc.start()


def test_a_child_that_dies_stops_the_context_with_an_error() -> None:
    ssc, _clock, receiver, _got, _stream = _running()
    assert receiver._proc is not None
    os.kill(receiver._proc.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="push receiver's process ended unexpectedly"):
        ssc.awaitTermination(20)


def test_status_shows_the_childs_peers_for_monitors() -> None:
    """The web UI and /metrics read ``status()``: the peers connected to the child."""
    ssc, _clock, receiver, _got, _stream = _running()
    try:
        assert receiver.status()["address"] == f"127.0.0.1:{receiver.port}"

        async def connected() -> list[str]:
            client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", receiver.port)
            try:
                await client.call("appendBatch", {"events": [{"headers": {}, "body": b"x"}]})
                deadline = time.monotonic() + 20
                while not receiver.status()["peers"]:
                    assert time.monotonic() < deadline, "no peer reported"
                    await asyncio.sleep(0.02)
                return list(receiver.status()["peers"])
            finally:
                await client.close()

        (peer,) = asyncio.run(connected())
        assert peer.startswith("127.0.0.1:")
        _wait(lambda: receiver.status()["peers"] == [])  # gone once the client closed
    finally:
        ssc.stop()
