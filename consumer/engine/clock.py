"""Clocks: the one place the consumer asks "what time is it?".

The streaming engine never reads the wall clock itself; it is handed a clock. Production uses
:class:`SystemClock`; tests use :class:`ManualClock` and move time by hand, so no test sleeps.
Times are integer epoch milliseconds, like Spark's ``Time``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the engine needs from time: the current instant and a way to wait for one."""

    def now_ms(self) -> int: ...

    async def sleep_until(self, t_ms: int) -> None: ...


class SystemClock:
    """Wall-clock time (epoch milliseconds)."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def sleep_until(self, t_ms: int) -> None:
        # Re-check after each sleep: asyncio timers may wake a little early.
        while True:
            remaining = t_ms - self.now_ms()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining / 1000.0)


class ManualClock:
    """A clock that only moves when told to; waiters wake when time reaches them.

    ``advance``/``set`` may be called from any thread: sleepers are woken on their own loop.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now = int(start_ms)
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now

    def set(self, t_ms: int) -> None:
        if t_ms < self._now:
            raise ValueError(f"ManualClock cannot go back in time ({t_ms} < {self._now})")
        with self._lock:
            self._now = int(t_ms)
            due = [w for w in self._waiters if w[0] <= self._now]
            self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, loop, fut in due:
            loop.call_soon_threadsafe(_resolve, fut)

    def advance(self, delta_ms: int) -> None:
        self.set(self._now + int(delta_ms))

    async def sleep_until(self, t_ms: int) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if t_ms <= self._now:
                return
            self._waiters.append((t_ms, loop, fut))
        try:
            await fut
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w[2] is not fut]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
