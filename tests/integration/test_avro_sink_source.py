"""Avro sink -> Avro source over loopback, and the faults the sink must survive."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.components import ManualClock, Status
from agent.metrics import MetricsRegistry
from agent.registry import BuildContext
from agent.sinks import EventDeliveryException
from agent.sinks.avro import AvroSink
from agent.sources.avro import AvroSource
from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import Connection, RpcClient, RpcServer
from tests.agent_helpers import channel, drain, fill, processor, spec
from tests.tls import make_cert
from tests.vectors import load


def _source(port: int = 0, **settings: Any) -> tuple[AvroSource, Any]:
    src = AvroSource.from_spec(
        spec("source", "r1", "avro", {"bind": "127.0.0.1", "port": port, **settings}),
        BuildContext(),
    )
    ch = channel()
    src.channel_processor = processor(ch)
    return src, ch


def _sink(port: int, host: str = "127.0.0.1", **settings: Any) -> AvroSink:
    sink = AvroSink.from_spec(
        spec("sink", "k1", "avro", {"hostname": host, "port": port, "batch-size": 100,
                                    **settings}, channel="c1"),
        BuildContext(clock=ManualClock(), metrics=MetricsRegistry()),
    )
    sink.channel = channel()
    return sink


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("deflate", [False, True])
def test_sink_delivers_exactly_to_source(tls: bool, deflate: bool, tmp_path: Path) -> None:
    extra_src: dict[str, Any] = {"compression-type": "deflate" if deflate else "none"}
    extra_sink: dict[str, Any] = dict(extra_src)
    host = "127.0.0.1"
    if tls:
        cert, key = make_cert(tmp_path)
        pem = tmp_path / "keystore.pem"
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        extra_src |= {"ssl": True, "keystore": str(pem)}
        extra_sink |= {"ssl": True, "truststore": str(cert)}
        host = "localhost"

    async def main() -> None:
        src, dest = _source(**extra_src)
        await src.start()
        sink = _sink(src.port, host, **extra_sink)
        sent = fill(sink.channel, 250)
        try:
            assert [await sink.process() for _ in range(4)] == [
                Status.READY, Status.READY, Status.READY, Status.BACKOFF]
        finally:
            await sink.stop()
            await src.stop()
        assert drain(dest) == sent
        assert sink.channel.size() == 0
        assert sink.counter.counters["EventDrainSuccessCount"] == 250
        assert src.counter.counters["AppendBatchAcceptedCount"] == 3

    asyncio.run(main())


class Peer:
    """A scripted Avro source: answers from a list of behaviours."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.received: list[list[bytes]] = []

    async def __call__(self, call: CallRequest, conn: Connection) -> Any:
        action = self.script.pop(0) if self.script else "OK"
        self.received.append([e["body"] for e in call.params["events"]])
        if action == "stall":
            await asyncio.sleep(30)
        if action == "error":
            raise RuntimeError("peer blew up")
        return action


@pytest.mark.parametrize("fault", ["FAILED", "UNKNOWN", "stall", "error"])
def test_nothing_is_committed_unless_the_peer_said_ok(fault: str) -> None:
    async def main() -> None:
        peer = Peer(fault)
        server = RpcServer(AVRO_SOURCE_PROTOCOL, peer)
        await server.start()
        sink = _sink(server.port, **{"request-timeout": 1000})
        sink.client.request_timeout = 0.3
        sent = fill(sink.channel, 10)
        try:
            with pytest.raises(EventDeliveryException):
                await sink.process()
            assert sink.channel.size() == 10  # rolled back, in order
            assert await sink.process() is Status.READY
        finally:
            await sink.stop()
            await server.stop()
        assert sink.channel.size() == 0
        assert peer.received == [[e.body for e in sent]] * 2  # resent once, in order
        assert sink.counter.counters["EventWriteFail"] == 1

    asyncio.run(main())


def test_peer_closing_mid_batch_rolls_back() -> None:
    async def main() -> None:
        # A raw server that reads the request and hangs up without answering.
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.close()

        raw = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = raw.sockets[0].getsockname()[1]
        sink = _sink(port)
        fill(sink.channel, 5)
        try:
            with pytest.raises(EventDeliveryException, match="closed the connection"):
                await sink.process()
            assert sink.channel.size() == 5
        finally:
            await sink.stop()
            raw.close()

    asyncio.run(main())


def test_peer_down_at_start_then_up() -> None:
    async def main() -> None:
        probe = RpcServer(AVRO_SOURCE_PROTOCOL, Peer())
        await probe.start()
        port = probe.port
        await probe.stop()
        sink = _sink(port)
        fill(sink.channel, 3)
        with pytest.raises(EventDeliveryException):
            await sink.process()
        assert sink.channel.size() == 3
        peer = Peer()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, peer, port=port)
        await server.start()
        try:
            assert await sink.process() is Status.READY
        finally:
            await sink.stop()
            await server.stop()
        assert peer.received == [[b"event 0", b"event 1", b"event 2"]]

    asyncio.run(main())


def test_reset_connection_interval_reconnects() -> None:
    async def main() -> None:
        server = RpcServer(AVRO_SOURCE_PROTOCOL, Peer())
        await server.start()
        sink = _sink(server.port, **{"reset-connection-interval": 10})
        clock = sink.clock
        assert isinstance(clock, ManualClock)
        try:
            fill(sink.channel, 1)
            await sink.process()
            clock.advance(5)
            fill(sink.channel, 1)
            await sink.process()
            assert sink.client.connections_created == 1
            clock.advance(6)
            fill(sink.channel, 1)
            await sink.process()
            assert sink.client.connections_created == 2
        finally:
            await sink.stop()
            await server.stop()

    asyncio.run(main())


def test_source_answers_failed_when_the_channel_is_full() -> None:
    async def main() -> None:
        src, _ = _source()
        small = channel(capacity=5, transaction_capacity=5)
        src.channel_processor = processor(small)
        await src.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", src.port)
        ev = [{"headers": {}, "body": b"x"}] * 4
        try:
            assert await client.call("appendBatch", {"events": ev}) == "OK"
            assert await client.call("appendBatch", {"events": ev}) == "FAILED"
            assert await client.call("appendBatch", {"events": ev * 3}) == "FAILED"  # > txCap
            assert await client.call("append", {"event": ev[0]}) == "OK"
        finally:
            await client.close()
            await src.stop()
        assert small.size() == 5
        assert src.counter.counters["ChannelWriteFail"] == 2

    asyncio.run(main())


@pytest.mark.parametrize("name", ["flume-appendbatch-hash-match", "flume-append-hash-match",
                                  "flume-appendbatch-deflate"])
def test_source_answers_recorded_flume_client_streams(name: str) -> None:
    cap = load(name)

    async def main() -> None:
        src, dest = _source(**{"compression-type": "deflate" if cap.deflate else "none"})
        await src.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", src.port)
        got = b""
        try:
            writer.write(cap.client_to_server)
            await writer.drain()
            while len(got) < len(cap.server_to_client):
                got += await asyncio.wait_for(reader.read(4096), 5)
        finally:
            writer.close()
            await src.stop()
        assert got == cap.server_to_client
        expected = ["0", "1"] if name == "flume-append-hash-match" else ["0", "1", "2"]
        assert [e.headers["seq"] for e in drain(dest)] == expected

    asyncio.run(main())


def test_ip_filter_denies_loopback() -> None:
    async def main() -> None:
        src, dest = _source(ipFilter=True, ipFilterRules="deny:ip:127.*")
        await src.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", src.port, request_timeout=2)
        try:
            with pytest.raises((ConnectionError, TimeoutError)):
                await client.call("append", {"event": {"headers": {}, "body": b"x"}})
        finally:
            await client.close()
            await src.stop()
        assert dest.size() == 0

    asyncio.run(main())


def test_standalone_sink_prepares_the_next_batch_but_sends_it_only_after_ok() -> None:
    """Flume's contract with the pipelined sink: take, send, OK, commit; the next batch is
    taken (not sent) while the peer works, and a failure puts both back in their order."""

    async def main() -> None:
        answer = asyncio.Event()
        script = ["OK", "FAILED"]
        received: list[list[bytes]] = []
        calls_open = 0

        async def peer(call: CallRequest, conn: Connection) -> Any:
            nonlocal calls_open
            calls_open += 1
            assert calls_open == 1  # never a second call before the first one's answer
            received.append([e["body"] for e in call.params["events"]])
            await answer.wait()
            answer.clear()
            calls_open -= 1
            return script.pop(0) if script else "OK"

        server = RpcServer(AVRO_SOURCE_PROTOCOL, peer)
        await server.start()
        sink = _sink(server.port)
        sink.standalone = True
        sent = [e.body for e in fill(sink.channel, 250)]
        try:
            first = asyncio.create_task(sink.process())
            while not received or sink.channel.size() > 50:  # bounded: the peer holds batch 1
                await asyncio.sleep(0.001)
            assert received == [sent[:100]]
            assert (sink.channel.size(), sink.channel.in_flight) == (50, 200)
            answer.set()
            assert await first is Status.READY
            assert (sink.channel.size(), sink.channel.in_flight) == (50, 100)  # 1 committed

            second = asyncio.create_task(sink.process())  # sends the prepared batch: FAILED
            answer.set()
            with pytest.raises(EventDeliveryException, match="FAILED"):
                await second
            assert sink.channel.in_flight == 0
            assert [e.body for e in sink.channel.queue] == sent[100:]  # back in order
            while sink.channel.size() or sink.channel.in_flight:
                answer.set()
                assert await sink.process() is Status.READY
        finally:
            await sink.stop()
            await server.stop()
        assert received == [sent[:100], sent[100:200], sent[100:200], sent[200:]]
        assert sink.counter.counters["EventDrainSuccessCount"] == 250

    asyncio.run(main())
