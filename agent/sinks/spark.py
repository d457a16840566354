"""A sink compatible with Spark's ``org.apache.spark.streaming.flume.sink.SparkSink``.

Pollers call ``getEventBatch(n)``; each answer comes from its own open channel transaction,
identified by a unique ``sequenceNumber``. ``ack`` commits it and ``nack`` rolls it back, from
any connection; so does the transaction ``timeout``. Like Spark's sink it answers only once
at least one event exists (waiting on channel commits, re-checking every
``backoffInterval``) and at most ``threads`` transactions are open at a time (a slot is held
from the poll until the batch is settled). Unlike it: a partial batch is answered at once
instead of after seconds; a poll for more than the channel's transactionCapacity gets a
smaller batch instead of an error; when a poller's connection closes, its unsettled
batches are rolled back ``close_grace`` seconds later (not only at ``timeout``), the grace
letting a consumer that polls on one connection and acks on another settle what it already
counted; and rolled-back events keep their original order, whatever order the rollbacks
come in (Spark's and Flume's put each rollback at the head of the channel, so batches of
several vanished pollers come back shuffled). ``ack``/``nack`` answer ``null`` as Spark's do,
with what happened in the call metadata (:mod:`protocol.ackproof`): a poller can tell a
committed batch from one that will be served again, e.g. after an agent restart.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import secrets
import string
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.components import Sink, Status, Transaction
from agent.config.converters import integer
from agent.config.limits import LISTENER_KEYS, limits_from, limits_rules
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.sinks import count_batch, rollback_quietly, take_batch
from protocol import ackproof
from protocol.codec import encode_event_array, write_string
from protocol.event import Event
from protocol.limits import ListenerLimits
from protocol.rpc import CallRequest
from protocol.schemas import SPARK_FLUME_PROTOCOL
from protocol.transport import Connection, Encoded, Reply, RpcServer

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

REMEMBERED_COMMITS = 10_000


@dataclass
class _Outstanding:
    tx: Transaction
    events: list[Event]
    ordinals: Sequence[int]  # each event's place in the order the sink first took them
    timer: asyncio.TimerHandle
    conn: Connection


class SparkSink(Sink):
    SCHEMA = Schema(
        keys=(
            Key("hostname", default="0.0.0.0"),
            Key("port", integer(0, 65535), required=True),
            Key("threads", integer(1), 10),
            Key("timeout", integer(1), 60),
            Key("backoffInterval", integer(0), 200),
            *LISTENER_KEYS,
        ),
        rules=limits_rules,
        listen=("hostname", "port"),
    )

    def __init__(
        self, name: str, host: str, port: int, *, threads: int = 10, timeout: float = 60.0,
        backoff_interval: float = 0.2, counter: CounterGroup | None = None,
        sequence: Iterator[str] | None = None, close_grace: float = 5.0,
        limits: ListenerLimits | None = None,
    ) -> None:
        super().__init__(name)
        self.server = RpcServer(SPARK_FLUME_PROTOCOL, self._handle, host, port,
                                name=f"sink {name}", limits=limits)
        self.timeout = timeout
        self.backoff_interval = backoff_interval
        self.counter = counter if counter is not None else CounterGroup("SINK", name)
        self._slots = asyncio.Semaphore(threads)
        if sequence is None:  # as Spark: 8 random characters fixed per sink, then a counter
            prefix = "".join(secrets.choice(string.ascii_letters + string.digits)
                             for _ in range(8))
            sequence = (f"{prefix}{i}" for i in itertools.count(1))
        self._sequence = sequence
        self._outstanding: dict[str, _Outstanding] = {}
        # Recently committed batches: a repeated ack (its first reply was lost) is still
        # answered "committed", so the poller does not wait for a batch that is gone.
        self._committed: collections.OrderedDict[str, None] = collections.OrderedDict()
        # Events this sink rolled back, possibly still at the head of the channel, with their
        # ordinal: the next rollback goes behind the older ones (see _roll_back).
        self._returned: dict[int, tuple[Event, int]] = {}
        self._next_ordinal = 0
        self._by_conn: dict[Connection, list[str]] = {}
        # A poller that hangs up may still ack from another connection (a consumer acks on
        # its own connection, and a graceful stop closes the poll connections before the
        # last acks): roll its batches back only if they are still open this much later.
        self.close_grace = close_grace
        self._wake = asyncio.Event()
        self._watched: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._stopping = False

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> SparkSink:
        s = spec.settings
        return cls(spec.name, s["hostname"], s["port"], threads=s["threads"],
                   timeout=s["timeout"], backoff_interval=s["backoffInterval"] / 1000,
                   counter=ctx.metrics.sink(spec.name), limits=limits_from(s))

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    async def start(self) -> None:
        self.channel.add_listener(self._wake.set)
        await self.server.start()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for seq in reversed(list(self._outstanding)):  # newest first: the cheapest order
            self._finish(seq, commit=False, why="sink stopping")
        await self.server.stop()

    async def process(self) -> Status:
        """All work happens in RPC handlers; the runner just parks this sink."""
        return Status.BACKOFF

    async def _handle(self, call: CallRequest, conn: Connection) -> Any:
        if call.message == "getEventBatch":
            return await self._get_batch(int(call.params["n"]), conn)
        seq = call.params["sequenceNumber"]
        if seq in self._outstanding:
            committed = self._finish(seq, commit=call.message == "ack",
                                     why=f"{call.message} from {conn.peer}")
            outcome = ackproof.COMMITTED if committed else ackproof.ROLLED_BACK
        elif seq in self._committed:
            outcome = ackproof.COMMITTED
        else:
            log.debug("sink %s: %s for unknown or expired batch %s", self.name, call.message, seq)
            outcome = ackproof.UNKNOWN
        # null, as Spark answers, plus what happened (Spark's receiver ignores the metadata)
        return Reply(None, {ackproof.ACK_META_KEY: outcome})

    def _error(self, msg: str) -> dict[str, Any]:
        return {"errorMsg": msg, "sequenceNumber": "", "events": []}

    async def _get_batch(self, n: int, conn: Connection) -> dict[str, Any] | Encoded:
        if n <= 0:
            return self._error(f"getEventBatch needs n > 0, got {n}")
        # Spark's sink fails every poll whose n exceeds the channel's transactionCapacity
        # (maxBatchSize 1000 against Flume's default 100): serve smaller batches instead.
        n = min(n, getattr(self.channel, "transaction_capacity", n))
        if conn not in self._watched:  # a poller that hangs up stops its own wait
            self._watched.add(conn)
            conn.on_close(self._wake.set)
            conn.on_close(lambda: self._poller_gone(conn))
        # As Spark's transaction processors: a slot is held until the batch is settled.
        await self._slots.acquire()
        while not self._stopping and not conn.closed:
            tx = self.channel.transaction()
            tx.begin()
            try:
                events = take_batch(tx, n)
            except Exception as exc:
                rollback_quietly(tx)
                tx.close()
                self._slots.release()
                self.counter.counters["ChannelReadFail"] += 1
                return self._error(f"{type(exc).__name__}: {exc}")
            if events:
                count_batch(self.counter, len(events), n)
                return self._hand_out(tx, events, conn)
            tx.rollback()
            tx.close()
            self._wake.clear()
            try:
                async with asyncio.timeout(self.backoff_interval or None):
                    await self._wake.wait()
            except TimeoutError:
                pass
        self._slots.release()
        return self._error("Spark sink has been stopped!")

    def _hand_out(self, tx: Transaction, events: list[Event], conn: Connection) -> Encoded:
        seq = next(self._sequence)
        timer = asyncio.get_running_loop().call_later(
            self.timeout, self._finish, seq, False, f"no ack within {self.timeout:g}s")
        self._outstanding[seq] = _Outstanding(tx, events, self._ordinals(events), timer, conn)
        self._by_conn.setdefault(conn, []).append(seq)
        # EventBatch{errorMsg = "", sequenceNumber, events}, encoded without per-event dicts
        return Encoded(b"\x00" + write_string(seq) + encode_event_array(events))

    def _poller_gone(self, conn: Connection) -> None:
        seqs = list(self._by_conn.get(conn, ()))
        if not seqs:
            self._by_conn.pop(conn, None)
            return

        def roll_back() -> None:
            self._by_conn.pop(conn, None)
            for seq in seqs:
                self._finish(seq, commit=False, why=f"poller {conn.peer} went away")

        if self.close_grace <= 0:
            roll_back()
        else:
            asyncio.get_running_loop().call_later(self.close_grace, roll_back)

    def _finish(self, seq: str, commit: bool, why: str) -> bool:
        """Commit or roll back batch ``seq``; True only if it was committed."""
        out = self._outstanding.pop(seq, None)
        if out is None:
            return False
        out.timer.cancel()
        self._slots.release()
        on_conn = self._by_conn.get(out.conn)
        if on_conn is not None and seq in on_conn:
            on_conn.remove(seq)
        try:
            if commit:
                try:
                    out.tx.commit()
                    self.counter.counters["EventDrainSuccessCount"] += len(out.events)
                    self._committed[seq] = None
                    if len(self._committed) > REMEMBERED_COMMITS:
                        self._committed.popitem(last=False)
                    return True
                except Exception as exc:
                    log.warning("sink %s: commit of batch %s failed: %s", self.name, seq, exc)
            self._roll_back(out)
            self._wake.set()  # the events are back: let waiting pollers have them
            log.info("sink %s: batch %s of %d events rolled back (%s)",
                     self.name, seq, len(out.events), why)
            return False
        finally:
            out.tx.close()

    # ---- keeping the order across rollbacks ------------------------------------------
    def _ordinals(self, events: list[Event]) -> Sequence[int]:
        """Each event's ordinal: kept from its first hand-out if it was rolled back since,
        else the next one (events never served are newer than any that were)."""
        if not self._returned:
            first = self._next_ordinal
            self._next_ordinal += len(events)
            return range(first, self._next_ordinal)
        ordinals = []
        for e in events:
            known = self._returned.pop(id(e), None)
            if known is not None and known[0] is e:
                ordinals.append(known[1])
            else:
                ordinals.append(self._next_ordinal)
                self._next_ordinal += 1
        return ordinals

    def _roll_back(self, out: _Outstanding) -> None:
        """Roll ``out`` back behind the older events earlier rollbacks left at the head of
        the channel: those are taken aside one per transaction, ``out`` goes back to the
        head, then they go back in front of it. Only the channel's own API is used, so any
        channel keeps the events' order whichever connection or timer rolls back first."""
        first = min(out.ordinals, default=0)
        aside: list[Transaction] = []
        while self._returned:
            probe = self.channel.transaction()
            probe.begin()
            try:
                event = probe.take()
            except Exception:  # a broken channel: give up on the order, not on the rollback
                event = None
            known = self._returned.get(id(event)) if event is not None else None
            if known is None or known[0] is not event or known[1] > first:
                rollback_quietly(probe)
                probe.close()
                break
            aside.append(probe)
        rollback_quietly(out.tx)
        for probe in reversed(aside):
            rollback_quietly(probe)
            probe.close()
        if len(self._returned) > getattr(self.channel, "capacity", 1_000_000):
            self._returned.clear()  # taken and committed by someone else: forget them
        for e, ordinal in zip(out.events, out.ordinals, strict=True):
            self._returned[id(e)] = (e, ordinal)
