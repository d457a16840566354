"""Sinks, and helpers every sink shares: batch takes with Flume's sink counters.

A sink's ``process()`` moves one batch inside one channel transaction. The helpers here keep
the bookkeeping identical across sinks (BatchEmpty / BatchUnderflow / BatchComplete,
EventDrainAttempt / EventDrainSuccess, ChannelReadFail).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from agent.channels.durability import durable, fsync_later
from agent.components import Channel, Status, Transaction
from agent.metrics import CounterGroup
from protocol.event import Event


class EventDeliveryException(Exception):
    """A sink could not deliver a batch; it was rolled back and the runner backs off."""


def take_batch(tx: Transaction, limit: int) -> list[Event]:
    """Take up to ``limit`` events from an open transaction (fast path on memory channels)."""
    fast = getattr(tx, "take_batch", None)
    if fast is not None:
        batch: list[Event] = fast(limit)
        return batch
    events: list[Event] = []
    for _ in range(limit):
        event = tx.take()
        if event is None:
            break
        events.append(event)
    return events


def count_batch(counter: CounterGroup, taken: int, batch_size: int) -> None:
    """Flume's batch classification, recorded when a batch has been taken."""
    counters = counter.counters
    if taken == 0:
        counters["BatchEmptyCount"] += 1
    elif taken < batch_size:
        counters["BatchUnderflowCount"] += 1
    else:
        counters["BatchCompleteCount"] += 1
    counters["EventDrainAttemptCount"] += taken


def rollback_quietly(tx: Transaction) -> None:
    """Roll back after a failure without masking the original error."""
    try:
        tx.rollback()
    except Exception:  # already completed or closed: nothing left to undo
        pass


async def drain_batch(
    channel: Channel, counter: CounterGroup, limit: int,
    deliver: Callable[[list[Event]], Awaitable[None] | None],
) -> Status:
    """One sink step: take up to ``limit`` events in one transaction, ``deliver`` them,
    commit. Any failure rolls the whole batch back and propagates (the runner backs off)."""
    tx = channel.transaction()
    tx.begin()
    try:
        batch = take_batch(tx, limit)
        count_batch(counter, len(batch), limit)
        if batch:
            result = deliver(batch)
            if inspect.isawaitable(result):
                await result
        with fsync_later():
            tx.commit()
    except BaseException:
        rollback_quietly(tx)
        raise
    finally:
        tx.close()
    counter.counters["EventDrainSuccessCount"] += len(batch)
    if batch:
        await durable((channel,))  # the take on disk, sharing the next fsync
    return Status.READY if batch else Status.BACKOFF


__all__ = ["EventDeliveryException", "count_batch", "drain_batch", "rollback_quietly",
           "take_batch"]
