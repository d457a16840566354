"""The seq source (Flume's SequenceGeneratorSource): bodies "0", "1", "2" ... as UTF-8.

``totalEvents`` (None = unbounded) and ``batchSize`` (1). After ``totalEvents`` the source
returns BACKOFF forever. A channel failure keeps the counter where it was (the batch is sent
again) and returns BACKOFF; Flume returns READY there, which spins on a full channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.components import ChannelException, PollableSource, Status
from agent.config.converters import JAVA_LONG_MAX, integer
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)


class SequenceGeneratorSource(PollableSource):
    SCHEMA = Schema(
        keys=(
            Key("totalEvents", integer(0, bits=64), JAVA_LONG_MAX),
            Key("batchSize", integer(1), 1),
        ),
        batch_key="batchSize",
    )

    def __init__(
        self,
        name: str,
        total_events: int | None = None,
        batch_size: int = 1,
        counter: CounterGroup | None = None,
    ) -> None:
        super().__init__(name)
        if batch_size <= 0:
            raise ValueError(f"source {name}: batchSize must be > 0, got {batch_size}")
        if total_events is not None and total_events < 0:
            raise ValueError(f"source {name}: totalEvents must be >= 0, got {total_events}")
        self.total_events = total_events
        self.batch_size = batch_size
        self.sent = 0
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> SequenceGeneratorSource:
        s = spec.settings
        return cls(spec.name, s["totalEvents"], s["batchSize"], ctx.metrics.source(spec.name))

    async def process(self) -> Status:
        start = self.sent
        end = start + self.batch_size
        if self.total_events is not None:
            end = min(end, self.total_events)
        if end <= start:
            return Status.BACKOFF
        counters = self.counter.counters
        try:
            if self.batch_size == 1:
                self.channel_processor.process_event(Event({}, str(start).encode()))
            else:
                batch = [Event({}, str(i).encode()) for i in range(start, end)]
                self.channel_processor.process_event_batch(batch)
                counters["AppendBatchAcceptedCount"] += 1
        except ChannelException as exc:
            counters["ChannelWriteFail"] += 1
            log.warning("source %s could not write to channel: %s", self.name, exc)
            return Status.BACKOFF
        counters["EventAcceptedCount"] += end - start
        self.sent = end
        done = self.total_events is not None and end >= self.total_events
        return Status.BACKOFF if done else Status.READY
