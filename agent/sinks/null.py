"""The null sink: takes up to ``batchSize`` events per transaction and discards them."""

from __future__ import annotations

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


class NullSink(Sink):
    SCHEMA = Schema(keys=(Key("batchSize", integer(1), 100),), batch_key="batchSize")

    def __init__(self, name: str, batch_size: int = 100, counter: CounterGroup | None = None):
        super().__init__(name)
        if batch_size <= 0:
            raise ValueError(f"sink {name}: batchSize must be > 0, got {batch_size}")
        self.batch_size = batch_size
        self.counter = counter if counter is not None else CounterGroup("SINK", name)

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> NullSink:
        return cls(spec.name, spec.settings["batchSize"], ctx.metrics.sink(spec.name))

    async def process(self) -> Status:
        return await drain_batch(self.channel, self.counter, self.batch_size, _discard)


def _discard(batch: list[Event]) -> None:
    """Nothing to do: the null sink only commits the takes."""
