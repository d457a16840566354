"""The Avro sink: ships batches to a Flume-compatible Avro source (Flume, flumelet, a consumer).

Each ``process()`` takes up to ``batch-size`` events in one channel transaction, sends them
with ``appendBatch`` (Flume's sink uses appendBatch even for one event) and commits only when
the peer answered ``OK``. ``FAILED``, ``UNKNOWN``, an error reply, a timeout or a lost
connection roll the batch back and drop the connection; the runner backs off and the next
attempt reconnects with a fresh handshake. Duplicates can only come from a batch whose
answer never arrived.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.components import Clock, Sink, Status
from agent.config.converters import choice, integer
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sinks import EventDeliveryException, drain_batch
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
        await self.client.close()

    async def process(self) -> Status:
        await self._maybe_reset()
        return await drain_batch(self.channel, self.counter, self.batch_size, self._deliver)

    async def _deliver(self, records: list[Event]) -> None:
        c = self.counter.counters
        created = self.client.connections_created
        try:
            status = await self.client.call("appendBatch", {},
                                            encoded=encode_event_array(records))
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
