"""Driver side: which agents have events right now?

A SparkSink has no "how many events do you hold" call, and planning a task for an idle agent
costs a micro-batch (offset log, state store version) and a task that waits pollTimeoutMs
for nothing. So the driver keeps one ``getEventBatch(1)`` pending per agent; a SparkSink
answers it only once an event exists. The answer is ``nack``-ed at once on the same
connection (the event goes back to the head of the channel, untouched) and the agent counts
as *ready* until ``ready()`` hands it out. Its probe is armed again only at the next
``ready()`` call, after the micro-batch that read it: a probe answered while the agent's own
task is draining it would report events that are gone.

Everything runs on one asyncio loop in a daemon thread, because Spark calls ``latestOffset``
from a plain thread and expects an answer within about ``probeWaitMs``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from consumer.spark.options import parse_address
from protocol.schemas import SPARK_FLUME_PROTOCOL
from protocol.transport import RpcClient, RpcError

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["Prober"]

RETRY_MAX = 5.0
SETTLE = 0.02  # s: after the first agent shows an event, how long the others may take
POLL_FOREVER = 365 * 24 * 3600.0  # a SparkSink answers only when it has an event


class Prober:
    def __init__(self, addresses: Sequence[str], connect_timeout: float = 10.0) -> None:
        self.addresses = list(addresses)
        self.connect_timeout = connect_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="flume-probe",
                                        daemon=True)
        self._thread.start()
        self._ready: set[str] = set()
        self._changed: asyncio.Event | None = None
        self._armed: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._call(self._start())

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._changed = asyncio.Event()
        for address in self.addresses:
            self._armed[address] = asyncio.Event()
            self._armed[address].set()
            self._tasks.append(asyncio.create_task(self._watch(address)))

    async def _watch(self, address: str) -> None:
        host, port = parse_address(address)
        client = RpcClient(SPARK_FLUME_PROTOCOL, host, port, connect_timeout=self.connect_timeout,
                           request_timeout=POLL_FOREVER)
        delay, failures = 0.1, 0
        try:
            while True:
                await self._armed[address].wait()
                try:
                    answer = await client.call("getEventBatch", {"n": 1})
                    if answer["errorMsg"]:
                        raise RpcError(answer["errorMsg"])
                    if answer["events"]:
                        client.request_timeout = 10.0
                        await client.call("nack", {"sequenceNumber": answer["sequenceNumber"]})
                        client.request_timeout = POLL_FOREVER
                except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
                    failures += 1
                    if failures == 1 or failures % 60 == 0:
                        log.warning("probing %s failed (%d times): %s; retrying", address,
                                    failures, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                delay, failures = 0.1, 0
                if answer["events"]:
                    self._armed[address].clear()
                    self._ready.add(address)
                    assert self._changed is not None
                    self._changed.set()
        finally:
            await client.close()

    async def _take_ready(self, wait: float) -> list[str]:
        assert self._changed is not None
        for address in self.addresses:  # the agents handed out last time: ask them again
            if address not in self._ready:
                self._armed[address].set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        self._changed.clear()
        while not self._ready and loop.time() < deadline:
            await self._wait_changed(deadline - loop.time())
        # Busy agents answer within a round trip: give them a moment to join the first one.
        settle = min(loop.time() + SETTLE, deadline)
        while self._ready and any(self._armed[a].is_set() for a in self.addresses) \
                and loop.time() < settle:
            await self._wait_changed(settle - loop.time())
        ready = [a for a in self.addresses if a in self._ready]
        self._ready.clear()
        return ready

    async def _wait_changed(self, timeout: float) -> None:
        assert self._changed is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(timeout, 0)):
                await self._changed.wait()
        self._changed.clear()

    def ready(self, wait: float) -> list[str]:
        """Agents that showed an event since the last call (waiting up to ``wait`` seconds for
        the first one), in address order; their probes are armed again."""
        return self._call(self._take_ready(wait), timeout=wait + 30)

    def close(self) -> None:
        async def stop() -> None:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

        if self._loop.is_running():
            with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
                self._call(stop(), timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
