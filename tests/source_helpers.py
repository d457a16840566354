"""Helpers for the network, process and file source tests (issue 15)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent.channels.memory import MemoryChannel
from protocol.event import Event


async def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def take(ch: MemoryChannel) -> list[Event]:
    """Everything in the channel, one transaction per transactionCapacity events."""
    out: list[Event] = []
    while ch.size():
        tx = ch.transaction()
        tx.begin()
        for _ in range(min(ch.size(), ch.transaction_capacity)):
            event = tx.take()
            assert event is not None
            out.append(event)
        tx.commit()
        tx.close()
    return out
