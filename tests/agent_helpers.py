"""Small builders for agent component tests (no config parsing involved)."""

from __future__ import annotations

from agent.channel_processor import DefaultChannelProcessor
from agent.channels.memory import MemoryChannel
from agent.selectors import ReplicatingSelector
from protocol.event import Event


def channel(capacity: int = 1000, transaction_capacity: int = 1000) -> MemoryChannel:
    return MemoryChannel("c1", capacity=capacity, transaction_capacity=transaction_capacity)


def processor(ch: MemoryChannel) -> DefaultChannelProcessor:
    return DefaultChannelProcessor(ReplicatingSelector({ch.name: ch}))


def fill(ch: MemoryChannel, n: int, start: int = 0) -> list[Event]:
    events = [Event({"seq": str(i)}, f"event {i}".encode()) for i in range(start, start + n)]
    tx = ch.transaction()
    tx.begin()
    for e in events:
        tx.put(e)
    tx.commit()
    tx.close()
    return events


def drain(ch: MemoryChannel) -> list[Event]:
    tx = ch.transaction()
    tx.begin()
    out = []
    while (e := tx.take()) is not None:
        out.append(e)
    tx.commit()
    tx.close()
    return out
