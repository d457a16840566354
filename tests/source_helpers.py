"""Helpers for the network, process and file source tests (issue 15)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from agent.channels.memory import MemoryChannel
from agent.config.loader import load_text
from agent.registry import BuildContext, build
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


def built(kind: str, type_: str, settings: dict[str, object],
          ctx: BuildContext | None = None) -> Any:
    """A source or sink built exactly as from a configuration file with ``settings``
    (validated, defaults applied), wired to a memory channel it is not attached to."""
    prefix = "a.sources.r." if kind == "source" else "a.sinks.k."
    types = {"a.sources.r.type": "seq", "a.sinks.k.type": "null", f"{prefix}type": type_}
    lines = ["a.sources = r", "a.channels = c", "a.sinks = k", "a.channels.c.type = memory",
             "a.sources.r.channels = c", "a.sinks.k.channel = c",
             *(f"{key} = {value}" for key, value in types.items())]
    lines += [f"{prefix}{key} = {value}" for key, value in settings.items()]
    result = load_text("\n".join(lines) + "\n", "a", strict=True)
    assert result.config is not None, [str(issue) for issue in result.issues]
    spec = result.config.sources["r"] if kind == "source" else result.config.sinks["k"]
    return build(kind, spec, ctx or BuildContext())
