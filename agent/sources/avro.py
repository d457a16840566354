"""The Avro source: Flume's AvroSourceProtocol server, so Flume agents (and ours) can send here.

It answers ``OK`` only after the channel transaction committed and ``FAILED`` when a channel
refused (full, or a batch over transactionCapacity), exactly Flume's contract. As in Flume, a
single ``append`` whose failure is not a channel problem becomes an Avro system error, while
``appendBatch`` turns every failure into FAILED. ``threads`` is accepted for compatibility:
one asyncio loop serves every connection.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from agent.channels.durability import fsync_later
from agent.components import ChannelException, EventDrivenSource
from agent.config.converters import choice, integer, ip_filter_rules, to_bool
from agent.config.issues import IssueCode
from agent.config.limits import LISTENER_KEYS, limits_from, limits_rules
from agent.config.schema import Key, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sources.ipfilter import allowed
from agent.tls import SERVER_KEYS, TlsConfigError, server_context, server_rules
from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import Connection, RpcServer

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    problems = server_rules(settings, ctx) + limits_rules(settings, ctx)
    if settings["ipFilter"] and not settings["ipFilterRules"]:
        problems.append(
            Problem(IssueCode.MISSING_REQUIRED, "ipFilter = true needs 'ipFilterRules'", "ipFilter")
        )
    return problems


class AvroSource(EventDrivenSource):
    SCHEMA = Schema(
        keys=(
            Key("bind", required=True),
            Key("port", integer(0, 65535), required=True),
            Key("threads", integer(), None, ignored="one asyncio loop serves every connection"),
            Key("compression-type", choice("none", "deflate"), "none"),
            Key("compression-level", integer(-1, 9), 6),
            *SERVER_KEYS,
            Key("ipFilter", to_bool, False),
            Key("ipFilterRules", ip_filter_rules, None),
            *LISTENER_KEYS,
        ),
        rules=_rules,
        listen=("bind", "port"),
    )

    def __init__(self, name: str, server: RpcServer, counter: CounterGroup) -> None:
        super().__init__(name)
        self.server = server
        self.counter = counter
        server.handler = self._handle

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> AvroSource:
        s = spec.settings
        try:
            tls = server_context(s)
        except TlsConfigError as exc:
            raise ComponentConfigError(spec, str(exc)) from exc
        rules = s["ipFilterRules"] or []
        accept = None
        if s["ipFilter"]:
            by_name = any(kind.lower() == "name" for _, kind, _ in rules)

            def accept(ip: str) -> bool:
                return allowed(rules, ip, _hostname(ip) if by_name else None)
        server = RpcServer(
            AVRO_SOURCE_PROTOCOL, _unset_handler, s["bind"], s["port"],
            deflate=s["compression-type"] == "deflate",
            compression_level=s["compression-level"],
            ssl=tls, accept=accept, name=f"source {spec.name}",
            limits=limits_from(s), as_events=True,
        )
        return cls(spec.name, server, ctx.metrics.source(spec.name))

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    async def _handle(self, call: CallRequest, conn: Connection) -> Any:
        c = self.counter.counters
        c["OpenConnectionCount"] = self.server.open_connections
        if call.message == "appendBatch":
            events = call.params["events"]  # Event objects (as_events)
            c["AppendBatchReceivedCount"] += 1
            c["EventReceivedCount"] += len(events)
            try:
                with fsync_later():  # one fsync for this and whatever else commits meanwhile
                    self.channel_processor.process_event_batch(events)
                await self.channel_processor.synced()  # durable before OK
            except Exception as exc:
                log.warning("source %s: appendBatch of %d events from %s failed: %s",
                            self.name, len(events), conn.peer, exc)
                c["ChannelWriteFail"] += 1
                return "FAILED"
            c["AppendBatchAcceptedCount"] += 1
            c["EventAcceptedCount"] += len(events)
            return "OK"
        event = call.params["event"]
        c["AppendReceivedCount"] += 1
        c["EventReceivedCount"] += 1
        try:
            self.channel_processor.process_event(event)
        except ChannelException as exc:
            log.warning("source %s: append from %s failed: %s", self.name, conn.peer, exc)
            c["ChannelWriteFail"] += 1
            return "FAILED"
        c["AppendAcceptedCount"] += 1
        c["EventAcceptedCount"] += 1
        return "OK"


async def _unset_handler(call: CallRequest, conn: Connection) -> Any:
    raise RuntimeError("source not wired")


def _hostname(ip: str) -> str | None:
    try:
        return socket.gethostbyaddr(ip)[0]
    except OSError:
        return None
