"""The netcat sources: one event per line from TCP connections (``netcat``) or UDP datagrams
(``netcatudp``), as ``nc -k -l`` would print them.

TCP: the lines of each read go to the channels in one transaction; with ``ack-every-event``
each accepted line is answered ``OK``, and a refused batch is answered ``FAILED: <reason>`` per
line (as Flume does; the client decides whether to resend). A line longer than
``max-line-length`` chars (newline included) ends the connection with Flume's ``FAILED: Event
exceeds the maximum length`` reply; undecodable input in ``encoding`` ends it too.

UDP: each line of a datagram is an event (Flume keeps only the first line and drops the rest),
with the sender as ``/ip:port`` in ``remoteAddressHeader`` if set. A refused datagram is lost
(``ChannelWriteFail``): UDP has no way to push back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.config.converters import charset, integer, to_bool
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.sources.listener import (
    LINE_LIMIT_KEYS,
    Delivery,
    LineConnection,
    ListeningSource,
    TcpServer,
    UdpServer,
    line_limits,
)
from agent.sources.netcat_lines import (
    DEFAULT_MAX_LINE_LENGTH,
    NetcatLines,
    datagram_lines,
    too_long_reply,
)
from protocol.event import events_with
from protocol.limits import ListenerLimits

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext


OK = b"OK\n"


class NetcatSource(ListeningSource[TcpServer]):
    SCHEMA = Schema(
        keys=(
            Key("bind", required=True),
            Key("port", integer(0, 65535), required=True),
            Key("max-line-length", integer(1), DEFAULT_MAX_LINE_LENGTH),
            Key("ack-every-event", to_bool, True),
            Key("encoding", charset, "utf-8"),
            *LINE_LIMIT_KEYS,
        ),
        listen=("bind", "port"),
    )

    def __init__(self, name: str, bind: str, port: int, *,
                 max_line_length: int = DEFAULT_MAX_LINE_LENGTH, ack_every_event: bool = True,
                 encoding: str = "utf-8", limits: ListenerLimits | None = None,
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        if max_line_length < 1:
            raise ValueError(f"source {name}: max-line-length must be >= 1")
        "".encode(encoding)  # unknown encodings fail here, at configuration time
        self.max_line_length = max_line_length
        self.ack_every_event = ack_every_event
        self.encoding = encoding
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.server = TcpServer(f"source {name}", bind, [port], self._serve, limits=limits)
        self.delivery = Delivery(name, self.counter)

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> NetcatSource:
        s = spec.settings
        return cls(spec.name, s["bind"], s["port"], max_line_length=s["max-line-length"],
                   ack_every_event=s["ack-every-event"], encoding=s["encoding"],
                   limits=line_limits(s), counter=ctx.metrics.source(spec.name))

    async def _serve(self, conn: LineConnection) -> None:
        counters = self.counter.counters
        counters["OpenConnectionCount"] = self.server.open_connections
        lines = NetcatLines(self.max_line_length, self.encoding)
        writer = conn.writer
        try:
            while True:
                data = await conn.read()
                try:
                    batch = lines.feed(data) if data else conn.last(lines.finish)
                except UnicodeDecodeError as exc:
                    counters["EventReadFail"] += 1
                    conn.warn_once("encoding", f"{conn.peer} sent input that is not "
                                               f"{self.encoding} ({exc}); closing")
                    return
                conn.holding(lines.pending, bool(lines.pending), bool(batch))
                if batch:
                    writer.write(self._deliver(batch, conn))
                if lines.overflow:
                    counters["EventReadFail"] += 1
                    conn.warn_once("max-line-length", f"{conn.peer} sent a line longer than "
                                                      f"max-line-length {self.max_line_length}; "
                                                      "closing")
                    writer.write(too_long_reply(self.max_line_length))
                if batch or lines.overflow:
                    await writer.drain()
                if not data or lines.overflow:
                    return
        finally:
            counters["OpenConnectionCount"] = self.server.open_connections - 1

    def _deliver(self, bodies: list[bytes], conn: LineConnection) -> bytes:
        if self.delivery.try_once(events_with({}, bodies)):
            return OK * len(bodies) if self.ack_every_event else b""
        reason = str(self.delivery.last_error).replace("\n", " ")
        conn.warn_once("refused", f"channels refused {len(bodies)} line(s) from {conn.peer}: "
                                  f"{reason}")
        return f"FAILED: {reason}\n".encode() * len(bodies)


class NetcatUdpSource(ListeningSource[UdpServer]):
    SCHEMA = Schema(
        keys=(
            Key("bind", default="0.0.0.0"),
            Key("port", integer(0, 65535), required=True),
            Key("remoteAddressHeader"),
            Key("remoteAddress"),  # the key Flume's code reads (its guide documents the other)
        ),
    )

    def __init__(self, name: str, bind: str | None, port: int, *,
                 remote_address_header: str | None = None,
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        self.remote_address_header = remote_address_header or None
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.server = UdpServer(f"source {name}", bind, port, self._datagram)
        self.delivery = Delivery(name, self.counter)

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> NetcatUdpSource:
        s = spec.settings
        header = s["remoteAddressHeader"] or s["remoteAddress"]
        return cls(spec.name, s["bind"], s["port"], remote_address_header=header,
                   counter=ctx.metrics.source(spec.name))

    def _datagram(self, data: bytes, addr: tuple[object, ...]) -> None:
        headers = {}
        if self.remote_address_header:
            headers[self.remote_address_header] = f"/{addr[0]}:{addr[1]}"
        events = events_with(headers, datagram_lines(data))
        if not self.delivery.try_once(events):
            self.server.warn_once("refused", f"channels refused a datagram of {len(events)} "
                                             f"line(s) from {addr[0]}:{addr[1]}: "
                                             f"{self.delivery.last_error}")
