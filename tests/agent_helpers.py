"""Small builders for agent component tests (no config parsing involved)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def spec(kind: str, name: str, type_: str, raw: Mapping[str, object] | None = None,
         **wiring: Any) -> Any:
    """A validated spec for one component, as a configuration file with ``raw`` keys gives it
    (values may be Python values); ``wiring``: ``channels``/``channel``/``sinks``/...
    Raises ValueError for settings validation would refuse."""
    from agent.config.build import settings_from
    from agent.config.model import ComponentSpec, SinkGroupSpec, SinkSpec, SourceSpec
    from agent.config.types import lookup

    kinds = {"source": SourceSpec, "sink": SinkSpec, "processor": SinkGroupSpec}
    settings = settings_from(kind, type_, raw or {})
    if kind == "source":
        wiring.setdefault("selector", spec("selector", name, "replicating"))
    return kinds.get(kind, ComponentSpec)(
        "sinkgroup" if kind == "processor" else kind, name, lookup(kind, type_).name, settings,
        **wiring,
    )


def component(kind: str, type_: str, raw: Mapping[str, object] | None = None,
              ctx: Any = None, *extra: Any, name: str = "x") -> Any:
    """A component built exactly as from a configuration file with ``raw`` keys."""
    from agent.registry import BuildContext, build

    return build(kind, spec(kind, name, type_, raw), ctx or BuildContext(), *extra)
