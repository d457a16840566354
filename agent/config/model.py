"""The validated configuration model: what the config layer hands to the graph builder.

Settings use Flume's own property keys (``capacity``, ``batch-size``,
``deserializer.maxLineLength``) with defaults applied and values converted to Python types, so
components read the same names a Flume user writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    """Where a setting came from: ``file:line`` (line 0 when it came from -D or a default)."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class ComponentSpec:
    """One configured component (source, channel, sink, interceptor, selector, sink processor).

    ``type`` is the canonical lower-case alias (``memory``, ``spooldir``, ``avro``, ``spark``,
    ``timestamp``, ``replicating``, ``failover`` ...); ``settings`` holds every key the type
    knows, defaults applied and values converted.
    """

    kind: str
    name: str
    type: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    location: Location | None = None


@dataclass(frozen=True)
class SourceSpec(ComponentSpec):
    channels: tuple[str, ...] = ()
    selector: ComponentSpec | None = None
    interceptors: tuple[ComponentSpec, ...] = ()


@dataclass(frozen=True)
class SinkSpec(ComponentSpec):
    channel: str = ""


@dataclass(frozen=True)
class SinkGroupSpec(ComponentSpec):
    """``type`` is the processor type (default / failover / load_balance)."""

    sinks: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentConfig:
    name: str
    sources: Mapping[str, SourceSpec] = field(default_factory=dict)
    channels: Mapping[str, ComponentSpec] = field(default_factory=dict)
    sinks: Mapping[str, SinkSpec] = field(default_factory=dict)
    sinkgroups: Mapping[str, SinkGroupSpec] = field(default_factory=dict)
