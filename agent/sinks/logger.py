"""The logger sink: one event per transaction, logged at INFO in Flume's exact format.

``Event: { headers:{k=v, k2=v2} body: 48 65 6C 6C 6F  ...  Hello }`` -- the body is a hex dump of
the first ``maxBytesToLog`` bytes (commons-io ``HexDump`` layout without the first offset),
headers as Java's ``Map.toString`` (in insertion order: Java's HashMap order is arbitrary).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.components import Sink, Status
from agent.config.converters import integer
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.sinks import drain_batch
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger("agent.sinks.logger")


def hex_dump(data: bytes) -> str:
    """commons-io ``HexDump.dump(data, 0, out, 0)`` with lines joined by ``\\n``."""
    lines = []
    for start in range(0, len(data), 16):
        chunk = data[start : start + 16]
        hex_part = "".join(f"{b:02X} " for b in chunk) + "   " * (16 - len(chunk))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start:08X} {hex_part}{text}")
    return "\n".join(lines)


def java_map_str(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in headers.items()) + "}"


def dump_event(event: Event, max_bytes: int = 16) -> str:
    """Flume's ``EventHelper.dumpEvent``: ``{ headers:{...} body: <hexdump> }``."""
    body = ""
    if event.body:
        body = hex_dump(event.body[:max_bytes])
        if body.startswith("00000000"):
            body = body[8:]
    return "{ headers:" + java_map_str(event.header_map) + " body:" + body + " }"


class LoggerSink(Sink):
    # Flume falls back to the default for a non-positive maxBytesToLog
    SCHEMA = Schema(keys=(Key("maxBytesToLog", integer(), 16, floor=1),))

    def __init__(
        self, name: str, max_bytes_to_log: int = 16, counter: CounterGroup | None = None
    ) -> None:
        super().__init__(name)
        self.max_bytes = max_bytes_to_log
        self.counter = counter if counter is not None else CounterGroup("SINK", name)

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> LoggerSink:
        return cls(spec.name, spec.settings["maxBytesToLog"], ctx.metrics.sink(spec.name))

    async def process(self) -> Status:
        return await drain_batch(self.channel, self.counter, 1, self._log)

    def _log(self, batch: list[Event]) -> None:
        if log.isEnabledFor(logging.INFO):
            for event in batch:
                log.info("Event: %s", dump_event(event, self.max_bytes))
