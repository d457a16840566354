"""A listener's limits over loopback, in one process: backpressure, the input budget, the
timeouts (on a manual clock), the connection cap and the descriptor reserve."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest

from agent.metrics import MetricsRegistry
from agent.runtime.http_metrics import MetricsServer
from protocol.limits import ConnectionGuard, ListenerLimits
from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import Connection, RpcClient, RpcServer
from tests.wire import batch_frame, batch_params, events

MiB = 2**20


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Counter:
    """Counts events; ``gate``, when set, holds every call after the first ``free`` ones."""

    def __init__(self, free: int | None = None) -> None:
        self.events = 0
        self.calls = 0
        self.free = free
        self.gate = asyncio.Event()

    async def __call__(self, call: CallRequest, conn: Connection) -> Any:
        self.calls += 1
        if self.free is not None and self.calls > self.free:
            await self.gate.wait()
        self.events += len(call.params["events"])
        return "OK"


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) is not None
    except ConnectionResetError:
        return True


async def _still_open(reader: asyncio.StreamReader) -> bool:
    try:
        await asyncio.wait_for(reader.read(1), 0.2)
    except TimeoutError:
        return True
    return False


async def _good_call(port: int, n: int = 10) -> str:
    client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
    try:
        return str(await client.call("appendBatch", {"events": [
            {"headers": e.headers, "body": e.body} for e in events(n)]}))
    finally:
        await client.close()


def test_a_client_pipelining_into_a_stuck_server_is_stopped_by_tcp() -> None:
    """The server reads at most ``max-pending-calls`` calls ahead of its handler; after
    that the socket buffers fill and the client cannot send more (it was unbounded)."""
    async def main() -> None:
        handler = Counter(free=1)
        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler,
                           limits=ListenerLimits(max_pending_calls=2))
        await server.start()
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setblocking(False)
        frame = batch_frame(2, batch_params(events(1000)))  # ~110 KB
        sent, stalled, loop = 0, 0, asyncio.get_running_loop()
        try:
            sock.send(batch_frame(1, batch_params(events(1)), first=True))
            while stalled < 10 and sent < 256 * MiB:
                try:
                    sent += sock.send(frame)
                    stalled = 0
                except BlockingIOError:
                    stalled += 1
                    await asyncio.sleep(0.05)
            assert sent < 32 * MiB, f"the server kept reading: {sent / MiB:.0f} MiB"
            assert handler.calls <= 3  # the first, the held one, and none decoded past 2
            assert server.listener.budget.used < 4 * MiB
        finally:
            sock.close()
            handler.gate.set()
            await server.stop()
        del loop

    asyncio.run(main())


def test_when_the_input_budget_is_full_the_largest_holder_is_closed(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        limits = ListenerLimits(max_frame_bytes=4 * MiB, max_buffered_bytes=4 * MiB)
        server = RpcServer(AVRO_SOURCE_PROTOCOL, Counter(), limits=limits)
        await server.start()
        try:
            frame = batch_frame(1, b"\x00" * (4 * MiB - 200), first=True)
            small = [await _raw(server.port) for _ in range(2)]
            big = await _raw(server.port)
            small[0][1].write(frame[: 1 * MiB])
            big[1].write(frame[: 3 * MiB - 100])
            for _, w in (small[0], big):
                await w.drain()
            await asyncio.sleep(0.2)
            assert await _still_open(big[0])
            small[1][1].write(frame[: 1 * MiB])  # 5 MiB held in all: over the budget
            await small[1][1].drain()
            assert await _closed_by_server(big[0])
            assert all([await _still_open(r) for r, _ in small])
            assert await _good_call(server.port) == "OK"
            assert server.listener.budget.used <= 4 * MiB
        finally:
            await server.stop()

    with caplog.at_level(logging.WARNING, logger="protocol.transport"):
        asyncio.run(main())
    [line] = [r.getMessage() for r in caplog.records if "max-buffered-bytes" in r.getMessage()]
    assert "this connection holds the most" in line


def test_idle_and_unfinished_frame_timeouts_on_a_manual_clock(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        clock = ManualClock()
        limits = ListenerLimits(idle_timeout=10, frame_timeout=5)
        handler = Counter()
        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler, limits=limits, clock=clock)
        await server.start()
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", server.port)
        try:
            idle = await _raw(server.port)
            slow = await _raw(server.port)
            slow[1].write(batch_frame(1, batch_params(events(5)), first=True)[:30])
            await slow[1].drain()
            await client.call("appendBatch", {"events": []})
            await asyncio.sleep(0.1)
            clock.now = 4.0
            assert server.listener.sweep() == 0
            clock.now = 6.0  # the frame began at 0: more than 5 s unfinished
            assert server.listener.sweep() == 1
            assert await _closed_by_server(slow[0])
            await client.call("appendBatch", {"events": []})  # progress at 6
            clock.now = 11.0  # the raw idle connection has done nothing since 0
            assert server.listener.sweep() == 1
            assert await _closed_by_server(idle[0])
            assert client.connected and server.open_connections == 1
            clock.now = 30.0
            assert server.listener.sweep() == 1  # now the client is idle too
            await asyncio.sleep(0.1)
            assert await client.call("appendBatch", {"events": []}) == "OK"  # reconnects
            assert client.connections_created == 2
        finally:
            await client.close()
            await server.stop()

    with caplog.at_level(logging.WARNING, logger="protocol.transport"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("frame-timeout" in m for m in messages)
    assert any("idle-timeout" in m for m in messages)


def test_the_connection_cap_refuses_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        guard = ConnectionGuard(fd_limit=100_000)
        server = RpcServer(AVRO_SOURCE_PROTOCOL, Counter(),
                           limits=ListenerLimits(max_connections=3), guard=guard)
        await server.start()
        try:
            held = [await _raw(server.port) for _ in range(3)]
            await asyncio.sleep(0.1)
            refused = [await _raw(server.port) for _ in range(20)]
            for r, _ in refused:
                assert await _closed_by_server(r)
            assert server.open_connections == 3
            held[0][1].close()
            await asyncio.sleep(0.1)
            assert await _good_call(server.port) == "OK"
        finally:
            await server.stop()
        assert guard.shared_open == 0

    with caplog.at_level(logging.WARNING, logger="protocol.transport"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
    assert len(lines) == 1 and "max-connections" in lines[0]


def test_the_descriptor_reserve_keeps_metrics_answering() -> None:
    """Data listeners share what the reserve leaves; /metrics draws from the reserve."""
    async def main() -> None:
        guard = ConnectionGuard(fd_limit=200, fd_reserve=190)
        a = RpcServer(AVRO_SOURCE_PROTOCOL, Counter(), guard=guard, name="a")
        b = RpcServer(AVRO_SOURCE_PROTOCOL, Counter(), guard=guard, name="b")
        metrics = MetricsServer(MetricsRegistry(), 0, host="127.0.0.1")
        metrics.listener.guard = guard
        for s in (a, b, metrics):
            await s.start()
        try:
            held = [await _raw(a.port) for _ in range(6)] + [await _raw(b.port) for _ in range(4)]
            await asyncio.sleep(0.1)
            assert guard.shared_open == 10
            extra = await _raw(b.port)
            assert await _closed_by_server(extra[0])
            reader, writer = await _raw(metrics.bound_port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200 OK")
            del held
        finally:
            for s in (a, b, metrics):
                await s.stop()

    asyncio.run(main())
