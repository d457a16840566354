"""The seams every agent component is built against.

Components hold logic; runners (``agent/runtime``) own loops, sleeping and task lifetimes.
A pollable component's ``process()`` does one unit of work and says READY (call me again)
or BACKOFF (nothing to do or a transient failure: the runner waits, or wakes on a signal).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

# the shared clock, re-exported: every component is handed one (agent.registry.BuildContext)
from common.clock import Clock as Clock
from common.clock import ManualClock as ManualClock
from common.clock import SystemClock as SystemClock
from protocol.event import Event


class Status(enum.Enum):
    READY = "READY"  # more to do: call again at once
    BACKOFF = "BACKOFF"  # nothing to do now: wait; a wake-up ends the wait
    RETRY = "RETRY"  # a transient refusal (a full channel): wait out the retry back-off


@dataclass(frozen=True)
class BackoffPolicy:
    """How long a runner waits between ``process()`` calls (only runners wait).

    After k BACKOFFs in a row ``min(k * step, maximum)`` (Flume's SinkRunner: 1 s steps up to
    5 s); after k RETRYs in a row ``min(retry * 2**(k-1), retry_maximum)``; after an exception
    ``error``. Wake-ups cut only a BACKOFF wait short.
    """

    step: float = 1.0
    maximum: float = 5.0
    error: float = 5.0
    retry: float = 1.0
    retry_maximum: float = 5.0

    def after_backoffs(self, count: int) -> float:
        return min(count * self.step, self.maximum)

    def after_retries(self, count: int) -> float:
        return min(self.retry * 2 ** min(count - 1, 62), self.retry_maximum)


class ChannelException(Exception):
    """A channel operation failed; the caller rolls back and retries later."""

    channel: str | None = None  # the channel that refused (set by the channel processor)


class ChannelFullException(ChannelException):
    """No room for the committed puts (capacity or byteCapacity)."""


class Transaction(Protocol):
    """Flume's transaction contract: begin, put*/take*, commit or rollback, close.

    Not thread-bound (Flume's are): in one asyncio loop a sink may hold a transaction open
    across an await, and the Spark sink holds many at once.
    """

    def begin(self) -> None: ...

    def put(self, event: Event) -> None: ...

    def take(self) -> Event | None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


class Channel(Protocol):
    name: str

    def transaction(self) -> Transaction: ...

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every commit that added events (wakes sinks)."""

    def size(self) -> int: ...


class ChannelProcessor(Protocol):
    """Runs interceptors, then the selector, then one transaction per channel.

    Raises ChannelException when a required channel refuses; optional-channel failures
    are only logged.
    """

    def process_event(self, event: Event) -> None: ...

    def process_event_batch(self, events: Sequence[Event]) -> None: ...

    async def synced(self) -> None:
        """Return once the commits so far are durable (needed after committing inside
        ``agent.channels.durability.fsync_later``)."""


class Component:
    """Base of sources, sinks and channels: a name and an idempotent async lifecycle."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def start(self) -> None:
        """Open ports, files or connections. Called once, in dependency order."""

    async def stop(self) -> None:
        """Release everything; safe to call twice."""


class PollableSource(Component):
    """A source the runtime polls (seq, spooldir). ``process`` moves one batch, never sleeps.

    ``wakeup`` is set by the runtime: call it when new input may be available
    (e.g. from a watchdog callback) so the runner stops backing off at once.
    """

    channel_processor: ChannelProcessor
    wakeup: Callable[[], None] = staticmethod(lambda: None)

    async def process(self) -> Status:
        raise NotImplementedError

    def backoff_policy(self, default: BackoffPolicy) -> BackoffPolicy:
        """The waits the runner uses for this source: the agent's unless it has its own."""
        return default


class EventDrivenSource(Component):
    """A source that receives events on its own (avro): start() begins accepting."""

    channel_processor: ChannelProcessor


class Sink(Component):
    """Takes from one channel inside a transaction; ``process`` handles one batch."""

    channel: Channel
    # True when no sink group shares its work: only then may a sink keep a batch taken
    # between two ``process()`` calls (a group might not call it again for a long time)
    standalone: bool = False

    async def process(self) -> Status:
        raise NotImplementedError
