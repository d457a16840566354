"""A plug-in source, sink and interceptor, written as a flumelet user would write them.

Each declares its keys in ``SCHEMA`` (agent.config.schema) and implements its kind's interface
(agent/registry.py). Configure them with their dotted path as the type::

    a1.sources.r1.type = tests.plugins.greeting.GreetingSource
    a1.sources.r1.greeting = hi
    a1.sinks.k1.type = tests.plugins.greeting:CollectingSink
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.components import ChannelException, PollableSource, Sink, Status
from agent.config.converters import integer
from agent.config.schema import Key, Schema
from agent.interceptors.base import Interceptor
from agent.metrics import CounterGroup
from agent.sinks import drain_batch
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

# What every CollectingSink took, by sink name (tests read it).
COLLECTED: dict[str, list[bytes]] = {}


class GreetingSource(PollableSource):
    """``count`` events ``<greeting> <n>``, ``batchSize`` per channel transaction."""

    SCHEMA = Schema(
        keys=(
            Key("greeting", default="hello"),
            Key("count", integer(0), 10),
            Key("batchSize", integer(1), 5),
        ),
        batch_key="batchSize",
    )

    def __init__(self, name: str, greeting: str, count: int, batch_size: int) -> None:
        super().__init__(name)
        self.greeting, self.count, self.batch_size = greeting, count, batch_size
        self.sent = 0

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> GreetingSource:
        s = spec.settings
        return cls(spec.name, s["greeting"], s["count"], s["batchSize"])

    async def process(self) -> Status:
        end = min(self.sent + self.batch_size, self.count)
        if end <= self.sent:
            return Status.BACKOFF
        batch = [Event({}, f"{self.greeting} {n}".encode()) for n in range(self.sent, end)]
        try:
            self.channel_processor.process_event_batch(batch)
        except ChannelException:
            return Status.BACKOFF
        self.sent = end
        return Status.READY


class CollectingSink(Sink):
    """Takes up to ``batchSize`` events per transaction into ``COLLECTED[name]``."""

    SCHEMA = Schema(keys=(Key("batchSize", integer(1), 10),), batch_key="batchSize")

    def __init__(self, name: str, batch_size: int, counter: CounterGroup) -> None:
        super().__init__(name)
        self.batch_size = batch_size
        self.counter = counter
        self.batches: list[int] = []  # the size of each batch taken, to see batchSize at work
        self.collected = COLLECTED.setdefault(name, [])

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> CollectingSink:
        return cls(spec.name, spec.settings["batchSize"], ctx.metrics.sink(spec.name))

    async def process(self) -> Status:
        return await drain_batch(self.channel, self.counter, self.batch_size, self._keep)

    def _keep(self, batch: list[Event]) -> None:
        self.batches.append(len(batch))
        self.collected.extend(event.body for event in batch)


class UpperCaseInterceptor(Interceptor):
    """Upper-cases the body; ``header`` (if set) marks the event."""

    SCHEMA = Schema(keys=(Key("header"),))

    def __init__(self, header: str | None) -> None:
        self.header = header

    @classmethod
    def from_settings(cls, settings: Any, clock: Any) -> UpperCaseInterceptor:
        return cls(settings["header"])

    def intercept(self, event: Event) -> Event | None:
        event.body = event.body.upper()
        if self.header:
            event.headers[self.header] = "upper"
        return event


class NotASource:
    """Implements nothing: configuring it is refused."""

