"""What the line-oriented network sources share: TCP listeners under the wire layer's
limits, a UDP endpoint, peer names, and putting a batch on the channels until they accept it.

One asyncio task per connection; a connection that misbehaves or goes past a limit is closed
with a logged reason that names the peer, never the server. ``stop()`` lets connections in the
middle of a delivery finish it (briefly), then closes the listening sockets and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_lib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from time import monotonic as time_monotonic
from typing import Any, Generic, TypeVar

from agent.components import ChannelException, ChannelProcessor, EventDrivenSource
from agent.config.limits import LISTENER_KEYS
from agent.metrics import CounterGroup
from protocol.event import Event
from protocol.limits import ListenerLimits, LogLimiter
from protocol.transport import LOG_INTERVAL, Listener
from protocol.transport import Peer as Link

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
# A UDP socket's receive buffer: the kernel's default (208 KiB, a few hundred datagrams)
# overflows whenever the loop is busy for a few milliseconds; 4 MiB holds thousands.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
UDP_MAX_DATAGRAM = 65535
READ_BURST = 256  # datagrams read per wake-up, at most: then the loop's other work goes on
T = TypeVar("T")


class Peer:
    """The remote end of a connection or datagram: ``ip``, ``port``, and a name on demand."""

    __slots__ = ("_hostname", "ip", "port")

    def __init__(self, address: tuple[object, ...] | None) -> None:
        self.ip = str(address[0]) if address else ""
        self.port = int(address[1]) if address and len(address) > 1 else 0  # type: ignore[call-overload]
        self._hostname: str | None = None

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

    async def hostname(self) -> str:
        """Reverse lookup, once per peer (Flume's ``clientHostnameHeader``); the IP if none."""
        if self._hostname is None:
            loop = asyncio.get_running_loop()
            try:
                name, _ = await loop.getnameinfo((self.ip, self.port), socket.NI_NAMEREQD)
            except (OSError, UnicodeError):
                name = self.ip
            self._hostname = name
        return self._hostname


# The listener limits that mean something for lines: connections, input held across them,
# idle connections, lines begun and not finished (the shared declaration: defaults, units).
LINE_LIMIT_KEYS = tuple(key for key in LISTENER_KEYS if key.name in (
    "max-connections", "max-buffered-bytes", "idle-timeout", "frame-timeout"))


def line_limits(settings: Mapping[str, Any]) -> ListenerLimits:
    """A line source's listener limits from its ``LINE_LIMIT_KEYS``. A line is bounded by
    its source's own length limit, so the frame limit just follows the buffered budget."""
    limits = replace(ListenerLimits(), max_frame_bytes=1).with_settings(
        {key.name: settings[key.name] for key in LINE_LIMIT_KEYS})
    return replace(limits, max_frame_bytes=limits.max_buffered_bytes)


class LineConnection:
    """One accepted connection of a line source: reads, and tells the listener what the
    connection holds and whether a line is unfinished (for the buffered-input budget and the
    frame timeout). ``peer`` names the client (IP, port, host name on demand)."""

    def __init__(self, server: TcpServer, link: Link, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.link = link
        self.reader = reader
        self.writer = writer
        self.peer = Peer(writer.get_extra_info("peername"))
        sockname = writer.get_extra_info("sockname")
        self.local_port = int(sockname[1]) if sockname else 0

    def warn_once(self, key: str, message: str) -> None:
        """A warning about this peer, at most one line per ``key`` per interval (with a
        count of the held-back ones): a flood of bad clients costs a few lines a minute."""
        self.link.listener.log_once(key, logging.WARNING, message)

    def last(self, finish: Callable[[], list[T]]) -> list[T]:
        """At end of input: what ``finish`` makes of the held rest (a last line without its
        newline), unless the listener cut the connection off, when the rest is dropped."""
        return [] if self.link.cut is not None else finish()

    async def read(self) -> bytes:
        data = await self.reader.read(READ_SIZE)
        self.link.activity.progressed(self.server.clock())
        return data

    def holding(self, nbytes: int, unfinished: bool, completed: bool) -> None:
        """After a read: ``nbytes`` held (an unfinished line, events not yet delivered);
        raises LimitExceeded if the listener's budget closes this connection."""
        self.link.activity.input_state(self.server.clock(), unfinished, completed)
        self.link.hold(nbytes)

    @contextlib.asynccontextmanager
    async def delivering(self) -> AsyncIterator[None]:
        """While a batch waits for the channels: not idle (the wait is ours, not the
        peer's), and stop() lets the attempt finish."""
        self.link.activity.busy += 1
        self.server.delivering += 1
        try:
            yield
        finally:
            self.link.activity.busy -= 1
            self.server.delivering -= 1
            self.link.activity.progressed(self.server.clock())


class TcpServer:
    """Line-oriented TCP (optionally TLS) listeners on ``ports`` under ``limits``, built on
    the wire layer's ``Listener`` (connection cap, buffered-input budget, idle and
    unfinished-line timeouts, rate-limited logs); ``handler`` runs per connection."""

    def __init__(self, name: str, host: str | None, ports: Sequence[int],
                 handler: Callable[[LineConnection], Awaitable[None]], *,
                 ssl: ssl_lib.SSLContext | None = None, limits: ListenerLimits | None = None,
                 clock: Callable[[], float] = time_monotonic, stop_grace: float = 1.0) -> None:
        self.name = name
        self.handler = handler
        self.clock = clock
        self.stop_grace = stop_grace
        self.delivering = 0
        limits = limits or line_limits({})
        self.listeners = [Listener(name, self._serve, host or "", port, limits=limits,
                                   ssl=ssl, clock=clock) for port in ports]

    @property
    def port(self) -> int:
        return self.listeners[0].port

    @property
    def ports(self) -> list[int]:
        return [listener.port for listener in self.listeners]

    @property
    def open_connections(self) -> int:
        return sum(listener.open_connections for listener in self.listeners)

    async def start(self) -> None:
        started: list[Listener] = []
        try:
            for listener in self.listeners:
                await listener.start()
                started.append(listener)
        except OSError as exc:
            for listener in started:
                await listener.stop()
            raise OSError(exc.errno, f"{self.name}: cannot listen on "
                                     f"{listener.host or '0.0.0.0'}:{listener.port}: "
                                     f"{exc.strerror}") from exc

    async def stop(self) -> None:
        """Connections in the middle of a delivery get ``stop_grace`` s to finish it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_grace
        while self.delivering and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for listener in self.listeners:
            await listener.stop()

    async def _serve(self, link: Link, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        await self.handler(LineConnection(self, link, reader, writer))


class UdpServer:
    """A UDP endpoint calling ``on_datagram(data, peer)`` for every datagram.

    It reads the socket itself rather than through asyncio's datagram transport, which reads
    one datagram per wake-up of the loop: here each wake-up reads what is waiting (up to
    ``READ_BURST``), and the socket's receive buffer is raised, so a burst is not dropped by
    the kernel while the loop does other work. Nothing is held per peer."""

    def __init__(self, name: str, host: str | None, port: int,
                 on_datagram: Callable[[bytes, tuple[object, ...]], None]) -> None:
        self.name = name
        self.host = host or "0.0.0.0"
        self.requested_port = port
        self.on_datagram = on_datagram
        self.port = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._logs = LogLimiter(LOG_INTERVAL)

    def warn_once(self, key: str, message: str) -> None:
        """At most one warning per ``key`` per interval (a full channel refuses every
        datagram: one line every 10 s with the count held back, not one per datagram)."""
        suppressed = self._logs.allow(key, time_monotonic())
        if suppressed is not None:
            log.warning("%s: %s%s", self.name, message, LogLimiter.suffix(suppressed))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(self.host, self.requested_port,
                                           type=socket.SOCK_DGRAM)
            family, _, proto, _, address = infos[0]
            sock = socket.socket(family, socket.SOCK_DGRAM, proto)
            try:
                sock.setblocking(False)
                with contextlib.suppress(OSError):  # capped by net.core.rmem_max
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
                sock.bind(address)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise OSError(exc.errno, f"{self.name}: cannot listen on UDP "
                                     f"{self.host}:{self.requested_port}: {exc.strerror}") from exc
        self._sock, self._loop = sock, loop
        self.port = sock.getsockname()[1]
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(READ_BURST):
            try:
                data, addr = sock.recvfrom(UDP_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors reported on the socket
                log.warning("%s: UDP error: %s", self.name, exc)
                return
            try:
                self.on_datagram(data, addr)
            except Exception:
                log.exception("%s: datagram from %s failed", self.name, addr)

    async def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()


class Delivery:
    """Puts batches on the channels; when they refuse, waits and tries the same batch again
    (the connection stops reading meanwhile, so TCP pushes back on the sender) until the
    channels accept it or the source stops."""

    def __init__(self, name: str, counter: CounterGroup, *, first_wait: float = 0.05,
                 max_wait: float = 1.0) -> None:
        self.name = name
        self.counter = counter
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.stopping = asyncio.Event()
        self.processor: ChannelProcessor | None = None

    def try_once(self, events: list[Event]) -> bool:
        """One attempt; counts Flume's source counters. False: the channels refused."""
        self._received(events)
        return self._attempt(events)

    def _received(self, events: list[Event]) -> None:
        counters = self.counter.counters
        counters["EventReceivedCount"] += len(events)
        counters["AppendBatchReceivedCount"] += 1

    def _attempt(self, events: list[Event]) -> bool:
        assert self.processor is not None, f"source {self.name} has no channel processor"
        counters = self.counter.counters
        try:
            self.processor.process_event_batch(events)
        except ChannelException as exc:
            counters["ChannelWriteFail"] += 1
            self.last_error = exc
            return False
        counters["EventAcceptedCount"] += len(events)
        counters["AppendBatchAcceptedCount"] += 1
        return True

    async def until_accepted(self, events: list[Event], peer: object) -> bool:
        """True once accepted; False if the source stopped first (the batch is lost)."""
        self._received(events)
        wait = self.first_wait
        while not self._attempt(events):
            if self.stopping.is_set():
                log.warning("source %s: stopping with %d event(s) from %s the channels "
                            "refused: %s", self.name, len(events), peer, self.last_error)
                return False
            if wait == self.first_wait:
                log.warning("source %s: channels refused %d event(s) from %s (%s); holding "
                            "them and retrying", self.name, len(events), peer, self.last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), wait)
            wait = min(wait * 2, self.max_wait)
        return True

    last_error: Exception | None = None


ServerT = TypeVar("ServerT", TcpServer, UdpServer)


class ListeningSource(EventDrivenSource, Generic[ServerT]):
    """A source that serves a ``TcpServer`` or ``UdpServer`` and hands what it reads to a
    ``Delivery``: subclasses set ``server`` and ``delivery`` in ``__init__``."""

    server: ServerT
    delivery: Delivery

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        self.delivery.processor = self.channel_processor
        self.delivery.stopping.clear()
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
