"""The syslog sources: ``syslogtcp``, ``syslogudp`` and ``multiport_syslogtcp``.

Parsing is ``agent.sources.syslog_parse`` (Flume's two parsers, one per source family). Each
TCP read becomes one channel transaction (``multiport_syslogtcp``: at most ``batchSize``
events each). When the channels refuse, a TCP connection holds its events and stops reading
until they are accepted, so the sender is slowed down instead of losing data; Flume drops
them. UDP cannot push back: a refused datagram is counted (``ChannelWriteFail``) and lost,
as in Flume. A message still buffered when a TCP peer closes is delivered (Flume drops it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent.components import Clock, SystemClock
from agent.config.converters import ConversionError, charset, integer
from agent.config.issues import IssueCode
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sources.listener import (
    LINE_LIMIT_KEYS,
    Delivery,
    LineConnection,
    ListeningSource,
    Peer,
    TcpServer,
    UdpServer,
    line_limits,
)
from agent.sources.syslog_parse import (
    DEFAULT_EVENT_SIZE,
    MIN_EVENT_SIZE,
    SyslogFramer,
    SyslogOptions,
    datagram_message,
    fields_to_keep,
    multiport_event,
    parse_syslog,
)
from agent.tls import SERVER_KEYS, TlsConfigError, server_context, server_rules
from protocol.event import Event
from protocol.limits import ListenerLimits

if TYPE_CHECKING:
    import ssl

    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext


UDP_MAX_SIZE = 1 << 16


_PORT = integer(0, 65535)
_COMMON_KEYS = (
    Key("host", default="0.0.0.0"),
    Key("keepFields", default="none"),
    Key("clientIPHeader"),
    Key("clientHostnameHeader"),
)


def _ports(raw: str) -> list[int]:
    ports = [_PORT(word) for word in raw.split()]
    if not ports:
        raise ConversionError(IssueCode.BAD_VALUE, "lists no port")
    return ports


def _multiport_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    problems = server_rules(settings, ctx)
    for port in settings["charset.port"]:
        if not port.isdigit() or int(port) > 65535:
            problems.append(Problem(IssueCode.BAD_KEY, f"charset.port.{port}: not a port "
                                    "number", f"charset.port.{port}"))
    return problems


def _tls(spec: ComponentSpec) -> ssl.SSLContext | None:
    try:
        return server_context(spec.settings)
    except TlsConfigError as exc:
        raise ComponentConfigError(spec, str(exc)) from exc


class _ClientHeaders:
    """``clientIPHeader`` / ``clientHostnameHeader`` values for one peer."""

    def __init__(self, ip_header: str | None, hostname_header: str | None) -> None:
        self.ip_header = ip_header or None
        self.hostname_header = hostname_header or None

    async def for_peer(self, peer: Peer) -> dict[str, str]:
        headers = {}
        if self.ip_header:
            headers[self.ip_header] = peer.ip
        if self.hostname_header:
            headers[self.hostname_header] = await peer.hostname()
        return headers


def _add(events: list[Event], extra: dict[str, str]) -> list[Event]:
    if extra:
        for event in events:
            event.headers.update(extra)
    return events


class _TcpSyslogBase(ListeningSource[TcpServer]):
    """One framer per connection; parsed events go out in per-read batches."""

    batch_size = 1 << 30

    def __init__(self, name: str, host: str | None, ports: Sequence[int], *, event_size: int,
                 client: _ClientHeaders, ssl: ssl.SSLContext | None, clock: Clock,
                 limits: ListenerLimits | None, counter: CounterGroup | None) -> None:
        super().__init__(name)
        self.event_size = event_size
        self.client = client
        self.clock = clock
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.server = TcpServer(f"source {name}", host, ports, self._serve, ssl=ssl,
                                limits=limits)
        self.delivery = Delivery(name, self.counter)

    @property
    def ports(self) -> list[int]:
        return self.server.ports

    async def stop(self) -> None:
        self.delivery.stopping.set()
        await self.server.stop()

    def _events(self, messages: list[tuple[bytes, bool]], local_port: int) -> list[Event]:
        raise NotImplementedError

    async def _serve(self, conn: LineConnection) -> None:
        counters = self.counter.counters
        counters["OpenConnectionCount"] = self.server.open_connections
        framer = SyslogFramer(self.event_size)
        extra = await self.client.for_peer(conn.peer)
        try:
            while True:
                data = await conn.read()
                messages = framer.feed(data) if data else conn.last(framer.finish)
                conn.holding(framer.buffered, framer.buffered > 0, bool(messages))
                if messages:
                    events = _add(self._events(messages, conn.local_port), extra)
                    async with conn.delivering():
                        for start in range(0, len(events), self.batch_size):
                            batch = events[start:start + self.batch_size]
                            if not await self.delivery.until_accepted(batch, conn.peer):
                                return
                if not data:
                    return
        finally:
            counters["OpenConnectionCount"] = self.server.open_connections - 1


class SyslogTcpSource(_TcpSyslogBase):
    """``syslogtcp``: Flume's SyslogUtils headers; ``eventSize`` cuts long messages."""

    SCHEMA = Schema(
        keys=(*_COMMON_KEYS, Key("port", _PORT, required=True),
              Key("eventSize", integer(1), DEFAULT_EVENT_SIZE), *SERVER_KEYS, *LINE_LIMIT_KEYS),
        rules=server_rules,
        listen=("host", "port"),
    )

    def __init__(self, name: str, host: str | None, port: int, *,
                 event_size: int = DEFAULT_EVENT_SIZE, keep_fields: str | None = "none",
                 client_ip_header: str | None = None, client_hostname_header: str | None = None,
                 ssl: ssl.SSLContext | None = None, clock: Clock | None = None,
                 limits: ListenerLimits | None = None,
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name, host, [port], event_size=max(event_size, MIN_EVENT_SIZE),
                         client=_ClientHeaders(client_ip_header, client_hostname_header),
                         ssl=ssl, clock=clock or SystemClock(), limits=limits, counter=counter)
        self.options = SyslogOptions(keep=fields_to_keep(keep_fields))

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> SyslogTcpSource:
        s = spec.settings
        return cls(spec.name, s["host"], s["port"], event_size=s["eventSize"],
                   keep_fields=s["keepFields"], client_ip_header=s["clientIPHeader"],
                   client_hostname_header=s["clientHostnameHeader"], ssl=_tls(spec),
                   clock=ctx.clock, limits=line_limits(s), counter=ctx.metrics.source(spec.name))

    def _events(self, messages: list[tuple[bytes, bool]], local_port: int) -> list[Event]:
        now_ms = int(self.clock.time() * 1000)
        options = self.options
        return [parse_syslog(raw, cut, now_ms, options) for raw, cut in messages]


class MultiportSyslogTcpSource(_TcpSyslogBase):
    """``multiport_syslogtcp``: Flume's SyslogParser headers, a charset per port,
    ``portHeader``, and batches of at most ``batchSize`` events."""

    SCHEMA = Schema(
        keys=(
            *_COMMON_KEYS,
            Key("ports", _ports, required=True),
            Key("eventSize", integer(1), DEFAULT_EVENT_SIZE),
            Key("portHeader"),
            Key("charset.default", charset, "UTF-8"),
            Key("batchSize", integer(1), 100),
            Key("readBufferBytes", integer(1), 1024, ignored="a Mina buffer size"),
            Key("numProcessors", integer(1), None, ignored="Mina threads: one asyncio loop"),
            *SERVER_KEYS,
            *LINE_LIMIT_KEYS,
        ),
        families=(KeyFamily("charset.port", charset),),
        rules=_multiport_rules,
        batch_key="batchSize",
    )

    def __init__(self, name: str, host: str | None, ports: Sequence[int], *,
                 event_size: int = DEFAULT_EVENT_SIZE, keep_fields: str | None = "none",
                 batch_size: int = 100, charset: str = "utf-8",
                 port_charsets: dict[int, str] | None = None, port_header: str | None = None,
                 client_ip_header: str | None = None, client_hostname_header: str | None = None,
                 ssl: ssl.SSLContext | None = None, clock: Clock | None = None,
                 limits: ListenerLimits | None = None,
                 counter: CounterGroup | None = None) -> None:
        if not ports:
            raise ValueError(f"source {name}: 'ports' lists no port")
        if event_size < 1 or batch_size < 1:
            raise ValueError(f"source {name}: eventSize and batchSize must be >= 1")
        super().__init__(name, host, ports, event_size=event_size,
                         client=_ClientHeaders(client_ip_header, client_hostname_header),
                         ssl=ssl, clock=clock or SystemClock(), limits=limits, counter=counter)
        for cs in (charset, *(port_charsets or {}).values()):
            "".encode(cs)  # an unknown charset fails at configuration time
        self.batch_size = batch_size
        self.keep = fields_to_keep(keep_fields)
        self.charset = charset
        self.port_charsets = dict(port_charsets or {})
        self.port_header = port_header or None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> MultiportSyslogTcpSource:
        s = spec.settings
        port_charsets = {int(port): cs for port, cs in s["charset.port"].items()}
        return cls(spec.name, s["host"], s["ports"], event_size=s["eventSize"],
                   keep_fields=s["keepFields"], batch_size=s["batchSize"],
                   charset=s["charset.default"], port_charsets=port_charsets,
                   port_header=s["portHeader"], client_ip_header=s["clientIPHeader"],
                   client_hostname_header=s["clientHostnameHeader"], ssl=_tls(spec),
                   clock=ctx.clock, limits=line_limits(s), counter=ctx.metrics.source(spec.name))

    def _events(self, messages: list[tuple[bytes, bool]], local_port: int) -> list[Event]:
        now_ms = int(self.clock.time() * 1000)
        charset = self.port_charsets.get(local_port, self.charset)
        events = []
        failed = 0
        for raw, cut in messages:
            event, bad = multiport_event(raw, cut, now_ms, self.keep, charset)
            failed += bad
            if self.port_header:
                event.headers[self.port_header] = str(local_port)
            events.append(event)
        if failed:
            self.counter.counters["EventReadFail"] += failed
        return events


class SyslogUdpSource(ListeningSource[UdpServer]):
    """``syslogudp``: one datagram, one event (up to 64 KiB)."""

    SCHEMA = Schema(keys=(*_COMMON_KEYS, Key("port", _PORT, required=True)))

    def __init__(self, name: str, host: str | None, port: int, *,
                 keep_fields: str | None = "none", client_ip_header: str | None = None,
                 client_hostname_header: str | None = None, clock: Clock | None = None,
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        self.options = SyslogOptions(keep=fields_to_keep(keep_fields))
        self.client = _ClientHeaders(client_ip_header, client_hostname_header)
        self.clock = clock or SystemClock()
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.server = UdpServer(f"source {name}", host, port, self._datagram)
        self.delivery = Delivery(name, self.counter)
        self._names: dict[str, Peer] = {}
        self._lookups: set[asyncio.Task[None]] = set()

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> SyslogUdpSource:
        s = spec.settings
        return cls(spec.name, s["host"], s["port"], keep_fields=s["keepFields"],
                   client_ip_header=s["clientIPHeader"],
                   client_hostname_header=s["clientHostnameHeader"], clock=ctx.clock,
                   counter=ctx.metrics.source(spec.name))

    async def stop(self) -> None:
        await super().stop()
        for task in list(self._lookups):
            task.cancel()
        await asyncio.gather(*self._lookups, return_exceptions=True)

    def _datagram(self, data: bytes, addr: tuple[object, ...]) -> None:
        message = datagram_message(data[:UDP_MAX_SIZE])
        if not message:
            return
        event = parse_syslog(message, False, int(self.clock.time() * 1000), self.options)
        if self.client.ip_header:
            event.headers[self.client.ip_header] = str(addr[0])
        if self.client.hostname_header:
            self._with_hostname(event, addr, self._deliver)
        else:
            self._deliver(event, addr)

    def _with_hostname(self, event: Event, addr: tuple[object, ...],
                       then: Callable[[Event, tuple[object, ...]], None]) -> None:
        """Add the sender's name (looked up once per address, off the receive path)."""
        key = str(addr[0])
        peer = self._names.get(key)
        if peer is None:
            if len(self._names) > 4096:
                self._names.clear()
            peer = self._names[key] = Peer(addr)

        async def lookup() -> None:
            assert self.client.hostname_header is not None
            event.headers[self.client.hostname_header] = await peer.hostname()
            then(event, addr)

        task = asyncio.get_running_loop().create_task(lookup())
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    def _deliver(self, event: Event, addr: tuple[object, ...]) -> None:
        if not self.delivery.try_once([event]):
            self.server.warn_once("refused", f"channels refused a datagram from {addr[0]}:"
                                             f"{addr[1]}: {self.delivery.last_error}")
