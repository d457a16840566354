"""The consumer's web UI on the wire layer's listener (issue 21): a flood of connections
evicts the idle ones instead of locking pages out, unfinished heads and idle connections are
closed by the timeouts (a manual clock and the listener's sweep), request heads held across
connections stay under the budget, and an event stream is never taken for idle."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from consumer.ui.model import JobView
from consumer.ui.server import WebUI
from protocol.limits import ListenerLimits
from tests.source_helpers import until
from tests.ui.test_ui_server import INFO

LIMITS = ListenerLimits(max_connections=4, max_frame_bytes=1024, max_buffered_bytes=5000,
                        idle_timeout=10.0, frame_timeout=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _closed(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def _ui(clock: Clock) -> WebUI:
    ui = WebUI(JobView(INFO), list, lambda: 0, port=0, limits=LIMITS)
    await ui.start()
    assert ui.listener is not None
    ui.listener.clock = clock
    return ui


async def _state(ui: WebUI) -> int:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{ui.port}/api/state") as resp:
        await resp.read()
        return resp.status


def test_flood_evicts_idle_connections_and_pages_still_load() -> None:
    async def main() -> None:
        ui = await _ui(Clock())
        try:
            conns = [await asyncio.open_connection("127.0.0.1", ui.port) for _ in range(10)]
            assert await _state(ui) == 200
            assert ui.listener is not None and ui.listener.open_connections <= 4
            # refused past the cap, or evicted (idle the longest) to let the page in
            closed = [await _closed(r, 0.5) for r, _ in conns]
            assert sum(closed) >= 7, closed
            for _, w in conns:
                w.close()
        finally:
            await ui.stop()

    asyncio.run(main())


def test_timeouts_budget_and_event_streams() -> None:
    async def main() -> None:
        clock = Clock()
        ui = await _ui(clock)
        listener = ui.listener
        assert listener is not None
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{ui.port}/events") as stream:
                assert (await stream.content.readline()).startswith(b"event: state")
                idle_r, idle_w = await asyncio.open_connection("127.0.0.1", ui.port)
                slow_r, slow_w = await asyncio.open_connection("127.0.0.1", ui.port)
                slow_w.write(b"GET /api/state HTTP/1.1\r\nX-Slow: ")
                await slow_w.drain()
                await until(lambda: listener.open_connections == 3)
                await until(lambda: any(p.activity.frame_since is not None
                                        for p in listener.peers))
                clock.now = 3.0  # past frame-timeout, not idle-timeout
                assert listener.sweep() == 1
                assert await _closed(slow_r)
                clock.now = 11.0  # past idle-timeout: the idle one goes, the stream stays
                assert listener.sweep() == 1
                assert await _closed(idle_r)
                assert listener.open_connections == 1
                idle_w.close()
                slow_w.close()

                # heads held across connections: past 5000 bytes the largest holder goes
                small_r, small_w = await asyncio.open_connection("127.0.0.1", ui.port)
                small_w.write(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: "
                              + b"a" * 2000)
                await small_w.drain()
                await until(lambda: listener.budget.used > 2000)
                big_r, big_w = await asyncio.open_connection("127.0.0.1", ui.port)
                big_w.write(b"GET / HTTP/1.1\r\nX-B: " + b"b" * 3500)
                with contextlib.suppress(ConnectionError):
                    await big_w.drain()
                assert await _closed(big_r)
                small_w.write(b"\r\n\r\n")
                await small_w.drain()
                assert (await small_r.readline()).startswith(b"HTTP/1.1 200")
                small_w.close()
                big_w.close()
                assert not stream.content.at_eof()
        finally:
            await ui.stop()

    asyncio.run(main())
