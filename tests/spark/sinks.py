"""A flumelet SparkSink with a memory channel on its own event loop thread, for the source's
executor and driver code (which run their own loops, as they do inside Spark)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from agent.sinks.spark import SparkSink
from protocol.event import Event
from protocol.rpc import CallRequest
from protocol.transport import Connection, Reply
from tests.agent_helpers import channel, drain, fill

T = TypeVar("T")


class SinkThread:
    """``proof=False`` answers acks as Spark 2.4's SparkSink does: ``null`` and nothing more
    (no ``flumelet.ack`` call metadata)."""

    def __init__(self, capacity: int = 100_000, transaction_capacity: int = 1000,
                 proof: bool = True, **sink: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.sink = SparkSink("k1", "127.0.0.1", 0, **{"close_grace": 0.0, **sink})
        self.sink.channel = channel(capacity, transaction_capacity)
        if not proof:
            handle = self.sink.server.handler

            async def plain(call: CallRequest, conn: Connection) -> Any:
                answer = await handle(call, conn)
                return answer.value if isinstance(answer, Reply) else answer

            self.sink.server.handler = plain
        self.run(self.sink.start())
        self.address = f"127.0.0.1:{self.sink.port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()
        return self.run(wrapped())

    def put(self, n: int, start: int = 0) -> list[Event]:
        events: list[Event] = []
        for first in range(start, start + n, 1000):  # one transaction per 1000
            count = min(1000, start + n - first)
            events += self.call(lambda f=first, c=count: fill(self.sink.channel, c, f))
        return events

    def size(self) -> int:
        return self.call(self.sink.channel.size)

    def outstanding(self) -> int:
        return self.call(lambda: self.sink.outstanding)

    def take_all(self) -> list[Event]:
        return self.call(lambda: drain(self.sink.channel))

    def close(self) -> None:
        self.run(self.sink.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
