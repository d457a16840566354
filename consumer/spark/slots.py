"""Executor side: fill a slot from an agent (or find it already filled) and hand its rows over.

``read_slots`` is what ``FlumeStreamReader.read`` runs in a Spark task. For each slot of its
range, under the slot's lock:

1. sealed already (a re-run of a micro-batch): return the staged rows, touching no agent;
2. else start from the previous slot's pending digests, adopt any parts a killed attempt
   staged (their acks are unknown: their events may come back), then poll the agent.
   SparkSink batches, up to maxUnackedBatches at a time, have their redelivered events
   dropped, are staged durably as one part, and only then acked; an ack that is not proven
   adds the part's digests to the pending ones. The slot ends at its event budget, on a
   partial batch (the channel is drained), or when nothing comes within pollTimeoutMs;
3. seal the slot (parts, proofs, pending digests), then return the rows.

Nothing is returned to Spark before the seal is durable, so every attempt that delivers rows
delivers the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import pyarrow as pa

from consumer.spark.offsets import SlotRange
from consumer.spark.options import SourceOptions
from consumer.spark.pull import SinkBatch, SinkConnection
from consumer.spark.redelivery import Pending, event_digest
from consumer.spark.staging import PartRef, Seal, SlotStore, StagedPart, events_to_batch

log = logging.getLogger(__name__)

__all__ = ["fill_slot", "read_slots"]


def _previous_pending(store: SlotStore, slot: int) -> Pending:
    if slot <= 1:
        return Pending()
    seal = store.seal(slot - 1)
    if seal is None:
        log.warning("staged slot %d of %s is missing (was %s emptied?): events counted before "
                    "it and redelivered now cannot be recognised", slot - 1, store.agent,
                    store.dir)
        return Pending()
    return seal.pending


async def fill_slot(store: SlotStore, slot: int, limit: int, opts: SourceOptions,
                    clock: Callable[[], float] = time.time) -> Seal:
    """Fill and seal ``slot`` (the caller holds its lock and saw no seal)."""
    pending = _previous_pending(store, slot)
    refs: list[PartRef] = []
    pulled = 0
    for name, part in await asyncio.to_thread(store.unsealed_parts, slot):
        for d in part.dropped:  # they were matched (consumed) when the part was staged
            pending.take(d)
        pending.expect(part.since, part.all_digests())
        refs.append(PartRef(name, part.seqs, part.rows.num_rows, confirmed=False))
        pulled += part.rows.num_rows + len(part.dropped)
    if refs:
        log.info("slot %d of %s: adopting %d parts a failed attempt staged", slot, store.agent,
                 len(refs))
    conn = SinkConnection(store.agent, connect_timeout=opts.connect_timeout,
                          sink_timeout=opts.sink_timeout, clock=clock)
    held: list[SinkBatch] = []
    started: float | None = None

    async def stage_and_ack() -> None:
        """The held batches become one durable part, then they are acked."""
        part = _without_redeliveries(held, pending)
        try:
            name = await asyncio.to_thread(store.write_part, slot, len(refs) + 1, part)
        except BaseException:
            for b in held:  # not staged: let the agent keep them
                await conn.settle(b, "nack")
            raise
        proven = all([await conn.settle(b, "ack") for b in held])
        if not proven:
            pending.expect(part.since, part.all_digests())
        if part.dropped:
            log.info("slot %d of %s: %d redelivered events were already counted", slot,
                     store.agent, len(part.dropped))
        refs.append(PartRef(name, part.seqs, part.rows.num_rows, proven))
        held.clear()

    def ask() -> int:
        return min(opts.max_batch_size, limit - pulled)

    try:
        while pulled < limit:
            batch = await conn.poll(ask(), opts.poll_timeout)
            if batch is None or batch == "timeout":
                break
            started = batch.sent_at if started is None else started
            held.append(batch)
            pulled += len(batch.events)
            if len(batch.events) < batch.asked:
                break  # the channel is empty for now
            if len(held) >= opts.max_unacked_batches:
                if pulled < limit:
                    conn.prefetch(ask())  # the agent prepares the next batch meanwhile
                await stage_and_ack()
        if held:
            await stage_and_ack()
    finally:
        await conn.close()
    forgotten = pending.expire(started if started is not None else clock(),
                               opts.redelivery_timeout, started is not None)
    if forgotten:
        log.warning("%s: %d counted events whose ack was not proven never came back; no "
                    "longer expecting them", store.agent, forgotten)
    seal = Seal(refs, pending, pulled)
    await asyncio.to_thread(store.write_seal, slot, seal)
    return seal


def _without_redeliveries(batches: list[SinkBatch], pending: Pending) -> StagedPart:
    """One part from ``batches``: events a pending digest expects are dropped (and noted)."""
    kept, dropped = [], []
    for batch in batches:
        for e in batch.events:
            if pending and pending.take(d := event_digest(e["headers"], e["body"])):
                dropped.append(d)
            else:
                kept.append(e)
    return StagedPart([b.seq for b in batches], min(b.sent_at for b in batches),
                      events_to_batch(kept), dropped)


def _sealed(store: SlotStore, slot: int, limit: int, opts: SourceOptions,
            clock: Callable[[], float]) -> Seal:
    with store.locked(slot):
        seal = store.seal(slot)
        if seal is None:
            seal = asyncio.run(fill_slot(store, slot, limit, opts, clock))
        return seal


def read_slots(rng: SlotRange, opts: SourceOptions, out_schema: pa.Schema,
               clock: Callable[[], float] = time.time) -> Iterator[pa.RecordBatch]:
    """The rows of ``rng`` as Arrow batches in ``out_schema`` (headers, body, agent)."""
    store = SlotStore(opts.staging_dir, rng.run, rng.agent)
    for slot in range(rng.first, rng.last + 1):
        seal = _sealed(store, slot, rng.limit, opts, clock)
        for rows in store.rows(slot, seal):
            yield to_output(rows, rng.agent, out_schema)


def to_output(rows: pa.RecordBatch, agent: str, schema: pa.Schema) -> pa.RecordBatch:
    """Staged rows -> the source's schema: body as bytes or UTF-8 text, plus the agent."""
    body = rows.column(1)
    if pa.types.is_string(schema.field("body").type):
        try:
            body = body.cast(pa.string())
        except pa.ArrowInvalid:  # not UTF-8: replace what does not decode, as PySpark's
            body = pa.array([None if b is None else b.decode("utf-8", "replace")
                             for b in body.to_pylist()], pa.string())
    agent_col = pa.repeat(agent, rows.num_rows).cast(schema.field("agent").type)
    return pa.RecordBatch.from_arrays([rows.column(0), body, agent_col], schema=schema)
