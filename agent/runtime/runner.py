"""The polling runner: calls a pollable source's or a sink processor's ``process()`` forever.

READY -> call again at once (yielding to the loop first). BACKOFF -> wait ``min(k * step, max)``
(k = consecutive BACKOFFs; Flume's SinkRunner uses 1 s steps up to 5 s) but wake early when
``wake()`` is called, e.g. by a channel commit or a source's file watcher. RETRY (a refused
delivery the component will repeat) -> wait a doubling back-off that wake-ups do not cut short.
An exception is logged with the component's name and followed by a fixed ``error`` back-off,
not cut short either, so a broken component never turns into a busy crash loop. Components
never sleep or keep timers: the waits are all here (``BackoffPolicy``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from agent.components import BackoffPolicy, Status

log = logging.getLogger(__name__)

__all__ = ["BackoffPolicy", "PollingRunner"]


class PollingRunner:
    def __init__(
        self,
        name: str,
        poll: Callable[[], Awaitable[Status]],
        policy: BackoffPolicy | None = None,
    ) -> None:
        self.name = name
        self.poll = poll
        self.policy = policy or BackoffPolicy()
        self.busy = False  # inside poll()
        self.idle = asyncio.Event()  # set while not inside poll()
        self.idle.set()
        self.errors = 0
        self.polls = 0
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
            except Exception:
                self.errors += 1
                log.exception("%s: process() failed; retrying in %.1f s", self.name, policy.error)
                delay, wakeable = policy.error, False
            else:
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

    async def _wait(self, delay: float, wakeable: bool) -> None:
        waiters = [asyncio.ensure_future(self._stop.wait())]
        if wakeable:
            waiters.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def stop(self, timeout: float) -> None:
        """Let the current ``process()`` finish for up to ``timeout`` s, then cancel it."""
        self._stop.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=max(timeout, 0.0))
        if not done:
            log.warning("%s: still busy after %.1f s; cancelling", self.name, timeout)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        elif task.exception() is not None:
            log.error("%s: runner ended with %r", self.name, task.exception())
