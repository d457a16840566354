"""What the line-oriented network sources share: a TCP server, a UDP endpoint, peer names,
and putting a batch on the channels until they accept it.

One asyncio task per connection; a connection that misbehaves is closed with a logged reason
that names the peer, never the server. ``stop()`` closes the listening socket first, gives open
connections a short grace to finish what they were delivering, then cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_lib
from collections.abc import Awaitable, Callable, Sequence

from agent.components import ChannelException, ChannelProcessor
from agent.metrics import CounterGroup
from protocol.event import Event

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Peer"], Awaitable[None]]


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


class TcpServer:
    """Accepts TCP (optionally TLS) connections on each of ``ports`` and runs ``handler``."""

    def __init__(self, name: str, host: str | None, ports: Sequence[int], handler: Handler,
                 *, ssl: ssl_lib.SSLContext | None = None, stop_grace: float = 1.0) -> None:
        self.name = name
        self.host = host or None  # None: every interface
        self.requested_ports = list(ports)
        self.handler = handler
        self.ssl = ssl
        self.stop_grace = stop_grace
        self.ports: list[int] = []
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def open_connections(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        try:
            for port in self.requested_ports:
                server = await asyncio.start_server(
                    self._accept, self.host, port, ssl=self.ssl, reuse_address=True,
                    limit=READ_SIZE)
                self._servers.append(server)
                self.ports.append(server.sockets[0].getsockname()[1])
        except OSError as exc:
            await self.stop()
            raise OSError(exc.errno, f"{self.name}: cannot listen on "
                                     f"{self.host or '0.0.0.0'}:{port}: {exc.strerror}") from exc

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = Peer(writer.get_extra_info("peername"))
        try:
            await self.handler(reader, writer, peer)
        except (ConnectionError, ssl_lib.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection from %s ended: %s", self.name, peer, exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: connection from %s failed; closing it", self.name, peer)
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.stop_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class UdpServer(asyncio.DatagramProtocol):
    """A UDP endpoint calling ``on_datagram(data, peer)`` for every datagram."""

    def __init__(self, name: str, host: str | None, port: int,
                 on_datagram: Callable[[bytes, tuple[object, ...]], None]) -> None:
        self.name = name
        self.host = host or "0.0.0.0"
        self.requested_port = port
        self.on_datagram = on_datagram
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, local_addr=(self.host, self.requested_port), reuse_port=False)
        except OSError as exc:
            raise OSError(exc.errno, f"{self.name}: cannot listen on UDP "
                                     f"{self.host}:{self.requested_port}: {exc.strerror}") from exc
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        try:
            self.on_datagram(data, addr)
        except Exception:
            log.exception("%s: datagram from %s failed", self.name, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("%s: UDP error: %s", self.name, exc)

    async def stop(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


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
