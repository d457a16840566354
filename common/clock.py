"""Clocks: the one place flumelet asks "what time is it?".

Nothing reads the system clock directly; it is handed a :class:`Clock`. Production uses
:class:`SystemClock`; tests use :class:`ManualClock` and move time by hand, so no test sleeps.

One vocabulary on both sides: seconds (floats, like ``time.time()``) for wall time, deadlines,
``advance`` and the constructor; integer epoch milliseconds, where the name says ``_ms``, for
the consumer's batch times (Spark's ``Time``).
"""

from __future__ import annotations

import asyncio
import threading
import time as _time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall time in seconds (headers, file names)."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals and deadlines."""
        ...

    def now_ms(self) -> int:
        """Wall time in integer epoch milliseconds (batch times)."""
        ...

    async def sleep_until(self, t_ms: int) -> None:
        """Return once ``now_ms()`` has reached ``t_ms``."""
        ...


class SystemClock:
    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    def now_ms(self) -> int:
        return int(_time.time() * 1000)

    async def sleep_until(self, t_ms: int) -> None:
        # Re-check after each sleep: asyncio timers may wake a little early.
        while True:
            remaining = t_ms - self.now_ms()
            if remaining <= 0:
                return
            await asyncio.sleep(remaining / 1000.0)


class ManualClock:
    """A clock that only moves when told to; ``sleep_until`` waiters wake when time reaches
    them. ``advance``/``set_ms`` may be called from any thread: sleepers are woken on their
    own loop. ``monotonic()`` starts at 0 and moves with the wall time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def now_ms(self) -> int:
        return round(self._now * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"ManualClock cannot go back in time (advance({seconds}))")
        with self._lock:
            self._now += seconds
            self._mono += seconds
        self._wake()

    def set_ms(self, t_ms: int) -> None:
        """Move wall time to epoch ms ``t_ms`` (not backwards)."""
        with self._lock:
            now_ms = self.now_ms()
            if t_ms < now_ms:
                raise ValueError(f"ManualClock cannot go back in time ({t_ms} < {now_ms})")
            self._mono += (t_ms - now_ms) / 1000.0
            self._now = t_ms / 1000.0
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            now_ms = self.now_ms()
            due = [w for w in self._waiters if w[0] <= now_ms]
            self._waiters = [w for w in self._waiters if w[0] > now_ms]
        for _, loop, fut in due:
            loop.call_soon_threadsafe(_resolve, fut)

    async def sleep_until(self, t_ms: int) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if t_ms <= self.now_ms():
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
