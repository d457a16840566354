"""The polling runner: calls a pollable source's or a sink processor's ``process()`` forever.

READY -> call again at once (yielding to the loop first). BACKOFF -> wait ``min(k * step, max)``
(k = consecutive BACKOFFs; Flume's SinkRunner uses 1 s steps up to 5 s) but wake early when
``wake()`` is called, e.g. by a channel commit or a source's file watcher. RETRY (a refused
delivery the component will repeat) -> wait a doubling back-off that wake-ups do not cut short.
An exception is followed by a fixed ``error`` back-off, not cut short either, so a broken
component never turns into a busy crash loop. Components never sleep or keep timers: the waits
are all here (``BackoffPolicy``).

Logging follows the state, not the attempts (``common.outage``): one WARNING when failures
begin or their reason changes ("sink k1: 127.0.0.1:9092 unreachable (connection refused);
retrying every 5 s, events stay in c1"), one when the component works again ("sink k1:
delivering again after 42 s"); repeats go to DEBUG. A delivery problem (a peer down, a full
channel, an I/O error) is logged without a traceback (it is at DEBUG); anything else is a bug
and its first occurrence carries one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from agent.components import BackoffPolicy, ChannelException, Clock, Status, SystemClock
from agent.sinks import EventDeliveryException
from common.outage import Outage, format_duration

log = logging.getLogger(__name__)

__all__ = ["BackoffPolicy", "PollingRunner"]

# Failures of the world (a peer, a channel, a disk), not of the code: no traceback at INFO.
OPERATIONAL = (EventDeliveryException, ChannelException, OSError, TimeoutError)


class PollingRunner:
    def __init__(
        self,
        name: str,
        poll: Callable[[], Awaitable[Status]],
        policy: BackoffPolicy | None = None,
        *,
        clock: Clock | None = None,
        meanwhile: str = "",
        resumed: str = "working again",
    ) -> None:
        """``meanwhile``: what happens while it fails, for the log line ("events stay in
        c1"); ``resumed``: what it does again once it works ("delivering again")."""
        self.name = name
        self.poll = poll
        self.policy = policy or BackoffPolicy()
        self.clock: Clock = clock or SystemClock()
        self.meanwhile = meanwhile
        self.resumed = resumed
        self.outage = Outage()
        self.busy = False  # inside poll()
        self.idle = asyncio.Event()  # set while not inside poll()
        self.idle.set()
        self.errors = 0
        self.polls = 0
        self.successes = 0  # polls that returned (READY, BACKOFF or RETRY) rather than raised
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Cut a BACKOFF wait short (safe to call from loop callbacks at any time)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"runner:{self.name}")

    async def _run(self) -> None:
        backoffs = retries = 0
        policy = self.policy
        while not self._stop.is_set():
            self._wake.clear()
            self.busy = True
            self.idle.clear()
            wakeable = True
            try:
                self.polls += 1
                status = await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                self._failed(exc)
                delay, wakeable = policy.error, False
            else:
                self.successes += 1
                if self.outage.down:
                    self._recovered()
                if status is Status.READY:
                    backoffs = retries = 0
                    delay = 0.0
                elif status is Status.RETRY:
                    retries += 1
                    delay, wakeable = policy.after_retries(retries), False
                else:
                    backoffs += 1
                    delay = policy.after_backoffs(backoffs)
            finally:
                self.busy = False
                self.idle.set()
            if self._stop.is_set():
                break
            if delay <= 0:
                await asyncio.sleep(0)
            else:
                await self._wait(delay, wakeable)

    def _failed(self, exc: Exception) -> None:
        operational = isinstance(exc, OPERATIONAL)
        reason = str(exc) or type(exc).__name__
        if not operational:
            reason = f"process() failed: {exc!r}"
        if not self.outage.failed(reason, self.clock.monotonic()):
            log.debug("%s: failed again: %s", self.name, reason, exc_info=True)
            return
        every = f"{self.policy.error:g} s"
        meanwhile = f", {self.meanwhile}" if self.meanwhile else ""
        if operational:
            log.warning("%s: %s; retrying every %s%s", self.name, reason, every, meanwhile,
                        exc_info=log.isEnabledFor(logging.DEBUG))
        else:
            log.error("%s: %s; retrying every %s%s", self.name, reason, every, meanwhile,
                      exc_info=True)

    def _recovered(self) -> None:
        lasted = self.outage.recovered(self.clock.monotonic())
        if lasted is not None:
            log.warning("%s: %s after %s", self.name, self.resumed, format_duration(lasted))

    async def _wait(self, delay: float, wakeable: bool) -> None:
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def stop(self, timeout: float, hurry: asyncio.Event | None = None) -> None:
        """Let the current ``process()`` finish for up to ``timeout`` s (less if ``hurry`` is
        set meanwhile), then cancel it."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        waiters: list[asyncio.Future[Any]] = [task]
        if hurry is not None:
            waiters.append(asyncio.ensure_future(hurry.wait()))
        try:
            await asyncio.wait(waiters, timeout=max(timeout, 0.0),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters[1:]:
                waiter.cancel()
        if not task.done():
            if hurry is not None and hurry.is_set():
                log.info("%s: cancelled (stopping at once)", self.name)
            else:
                log.warning("%s: still busy after %.1f s; cancelling", self.name, timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif not task.cancelled() and task.exception() is not None:
            log.error("%s: runner ended with %r", self.name, task.exception())
