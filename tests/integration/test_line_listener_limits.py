"""The wire layer's listener limits on the line sources (netcat, syslogtcp) and the http
source: connection cap, idle and unfinished-line (or request) timeouts (driven by a manual
clock and the listener's sweep), and the buffered-input budget across connections."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from agent.registry import BuildContext
from tests.agent_helpers import channel, processor
from tests.source_helpers import built, take, until


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _source(type_: str, clock: Clock | None = None, **settings: Any) -> Any:
    host = "bind" if type_ == "netcat" else "host"
    src = built("source", type_, {host: "127.0.0.1", "port": 0, **settings}, BuildContext())
    src.channel_processor = processor(ch := channel())
    src.test_channel = ch
    if clock is not None:
        for listener in src.server.listeners:
            listener.clock = clock
        src.server.clock = clock
    return src


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionError:
        return True


def test_connection_cap_refuses_the_extra_connection() -> None:
    async def main() -> None:
        src = _source("netcat", **{"max-connections": 2})
        await src.start()
        try:
            conns = [await asyncio.open_connection("127.0.0.1", src.port) for _ in range(2)]
            await until(lambda: src.server.open_connections == 2)
            extra_r, extra_w = await asyncio.open_connection("127.0.0.1", src.port)
            assert await _closed(extra_r)
            extra_w.close()
            reader, writer = conns[0]
            writer.write(b"still served\n")
            assert await reader.readline() == b"OK\n"
            for _, w in conns:
                w.close()
        finally:
            await src.stop()

    asyncio.run(main())


def test_idle_and_unfinished_line_timeouts_close_connections() -> None:
    async def main() -> None:
        clock = Clock()
        src = _source("syslogtcp", clock, **{"idle-timeout": 10_000, "frame-timeout": 2_000})
        await src.start()
        listener = src.server.listeners[0]
        try:
            idle_r, idle_w = await asyncio.open_connection("127.0.0.1", src.port)
            slow_r, slow_w = await asyncio.open_connection("127.0.0.1", src.port)
            slow_w.write(b"<13>1 - host an unfinished li")
            await slow_w.drain()
            await until(lambda: src.server.open_connections == 2)
            await until(lambda: any(p.activity.frame_since is not None
                                    for p in listener.peers))
            clock.now = 3.0  # past frame-timeout, not idle-timeout
            assert listener.sweep() == 1
            assert await _closed(slow_r)
            clock.now = 11.0
            assert listener.sweep() == 1
            assert await _closed(idle_r)
            idle_w.close()
            slow_w.close()
        finally:
            await src.stop()
        assert take(src.test_channel) == []  # an unfinished line cut off is not an event

    asyncio.run(main())


def test_buffered_input_budget_closes_the_largest_holder() -> None:
    async def main() -> None:
        src = _source("syslogtcp", eventSize=5000, **{"max-buffered-bytes": 3000})
        await src.start()
        try:
            _, small_w = await asyncio.open_connection("127.0.0.1", src.port)
            big_r, big_w = await asyncio.open_connection("127.0.0.1", src.port)
            small_w.write(b"<13>1 - h " + b"s" * 1000)
            await small_w.drain()
            await until(lambda: src.server.open_connections == 2)
            big_w.write(b"<13>1 - h " + b"b" * 2500)
            await big_w.drain()
            assert await _closed(big_r)
            small_w.write(b" done\n")
            await small_w.drain()
            await until(lambda: src.test_channel.size() == 1)
            small_w.close()
            big_w.close()
        finally:
            await src.stop()
        assert take(src.test_channel)[0].body == b"s" * 1000 + b" done"

    asyncio.run(main())


# ---- the http source on the same listener ------------------------------------------------

async def _http_post(port: int, body: bytes) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/", data=body) as resp:
        return resp.status


def _http(clock: Clock | None = None, **settings: Any) -> Any:
    src = built("source", "http", {"bind": "127.0.0.1", "port": 0, **settings}, BuildContext())
    src.channel_processor = processor(ch := channel())
    src.test_channel = ch
    if clock is not None:
        src.clock = clock
    return src


def test_http_connection_cap_and_timeouts() -> None:
    async def main() -> None:
        clock = Clock()
        src = _http(clock, **{"max-connections": 2, "idle-timeout": 10_000,
                              "frame-timeout": 2_000})
        await src.start()
        assert src.listener is not None
        listener = src.listener
        try:
            idle_r, idle_w = await asyncio.open_connection("127.0.0.1", src.port)
            slow_r, slow_w = await asyncio.open_connection("127.0.0.1", src.port)
            slow_w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{")
            await slow_w.drain()
            await until(lambda: src.open_connections == 2)
            extra_r, extra_w = await asyncio.open_connection("127.0.0.1", src.port)
            assert await _closed(extra_r)  # past max-connections
            extra_w.close()
            await until(lambda: any(p.activity.frame_since is not None
                                    for p in listener.peers))
            clock.now = 3.0  # past frame-timeout (a body begun, unfinished), not idle-timeout
            assert listener.sweep() == 1
            assert await _closed(slow_r)
            clock.now = 11.0
            assert listener.sweep() == 1
            assert await _closed(idle_r)
            idle_w.close()
            slow_w.close()
            await until(lambda: src.open_connections == 0)
            assert await _http_post(src.port, b'[{"body": "after"}]') == 200
        finally:
            await src.stop()
        assert [e.body for e in take(src.test_channel)] == [b"after"]

    asyncio.run(main())


def test_http_buffered_budget_closes_the_largest_body_only() -> None:
    async def main() -> None:
        src = _http(**{"max-buffered-bytes": 100_000})
        await src.start()
        try:
            small_r, small_w = await asyncio.open_connection("127.0.0.1", src.port)
            body = b'[{"body": "' + b"s" * 30_000 + b'"}]'
            small_w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body[:20_000])
            await small_w.drain()
            await until(lambda: src.listener.budget.used >= 20_000)
            big_r, big_w = await asyncio.open_connection("127.0.0.1", src.port)
            big_w.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
            big_w.write(b"b" * 200_000)
            with contextlib.suppress(ConnectionError):
                await big_w.drain()
            assert await _closed(big_r)
            small_w.write(body[20_000:])
            await small_w.drain()
            assert (await small_r.readline()).startswith(b"HTTP/1.1 200")
            small_w.close()
            big_w.close()
        finally:
            await src.stop()
        assert [len(e.body) for e in take(src.test_channel)] == [30_000]
        assert src.listener is None

    asyncio.run(main())
