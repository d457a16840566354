"""The memory channel: Flume's MemoryChannel semantics on a ``collections.deque``.

Settings (Flume keys): ``capacity``, ``transactionCapacity``, ``byteCapacity``,
``byteCapacityBufferPercentage``, ``keep-alive``.

Accounting follows Flume exactly:
- queue slots: a put commit needs room for the *net* number of added events (puts minus takes
  of the same transaction); taken events keep their slot until the take commits, so a
  rollback can always return them to the head of the queue, in order.
- bytes: only bodies count, in 100-byte slots rounded up, at least one slot per event; the
  budget is ``byteCapacity * (1 - byteCapacityBufferPercentage/100)``; ``None`` (Flume: 80% of
  the JVM heap, which has no Python equivalent) or a budget under one slot means unlimited.

``keep-alive`` is accepted for compatibility but never waited on: in one asyncio loop a blocking
wait inside ``take()`` or ``commit()`` would freeze every other component, and nothing could
free space or add events while we wait. So an empty ``take()`` returns ``None`` at once and a
commit without room raises ``ChannelFullException`` at once; the runtime then backs off, or
wakes as soon as a commit adds events (``add_listener``). As a bonus, partial batches are
delivered immediately instead of after Flume's 3 s keep-alive wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.channels.queue import ChunkedQueue
from agent.channels.transaction import _OPEN, BasicTransaction
from agent.components import ChannelException, ChannelFullException, Component
from agent.config.converters import integer
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext, Schema
from agent.metrics import ChannelCounter
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

SLOT_SIZE = 100  # bytes per byte-capacity slot, as Flume
UNLIMITED = 2**63


def _event_slots(event: Event) -> int:
    size = len(event.body)
    return (size + SLOT_SIZE - 1) // SLOT_SIZE if size else 1


def _slots_of(events: list[Event]) -> int:
    total = 0
    for event in events:
        size = len(event.body)
        total += (size + SLOT_SIZE - 1) // SLOT_SIZE if size else 1
    return total


def transaction_within_capacity(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    if settings["transactionCapacity"] > settings["capacity"]:
        return [
            Problem(
                IssueCode.BAD_VALUE,
                f"transactionCapacity ({settings['transactionCapacity']}) must not exceed "
                f"capacity ({settings['capacity']})",
                "transactionCapacity",
            )
        ]
    return []


KEEP_ALIVE = Key("keep-alive", integer(0), 3, ignored="a take or commit never waits (see above)")


class MemoryChannel(Component):
    """A bounded in-memory queue with transactional puts and takes."""

    SCHEMA = Schema(
        keys=(
            Key("capacity", integer(1, fallback=100), 100),
            Key("transactionCapacity", integer(1, fallback=100), 100),
            KEEP_ALIVE,
            Key("byteCapacityBufferPercentage", integer(0, 100), 20),
            # Flume defaults to 80% of the JVM's max heap; flumelet has no heap limit, so
            # None means "no byte limit". 0 also means unlimited, as in Flume.
            Key("byteCapacity", integer(0, bits=64), None),
        ),
        rules=transaction_within_capacity,
    )

    def __init__(
        self,
        name: str,
        *,
        capacity: int = 100,
        transaction_capacity: int = 100,
        byte_capacity: int | None = None,
        byte_capacity_buffer_percentage: int = 20,
        counter: ChannelCounter | None = None,
    ) -> None:
        super().__init__(name)
        if capacity <= 0:
            raise ValueError(f"channel {name}: capacity must be > 0, got {capacity}")
        if transaction_capacity <= 0:
            raise ValueError(
                f"channel {name}: transactionCapacity must be > 0, got {transaction_capacity}"
            )
        if transaction_capacity > capacity:
            raise ValueError(
                f"channel {name}: transactionCapacity ({transaction_capacity}) "
                f"cannot be higher than capacity ({capacity})"
            )
        if not 0 <= byte_capacity_buffer_percentage <= 100:
            raise ValueError(
                f"channel {name}: byteCapacityBufferPercentage must be 0..100, "
                f"got {byte_capacity_buffer_percentage}"
            )
        self.capacity = capacity
        self.transaction_capacity = transaction_capacity
        self.byte_slots = UNLIMITED
        if byte_capacity is not None:
            if byte_capacity < 0:
                raise ValueError(f"channel {name}: byteCapacity must be >= 0, got {byte_capacity}")
            budget = int(byte_capacity * (1 - byte_capacity_buffer_percentage * 0.01) / SLOT_SIZE)
            self.byte_slots = budget if budget >= 1 else UNLIMITED
        self.byte_limited = self.byte_slots != UNLIMITED  # else bodies need no measuring
        self.queue: ChunkedQueue[Event] = ChunkedQueue()
        self.slots_used = 0  # queue slots held: queued events + uncommitted takes
        self.bytes_used = 0  # byte slots held, same rule
        self.in_flight = 0  # events taken by open transactions
        self._listeners: list[Callable[[], None]] = []
        self.counter = counter if counter is not None else ChannelCounter(name)
        self.counter.set("ChannelCapacity", capacity)
        self.counter.size_probe = self.size

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> MemoryChannel:
        s = spec.settings
        return cls(
            spec.name,
            capacity=s["capacity"],
            transaction_capacity=s["transactionCapacity"],
            byte_capacity=s["byteCapacity"],
            byte_capacity_buffer_percentage=s["byteCapacityBufferPercentage"],
            counter=ctx.metrics.channel(spec.name),
        )

    def transaction(self) -> MemoryTransaction:
        return MemoryTransaction(self)

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def size(self) -> int:
        return len(self.queue)

    def _notify(self) -> None:
        for callback in self._listeners:
            try:
                callback()
            except Exception:  # a broken listener must not undo a committed transaction
                log.exception("channel %s: listener failed", self.name)

    def __repr__(self) -> str:
        return f"MemoryChannel({self.name!r}, size={len(self.queue)}, capacity={self.capacity})"


class MemoryTransaction(BasicTransaction):
    """Private put and take lists, applied to the channel atomically at commit."""

    __slots__ = ("_channel", "_put_bytes", "_puts", "_take_attempts", "_take_bytes", "_takes")

    def __init__(self, channel: MemoryChannel) -> None:
        super().__init__()
        self._channel = channel
        self._puts: list[Event] = []
        self._takes: list[Event] = []
        self._put_bytes = 0
        self._take_bytes = 0
        self._take_attempts = 0

    def _do_put(self, event: Event) -> None:
        channel = self._channel
        if len(self._puts) >= channel.transaction_capacity:
            channel.counter.counters["EventPutAttemptCount"] += 1
            raise ChannelException(
                f"channel {channel.name}: put list of transaction capacity "
                f"{channel.transaction_capacity} is full; commit more often or raise "
                "transactionCapacity"
            )
        self._puts.append(event)
        if channel.byte_limited:
            size = len(event.body)
            self._put_bytes += (size + 99) // 100 if size else 1

    def put_all(self, events: list[Event]) -> None:
        """Put a whole batch (the channel processor's fast path); same checks as ``put``."""
        if self.state is not _OPEN:
            raise self._illegal("put", "OPEN")
        room = self._channel.transaction_capacity - len(self._puts)
        if len(events) > room:
            for event in events[: max(room, 0) + 1]:
                self._do_put(event)  # raises at the first event over the limit
        self._puts.extend(events)
        if self._channel.byte_limited:
            self._put_bytes += _slots_of(events)

    def _do_take(self) -> Event | None:
        channel = self._channel
        if len(self._takes) >= channel.transaction_capacity:
            channel.counter.counters["EventTakeAttemptCount"] += 1
            raise ChannelException(
                f"channel {channel.name}: take list of transaction capacity "
                f"{channel.transaction_capacity} is full; commit more often or raise "
                "transactionCapacity"
            )
        self._take_attempts += 1
        if not channel.queue:
            return None
        event = channel.queue.popleft()
        self._takes.append(event)
        channel.in_flight += 1
        if channel.byte_limited:
            size = len(event.body)
            self._take_bytes += (size + 99) // 100 if size else 1
        return event

    def take_batch(self, limit: int) -> list[Event]:
        """Take up to ``limit`` events at once (sinks' fast path); stops when the queue is empty."""
        if self.state is not _OPEN:
            raise self._illegal("take", "OPEN")
        channel = self._channel
        room = channel.transaction_capacity - len(self._takes)
        if limit > room:
            raise ChannelException(
                f"channel {channel.name}: cannot take {limit} events, only {room} left of "
                f"transaction capacity {channel.transaction_capacity}"
            )
        queue = channel.queue
        count = min(limit, len(queue))
        self._take_attempts += count + (1 if count < limit else 0)
        if count == 0:
            return []
        batch = queue.take(count)
        self._takes.extend(batch)
        channel.in_flight += count
        if channel.byte_limited:
            self._take_bytes += _slots_of(batch)
        return batch

    def _do_commit(self) -> None:
        self._check_room()
        self._apply_commit()

    def _check_room(self) -> None:
        """Raise if the channel cannot take this transaction's puts (nothing changes)."""
        channel = self._channel
        puts = self._puts
        added = len(puts) - len(self._takes)
        if puts:
            if channel.bytes_used + self._put_bytes > channel.byte_slots:
                raise ChannelException(
                    f"channel {channel.name}: cannot commit, byte capacity of "
                    f"{channel.byte_slots * SLOT_SIZE} bytes reached; sinks may not be keeping "
                    "up, or raise byteCapacity"
                )
            if added > 0 and channel.slots_used + added > channel.capacity:
                raise ChannelFullException(
                    f"channel {channel.name}: no room to commit {added} events "
                    f"({channel.slots_used}/{channel.capacity} used); sinks are likely not "
                    "keeping up with sources"
                )

    def _apply_commit(self) -> None:
        channel = self._channel
        counters = channel.counter.counters
        puts = self._puts
        added = len(puts) - len(self._takes)
        if puts:
            channel.queue.extend_owned(puts)  # the list is handed over: self._puts is reset
        channel.slots_used += added
        channel.bytes_used += self._put_bytes - self._take_bytes
        channel.in_flight -= len(self._takes)
        counters["EventPutAttemptCount"] += len(puts)
        counters["EventPutSuccessCount"] += len(puts)
        counters["EventTakeAttemptCount"] += self._take_attempts
        counters["EventTakeSuccessCount"] += len(self._takes)
        self._puts = []
        self._takes = []
        if puts:
            channel._notify()

    def _do_rollback(self) -> None:
        channel = self._channel
        takes = self._takes
        if takes:
            channel.queue.push_front(takes)
            channel.in_flight -= len(takes)
            channel._notify()  # the events are available again: wake idle sinks
        counters = channel.counter.counters
        counters["EventPutAttemptCount"] += len(self._puts)
        counters["EventTakeAttemptCount"] += self._take_attempts
        self._puts = []
        self._takes = []

