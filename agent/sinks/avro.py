"""The Avro sink: ships batches to a Flume-compatible Avro source (Flume, flumelet, a consumer).

Each ``process()`` takes up to ``batch-size`` events in one channel transaction, sends them
with ``appendBatch`` (Flume's sink uses appendBatch even for one event) and commits only when
the peer answered ``OK``. ``FAILED``, ``UNKNOWN``, an error reply, a timeout or a lost
connection roll the batch back and drop the connection; the runner backs off and the next
attempt reconnects with a fresh handshake. Duplicates can only come from a batch whose
answer never arrived.

While the peer works on a batch, the sink takes and encodes the next one in a transaction of
its own (the work it would otherwise do after the answer), and sends it once the answer is
in: one call on the wire at a time, as Flume's sink, but the encoding overlaps the peer's
decoding (on another core, or another machine). A failure rolls back both, the prepared
batch first, so the events go back to the head of the channel in their order; the prepared
batch was never sent, so it cannot be a duplicate. Only a standalone sink does this: in a
sink group the processor may not call this sink again for a long time (failover sends
everything to another sink), and the prepared events would wait with it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.channels.durability import durable, fsync_later
from agent.components import Clock, Sink, Status, Transaction
from agent.config.converters import choice, integer
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sinks import EventDeliveryException, count_batch, rollback_quietly, take_batch
from agent.tls import CLIENT_KEYS, TlsConfigError, client_context, client_rules
from common.outage import peer_problem
from protocol.codec import encode_event_array
from protocol.event import Event
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import RpcClient, RpcError

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)


class _Batch:
    """Events taken in one open transaction, encoded and ready to send."""

    __slots__ = ("encoded", "events", "tx")

    def __init__(self, tx: Transaction, events: list[Event]) -> None:
        self.tx = tx
        self.events = events
        self.encoded = encode_event_array(events)


class AvroSink(Sink):
    SCHEMA = Schema(
        keys=(
            Key("hostname", required=True),
            Key("port", integer(1, 65535), required=True),
            Key("batch-size", integer(), 100, floor=1),
            Key("connect-timeout", integer(bits=64), 20000, floor=1000),
            Key("request-timeout", integer(bits=64), 20000, floor=1000),
            Key("reset-connection-interval", integer(0), 0),
            Key("compression-type", choice("none", "deflate"), "none"),
            Key("compression-level", integer(-1, 9), 6),
            *CLIENT_KEYS,
            Key("maxIoWorkers", integer(), None, floor=1, ignored="one asyncio loop"),
        ),
        batch_key="batch-size",
        rules=client_rules,
    )

    def __init__(
        self, name: str, client: RpcClient, batch_size: int, counter: CounterGroup,
        clock: Clock, reset_interval: float = 0.0,
    ) -> None:
        super().__init__(name)
        self.client = client
        self.batch_size = batch_size
        self.counter = counter
        self.clock = clock
        self.reset_interval = reset_interval
        self._connected_at: float | None = None
        self._prepared: _Batch | None = None  # taken while the previous batch was in flight

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> AvroSink:
        s = spec.settings
        try:
            tls = client_context(s)
        except TlsConfigError as exc:
            raise ComponentConfigError(spec, str(exc)) from exc
        client = RpcClient(
            AVRO_SOURCE_PROTOCOL, s["hostname"], s["port"],
            connect_timeout=s["connect-timeout"] / 1000,
            request_timeout=s["request-timeout"] / 1000,
            deflate=s["compression-type"] == "deflate",
            compression_level=s["compression-level"],
            ssl=tls,
        )
        return cls(spec.name, client, s["batch-size"], ctx.metrics.sink(spec.name), ctx.clock,
                   s["reset-connection-interval"])

    async def stop(self) -> None:
        self._roll_back_prepared()
        await self.client.close()

    async def process(self) -> Status:
        await self._maybe_reset()
        batch, self._prepared = self._prepared, None
        if batch is None:
            batch = self._take()
            if batch is None:
                return Status.BACKOFF
        try:
            await self._deliver(batch)
        except BaseException:
            self._roll_back_prepared()  # newer events first: both go back in order
            rollback_quietly(batch.tx)
            batch.tx.close()
            raise
        with fsync_later():
            batch.tx.commit()
        batch.tx.close()
        self.counter.counters["EventDrainSuccessCount"] += len(batch.events)
        await durable((self.channel,))  # the take on disk, sharing the next fsync
        return Status.READY

    def _take(self) -> _Batch | None:
        """The next batch in a transaction of its own; None (transaction closed) if the
        channel is empty."""
        tx = self.channel.transaction()
        tx.begin()
        try:
            events = take_batch(tx, self.batch_size)
            count_batch(self.counter, len(events), self.batch_size)
            if events:
                return _Batch(tx, events)
            tx.commit()
        except BaseException:
            rollback_quietly(tx)
            tx.close()
            raise
        tx.close()
        return None

    def _roll_back_prepared(self) -> None:
        batch, self._prepared = self._prepared, None
        if batch is not None:
            rollback_quietly(batch.tx)
            batch.tx.close()

    async def _deliver(self, batch: _Batch) -> None:
        c = self.counter.counters
        created = self.client.connections_created
        try:
            pending = await self.client.start_call("appendBatch", {}, encoded=batch.encoded)
            try:
                if self.standalone:
                    self._prepared = self._take()  # while the peer decodes this batch
            except BaseException:
                await self._close_connection()  # its answer must not arrive after a rollback
                raise
            status, _ = await pending.result()
        except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
            c["EventWriteFail"] += 1
            if self.client.connections_created == created and not self.client.connected:
                c["ConnectionFailedCount"] += 1
            await self._close_connection()
            problem = (f"answered with an error ({exc})" if isinstance(exc, RpcError)
                       else peer_problem(exc))
            # the runner names the sink, says what happens meanwhile and logs state changes
            raise EventDeliveryException(f"{self.client.address} {problem}") from exc
        finally:
            if self.client.connections_created > created:
                c["ConnectionCreatedCount"] += 1
                self._connected_at = self.clock.monotonic()
        if status != "OK":
            c["EventWriteFail"] += 1
            await self._close_connection()
            raise EventDeliveryException(f"{self.client.address} refused the batch "
                                         f"(answered {status})")

    async def _close_connection(self) -> None:
        if self.client.connected:
            self.counter.counters["ConnectionClosedCount"] += 1
        await self.client.close()
        self._connected_at = None

    async def _maybe_reset(self) -> None:
        """reset-connection-interval: reconnect periodically (e.g. behind a load balancer)."""
        if (self.reset_interval > 0 and self._connected_at is not None
                and self.clock.monotonic() - self._connected_at >= self.reset_interval):
            log.debug("sink %s: resetting connection to %s", self.name, self.client.address)
            await self._close_connection()
