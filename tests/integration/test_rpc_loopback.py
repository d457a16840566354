"""RpcClient -> RpcServer over loopback: plain, deflate, TLS, pull protocol, bad peers."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path
from typing import Any

import pytest

from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL, SPARK_FLUME_PROTOCOL
from protocol.transport import Connection, RpcClient, RpcError, RpcServer
from tests.tls import contexts


def _events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"headers": {"seq": str(i)}, "body": f"line {i}".encode()}
            for i in range(start, start + n)]


class Collector:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, call: CallRequest, conn: Connection) -> Any:
        if call.message == "appendBatch":
            self.events.extend(call.params["events"])
        else:
            self.events.append(call.params["event"])
        return "OK"


@pytest.mark.parametrize("deflate", [False, True])
def test_append_batch_roundtrip(deflate: bool) -> None:
    async def main() -> None:
        sink = Collector()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, sink, deflate=deflate)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port, deflate=deflate)
        try:
            for batch in range(5):
                assert await client.call("appendBatch", {"events": _events(100, batch * 100)}) \
                    == "OK"
            assert await client.call("append", {"event": _events(1, 500)[0]}) == "OK"
        finally:
            await client.close()
            await server.stop()
        assert [e["headers"]["seq"] for e in sink.events] == [str(i) for i in range(501)]
        assert client.connections_created == 1

    asyncio.run(main())


def test_tls_roundtrip(tmp_path: Path) -> None:
    server_ctx, client_ctx = contexts(tmp_path)

    async def main() -> None:
        sink = Collector()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, sink, ssl=server_ctx, deflate=True)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "localhost", server.port, ssl=client_ctx,
                           deflate=True)
        try:
            assert await client.call("appendBatch", {"events": _events(10)}) == "OK"
        finally:
            await client.close()
            await server.stop()
        assert len(sink.events) == 10

    asyncio.run(main())


def test_concurrent_clients_each_get_their_own_answers() -> None:
    async def main() -> None:
        sink = Collector()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, sink)
        await server.start()
        clients = [RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port) for _ in range(8)]

        async def send(i: int, c: RpcClient) -> None:
            for b in range(10):
                assert await c.call("appendBatch", {"events": _events(10, i * 1000 + b * 10)}) \
                    == "OK"

        try:
            await asyncio.gather(*(send(i, c) for i, c in enumerate(clients)))
        finally:
            for c in clients:
                await c.close()
            await server.stop()
        assert sorted(int(e["headers"]["seq"]) for e in sink.events) == sorted(
            i * 1000 + k for i in range(8) for k in range(100))

    asyncio.run(main())


def test_pull_protocol_roundtrip() -> None:
    async def handler(call: CallRequest, conn: Connection) -> Any:
        if call.message == "getEventBatch":
            return {"errorMsg": "", "sequenceNumber": "s1",
                    "events": _events(call.params["n"])}
        assert call.params == {"sequenceNumber": "s1"}
        return None

    async def main() -> None:
        server = RpcServer(SPARK_FLUME_PROTOCOL, handler)
        await server.start()
        client = RpcClient(SPARK_FLUME_PROTOCOL, "127.0.0.1", server.port)
        try:
            batch = await client.call("getEventBatch", {"n": 7})
            assert batch["sequenceNumber"] == "s1" and len(batch["events"]) == 7
            assert await client.call("ack", {"sequenceNumber": "s1"}) is None
            assert await client.call("nack", {"sequenceNumber": "s1"}) is None
        finally:
            await client.close()
            await server.stop()

    asyncio.run(main())


def test_handler_exception_becomes_a_system_error_and_connection_survives() -> None:
    calls = 0

    async def handler(call: CallRequest, conn: Connection) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("broken interceptor")
        return "OK"

    async def main() -> None:
        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port)
        try:
            with pytest.raises(RpcError, match="ValueError: broken interceptor"):
                await client.call("append", {"event": _events(1)[0]})
            assert await client.call("append", {"event": _events(1)[0]}) == "OK"
            assert client.connections_created == 1
        finally:
            await client.close()
            await server.stop()

    asyncio.run(main())


def test_malformed_frame_closes_only_that_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        sink = Collector()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, sink, max_frame_bytes=1024)
        await server.start()
        good = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port)
        try:
            assert await good.call("appendBatch", {"events": _events(2)}) == "OK"
            for garbage in (struct.pack(">ii", 1, -5), struct.pack(">iii", 1, 1, 10**6),
                            struct.pack(">iii", 1, 1, 4) + b"\xff\xff\xff\xff"):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(garbage)
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by server
                writer.close()
            assert await good.call("appendBatch", {"events": _events(2, 2)}) == "OK"
        finally:
            await good.close()
            await server.stop()
        assert len(sink.events) == 4

    with caplog.at_level(logging.WARNING, logger="protocol.transport"):
        asyncio.run(main())
    # one line per kind of problem per interval: the third (malformed again) is held back
    reasons = [r.getMessage() for r in caplog.records
               if "closing the connection" in r.getMessage()]
    assert len(reasons) == 2
    assert any("declares -5 buffers" in r for r in reasons)
    assert any("exceeds the frame limit" in r for r in reasons)


def test_request_timeout_drops_the_connection_and_next_call_reconnects() -> None:
    stall = asyncio.Event()

    async def handler(call: CallRequest, conn: Connection) -> Any:
        if not stall.is_set():
            stall.set()
            await asyncio.sleep(30)
        return "OK"

    async def main() -> None:
        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port, request_timeout=0.2)
        try:
            with pytest.raises(TimeoutError):
                await client.call("append", {"event": _events(1)[0]})
            assert not client.connected
            assert await client.call("append", {"event": _events(1)[0]}) == "OK"
            assert client.connections_created == 2
        finally:
            await client.close()
            await server.stop()

    asyncio.run(main())


def test_connect_refused_raises_connection_error() -> None:
    async def main() -> None:
        server = RpcServer(AVRO_SOURCE_PROTOCOL, Collector())
        await server.start()
        port = server.port
        await server.stop()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port, connect_timeout=1)
        with pytest.raises(ConnectionError):
            await client.call("append", {"event": _events(1)[0]})

    asyncio.run(main())


def test_connection_close_callbacks_run() -> None:
    closed = asyncio.Event()

    async def handler(call: CallRequest, conn: Connection) -> Any:
        conn.on_close(closed.set)
        return "OK"

    async def main() -> None:
        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port)
        assert await client.call("append", {"event": _events(1)[0]}) == "OK"
        await client.close()
        await asyncio.wait_for(closed.wait(), 5)
        await server.stop()

    asyncio.run(main())


def test_a_read_timing_out_fails_the_call_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: ETIMEDOUT (TimeoutError, an OSError but no ConnectionError) used to
    leave the caller waiting for its whole request timeout."""
    import errno

    import protocol.transport as transport

    async def main() -> float:
        async def never(call: CallRequest, conn: Connection) -> Any:
            await asyncio.sleep(30)

        server = RpcServer(AVRO_SOURCE_PROTOCOL, never)
        await server.start()
        readers: list[asyncio.StreamReader] = []
        real = asyncio.open_connection

        async def spy(*a: Any, **kw: Any) -> Any:
            reader, writer = await real(*a, **kw)
            readers.append(reader)
            return reader, writer

        monkeypatch.setattr(transport.asyncio, "open_connection", spy)
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port, request_timeout=20)
        call = asyncio.create_task(client.call("append", {"event": _events(1)[0]}))
        while not readers:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        readers[0].set_exception(TimeoutError(errno.ETIMEDOUT, "Connection timed out"))
        with pytest.raises(ConnectionError, match="timed out"):
            await call
        elapsed = asyncio.get_running_loop().time() - started
        await client.close()
        await server.stop()
        return elapsed

    assert asyncio.run(main()) < 2
