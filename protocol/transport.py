"""The one asyncio layer of the wire protocol: listeners with limits, RpcServer and RpcClient.

Everything protocol-specific happens in :mod:`protocol.rpc`, and every limit is decided by
the pure objects of :mod:`protocol.limits`; this module only moves bytes and applies those
decisions. :class:`Listener` is what any server socket of the project is built on (the Avro
servers here, the metrics endpoint, the line sources; servers written as asyncio protocols,
such as aiohttp's, through :mod:`protocol.transport_protocol`): it admits connections under the
connection cap and the process's descriptor reserve, closes idle and stalled ones, keeps the
buffered-input budget, and logs each kind of refusal at most once per interval. A bad peer
loses its connection; every other client goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import ssl as ssl_lib
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from protocol.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from protocol.framing import DEFAULT_MAX_FRAME_BYTES
from protocol.limits import (
    Activity,
    ConnectionGuard,
    InputBudget,
    ListenerLimits,
    LogLimiter,
)
from protocol.rpc import CallRequest, ClientSession, ProtocolCache, ServerSession, default_cache
from protocol.schemas import Protocol

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# What a server's StreamReader may hold before it stops reading the socket (it pauses at
# twice this): small, because a connection we are not reading (backpressure) keeps it.
SERVER_READ_LIMIT = 64 * 1024
LOG_INTERVAL = 10.0
INFLATE_STEP = 1024 * 1024  # deflate input inflated per turn of the loop, at most
ACCEPT_BACKLOG = 128

Clock = Callable[[], float]

_process_guard: ConnectionGuard | None = None


def process_guard() -> ConnectionGuard:
    """The guard every listener of this process shares, sized from RLIMIT_NOFILE."""
    global _process_guard
    if _process_guard is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        _process_guard = ConnectionGuard(soft if soft != resource.RLIM_INFINITY else 1 << 20)
    return _process_guard


class RpcError(Exception):
    """The peer answered a call with an error (Avro system error string)."""


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive (idle 30 s, then 3 probes 10 s apart): a long poll on a connection
    whose peer vanished without a FIN would otherwise wait forever."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class Connection:
    """What a server-side handler knows about the connection a call came on."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._on_close: list[Callable[[], None]] = []
        self.closed = False

    def on_close(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when the connection ends (e.g. roll back what it held open), even
        while a call on it is still being handled. Returns a function that cancels it."""
        if self.closed:
            callback()
            return lambda: None
        self._on_close.append(callback)

        def cancel() -> None:
            with contextlib.suppress(ValueError):
                self._on_close.remove(callback)

        return cancel

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        callbacks, self._on_close = self._on_close, []
        for cb in reversed(callbacks):  # newest first, like undoing: rollbacks keep order
            try:
                cb()
            except Exception:
                log.exception("close callback failed for %s", self.peer)


class Peer(Connection):
    """One accepted connection as its listener sees it: what it holds of the input budget,
    its activity for the timeouts, and how to cut it off."""

    def __init__(self, listener: Listener, writer: asyncio.StreamWriter | None, name: str,
                 transport: asyncio.WriteTransport | None = None) -> None:
        super().__init__(name)
        self.listener = listener
        self.writer = writer
        if transport is None:
            assert writer is not None
            transport = writer.transport
        self.transport = transport  # the writer's, or a protocol's (ProtocolListener)
        self.activity = Activity(listener.clock())
        self.queued_cost = 0  # decoded calls read ahead of their handling, in bytes
        self.cut: tuple[str, str] | None = None  # (limit key, reason) once cut off
        self.on_cut: Callable[[LimitExceeded], None] | None = None  # drops held input

    def hold(self, nbytes: int) -> None:
        """Record the input this connection holds; raises LimitExceeded if the listener's
        budget then closes this very connection (others it closes are cut off)."""
        for victim in self.listener.budget.hold(self, nbytes):
            reason = (f"the listener's input buffers are full ({self.listener.budget.limit} "
                      f"bytes, max-buffered-bytes) and this connection holds the most")
            if victim is self:
                raise LimitExceeded("max-buffered-bytes", reason)
            assert isinstance(victim, Peer)
            victim.cut_off("max-buffered-bytes", reason)

    def cut_off(self, key: str, reason: str) -> None:
        """Close this connection for going past a limit (logged once its task ends)."""
        if self.cut is None:
            self.cut = (key, reason)
        self.listener.budget.release(self)
        if self.on_cut is not None:
            self.on_cut(LimitExceeded(key, reason))
        transport = self.transport
        if transport.get_write_buffer_size():  # replies the peer is not reading: drop them
            transport.abort()
        else:  # a clean close: replies already sent stay valid
            transport.close()


Serve = Callable[[Peer, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Listener:
    """A TCP (or TLS) server socket under a :class:`ListenerLimits`.

    ``serve(peer, reader, writer)`` runs per admitted connection. ``shared``: whether its
    connections count against the process-wide ceiling (see ConnectionGuard); ``accept``
    filters peers by IP before anything else. ``evict_idle``: when full, close the
    connection idle the longest to admit the new one (for one-request endpoints such as
    /metrics, which a handful of silent clients could otherwise block) instead of refusing.

    It accepts connections itself, one at a time, and decides on each before asyncio builds
    anything for it: a refused socket is closed at once, so a flood of connections never
    holds more descriptors than the admitted ones plus one (asyncio's own server accepts up
    to 100 before its callback can look at any, and closes refused ones a loop turn later).
    """

    def __init__(
        self,
        name: str,
        serve: Serve,
        host: str,
        port: int,
        *,
        limits: ListenerLimits | None = None,
        ssl: ssl_lib.SSLContext | None = None,
        accept: Callable[[str], bool] | None = None,
        guard: ConnectionGuard | None = None,
        shared: bool = True,
        evict_idle: bool = False,
        clock: Clock = time.monotonic,
        read_limit: int = SERVER_READ_LIMIT,
    ) -> None:
        self.name = name
        self.serve = serve
        self.host = host
        self.port = port
        self.limits = limits or ListenerLimits()
        self.ssl = ssl
        self.accept = accept
        self.guard = guard
        self.shared = shared
        self.evict_idle = evict_idle
        self.clock = clock
        self.read_limit = read_limit
        self.budget = InputBudget(self.limits.max_buffered_bytes)
        self.logs = LogLimiter(LOG_INTERVAL)
        self.peers: set[Peer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: list[socket.socket] = []
        self._loops: list[asyncio.Task[None]] = []

    @property
    def open_connections(self) -> int:
        return len(self.peers)

    async def start(self) -> None:
        if self.guard is None:
            self.guard = process_guard()
        self._sockets = await _listening_sockets(self.host, self.port)
        self.port = self._sockets[0].getsockname()[1]
        self._loops = [asyncio.create_task(self._accept_loop(s)) for s in self._sockets]
        timeouts = [t for t in (self.limits.idle_timeout, self.limits.frame_timeout) if t]
        if timeouts:
            interval = min(max(min(timeouts) / 4, 0.05), 5.0)
            self._loops.append(asyncio.create_task(self._sweep_every(interval)))

    async def stop(self) -> None:
        if not self._sockets:
            return
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sock in self._sockets:
            sock.close()
        self._sockets, self._loops = [], []
        for peer in list(self.peers):
            peer.transport.abort()  # reads end even if a cancellation gets swallowed
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def sweep(self) -> int:
        """Close every connection whose idle or frame timeout has passed; how many."""
        now = self.clock()
        closed = 0
        for peer in list(self.peers):
            expired = peer.activity.expired(now, self.limits)
            if expired is not None:
                peer.cut_off(*expired)
                closed += 1
        return closed

    async def _sweep_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def log_once(self, key: str, level: int, message: str) -> None:
        """Log ``message`` unless a line of this ``key`` went out less than LOG_INTERVAL ago."""
        suppressed = self.logs.allow(key, self.clock())
        if suppressed is not None:
            log.log(level, "%s: %s%s", self.name, message, LogLimiter.suffix(suppressed))

    def _forget(self, peer: Peer) -> None:
        """Give back what ``peer`` counted for (once, however it ends)."""
        if peer in self.peers:
            self.peers.discard(peer)
            assert self.guard is not None
            self.guard.release(self.name, self.shared)
        self.budget.release(peer)

    def _evict_oldest_idle(self) -> bool:
        idle = [p for p in self.peers if not p.activity.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda p: p.activity.last)
        oldest.cut_off("max-connections", "the oldest idle connection, closed to make room "
                                          "for a new one (max-connections)")
        self._forget(oldest)
        return True

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and the like: the reserve was used up elsewhere
                self.log_once("accept", logging.ERROR, f"cannot accept connections: {exc}")
                await asyncio.sleep(0.1)
                continue
            name = _address_name(address)
            refusal = self._admit(name)
            if refusal is not None:
                self.log_once(refusal[0], logging.WARNING,
                              f"refusing the connection from {name}: {refusal[1]}")
                conn.close()  # now, not a loop turn later: the descriptor is free at once
                continue
            task = asyncio.create_task(self._connected(conn, name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _admit(self, name: str) -> tuple[str, str] | None:
        """None if the connection from ``name`` is taken in (and counted), else the log
        key and the reason it is not."""
        assert self.guard is not None
        if self.accept is not None and not self.accept(name.rsplit(":", 1)[0]):
            return "ipFilter", "refused by ipFilter"
        refusal = self.guard.admit(self.name, self.limits.max_connections, self.shared)
        if refusal is not None and self.evict_idle and self._evict_oldest_idle():
            refusal = self.guard.admit(self.name, self.limits.max_connections, self.shared)
        return None if refusal is None else ("max-connections", refusal)

    async def _connected(self, conn: socket.socket, name: str) -> None:
        assert self.guard is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.read_limit)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn,
                                                              ssl=self.ssl)
        except (OSError, asyncio.CancelledError) as exc:  # a failed TLS handshake, or stop()
            self.guard.release(self.name, self.shared)
            conn.close()
            if not isinstance(exc, asyncio.CancelledError):
                self.log_once("lost", logging.INFO, f"connection from {name} lost: {exc!r}")
            return
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        peer = Peer(self, writer, name)
        self.peers.add(peer)
        try:
            await self.serve(peer, reader, writer)
        except LimitExceeded as exc:
            peer.cut = peer.cut or (exc.limit, str(exc))
        except RemoteProtocolError as exc:
            self.log_once("protocol", logging.WARNING,
                          f"closing the connection from {peer.peer}: {exc}")
        except (OSError, asyncio.IncompleteReadError) as exc:  # incl. ETIMEDOUT, TLS errors
            if peer.cut is None:
                self.log_once("lost", logging.INFO,
                              f"connection from {peer.peer} lost: {exc!r}")
        except asyncio.CancelledError:
            log.debug("%s: connection from %s closed by stop()", self.name, peer.peer)
        finally:
            if peer.cut is not None:
                key, reason = peer.cut
                self.log_once(key, logging.WARNING,
                              f"closing the connection from {peer.peer}: {reason}")
            self._forget(peer)
            peer._close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host:port`` (every address the name
    resolves to, as asyncio.start_server binds them)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(ACCEPT_BACKLOG)
            sock.setblocking(False)
            if port == 0:  # every address on the port the first one got
                port = sock.getsockname()[1]
                break
    except OSError as exc:
        for sock in sockets:
            sock.close()
        # the bare "[Errno 98] Address already in use" does not say which address
        what = (exc.strerror or str(exc)).lower() if exc.errno else str(exc)
        raise OSError(exc.errno, f"cannot listen on {host or '*'}:{port}: {what}") from exc
    return sockets


def _address_name(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class Encoded:
    """A handler's response value already encoded in Avro (skips the generic encoder)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Reply:
    """A handler's response value with call metadata (Avro's response ``meta`` map): an
    extension a peer that does not know it reads and ignores, as Java's requestor does."""

    __slots__ = ("meta", "value")

    def __init__(self, value: Any, meta: dict[str, bytes]) -> None:
        self.value = value
        self.meta = meta


Handler = Callable[[CallRequest, Connection], Awaitable[Any]]

# Queued after a read whose frames made replies of their own (a NONE handshake, a ping).
_FLUSH = CallRequest(-1, "", {})


class RpcServer:
    """Serves one Avro protocol. ``handler(call, connection)`` returns the response value
    or raises (the exception text goes back as an Avro system error, as Java does).
    Calls on one connection are handled in arrival order, as Java's Netty server does, and
    at most ``max_pending_calls`` are read ahead of their replies: a client that pipelines
    without reading its replies is stopped by TCP, not by our memory."""

    def __init__(
        self,
        protocol: Protocol,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        deflate: bool = False,
        compression_level: int = 6,
        ssl: ssl_lib.SSLContext | None = None,
        max_frame_bytes: int | None = None,
        limits: ListenerLimits | None = None,
        accept: Callable[[str], bool] | None = None,
        name: str = "rpc-server",
        guard: ConnectionGuard | None = None,
        clock: Clock = time.monotonic,
        as_events: bool = False,
    ) -> None:
        limits = limits or ListenerLimits()
        if max_frame_bytes is not None:
            limits = replace(limits, max_frame_bytes=max_frame_bytes)
        self.protocol = protocol
        self.handler = handler
        self.deflate = deflate
        self.compression_level = compression_level
        self.limits = limits
        self.as_events = as_events  # Flume events as Event objects (see ServerSession)
        self.cache: ProtocolCache = default_cache(protocol, limits)
        self.listener = Listener(name, self._serve, host, port, limits=limits, ssl=ssl,
                                 accept=accept, guard=guard, clock=clock)

    @property
    def name(self) -> str:
        return self.listener.name

    @property
    def host(self) -> str:
        return self.listener.host

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def open_connections(self) -> int:
        return self.listener.open_connections

    async def start(self) -> None:
        await self.listener.start()
        log.info("%s listening on %s:%d", self.name, self.host, self.port)

    async def stop(self) -> None:
        await self.listener.stop()

    async def _serve(self, peer: Peer, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        session = ServerSession(self.protocol, self.cache, self.limits, deflate=self.deflate,
                                compression_level=self.compression_level,
                                as_events=self.as_events)
        peer.on_cut = session.discard_input
        await self._session_loop(session, peer, reader, writer)

    async def _session_loop(
        self, session: ServerSession, peer: Peer,
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    ) -> None:
        """Calls are handled one at a time in arrival order, while a separate task keeps
        reading: a peer that hangs up during a long call (a blocked getEventBatch) is
        noticed at once, so what it held can be rolled back."""
        calls: asyncio.Queue[CallRequest | BaseException | None] = asyncio.Queue(
            self.limits.max_pending_calls)
        reading = asyncio.create_task(self._read_calls(session, peer, reader, calls))
        clock = peer.listener.clock
        try:
            while (item := await calls.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item is not _FLUSH:
                    peer.queued_cost -= item.cost
                    peer.hold(session.buffered + peer.queued_cost)
                    peer.activity.busy += 1
                    try:
                        await self._answer(session, peer, item)
                    finally:
                        peer.activity.busy -= 1
                out = session.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
                    peer.activity.progressed(clock())
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    async def _read_calls(
        self, session: ServerSession, peer: Peer, reader: asyncio.StreamReader,
        calls: asyncio.Queue[CallRequest | BaseException | None],
    ) -> None:
        clock = peer.listener.clock
        activity = peer.activity
        try:
            while data := await reader.read(READ_SIZE):
                activity.progressed(clock())
                before = session.packs_received
                session.receive(data)
                while True:
                    call = session.next_call(INFLATE_STEP)
                    if call is not None:
                        peer.queued_cost += call.cost
                    peer.hold(session.buffered + peer.queued_cost)
                    if call is None:
                        if not session.input_pending:
                            break
                        await asyncio.sleep(0)  # a big inflation: let the others run
                        continue
                    if calls.full():  # backpressure: waiting on our handler, not on the peer
                        activity.input_state(clock(), False, True)
                    await calls.put(call)
                if session.has_output:
                    await calls.put(_FLUSH)
                activity.input_state(clock(), session.incomplete,
                                     session.packs_received > before)
        except LimitExceeded as exc:
            if exc.limit == "max-buffered-bytes":  # the memory goes now, not after replies
                peer.cut_off(exc.limit, str(exc))
            await calls.put(exc)
            return
        except (RemoteProtocolError, OSError) as exc:
            await calls.put(exc)  # after the calls before it: those are still answered
            return
        peer._close()
        await calls.put(None)

    async def _answer(self, session: ServerSession, conn: Connection, call: CallRequest) -> None:
        try:
            value = await self.handler(call, conn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("%s: %s from %s failed: %r", self.name, call.message, conn.peer, exc)
            session.respond_error(call, f"{type(exc).__name__}: {exc}")
        else:
            meta = None
            if isinstance(value, Reply):
                value, meta = value.value, value.meta
            if isinstance(value, Encoded):
                session.respond(call, None, encoded=value.data, meta=meta)
            else:
                session.respond(call, value, meta=meta)


class PendingCall:
    """A call sent by :meth:`RpcClient.start_call` whose answer has not been awaited yet."""

    __slots__ = ("client", "future", "message", "serial", "writer")

    def __init__(self, client: RpcClient, message: str, serial: int,
                 future: asyncio.Future[Any], writer: asyncio.StreamWriter) -> None:
        self.client = client
        self.message = message
        self.serial = serial
        self.future = future
        self.writer = writer

    async def result(self) -> tuple[Any, dict[str, bytes]]:
        """(value, response call metadata); raises as ``RpcClient.call`` does."""
        return await self.client._finish(self)


class RpcClient:
    """A reconnecting Avro requestor. ``call()`` connects on demand; a timeout or a lost
    connection fails the pending calls and drops the connection, so the next call starts
    over with a fresh handshake (what Flume's sink does after a failure)."""

    # Java keeps the server hash it learned per address for the JVM's lifetime.
    server_hashes: dict[str, bytes] = {}

    def __init__(
        self,
        protocol: Protocol,
        host: str,
        port: int,
        *,
        connect_timeout: float = 20.0,
        request_timeout: float = 20.0,
        deflate: bool = False,
        compression_level: int = 6,
        ssl: ssl_lib.SSLContext | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    ) -> None:
        self.protocol = protocol
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.deflate = deflate
        self.compression_level = compression_level
        self.ssl = ssl
        self.max_frame_bytes = max_frame_bytes
        self._session: ClientSession | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[Any]] = {}
        self._connect_lock = asyncio.Lock()
        self.connections_created = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._session is not None

    async def connect(self) -> None:
        async with self._connect_lock:
            if self._session is not None:
                return
            try:
                async with asyncio.timeout(self.connect_timeout):
                    reader, writer = await asyncio.open_connection(
                        self.host, self.port, ssl=self.ssl, limit=READ_SIZE)
            except TimeoutError as exc:
                raise ConnectionError(
                    f"connect to {self.address} timed out after {self.connect_timeout}s"
                ) from exc
            _keepalive(writer)
            self._session = ClientSession(
                self.protocol, self.server_hashes.get(self.address), deflate=self.deflate,
                compression_level=self.compression_level, max_frame_bytes=self.max_frame_bytes,
            )
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read_loop(reader, self._session))
            self.connections_created += 1

    async def call(
        self, message: str, params: dict[str, Any], *, encoded: bytes | None = None
    ) -> Any:
        """Send one call and wait for its answer; raises RpcError, TimeoutError or
        ConnectionError. The connection is dropped on anything but a clean answer.
        ``encoded``: the parameters already in Avro."""
        value, _ = await self.call_with_meta(message, params, encoded=encoded)
        return value

    async def call_with_meta(
        self, message: str, params: dict[str, Any], *, encoded: bytes | None = None
    ) -> tuple[Any, dict[str, bytes]]:
        """``call``, also returning the response call metadata (empty if none came)."""
        pending = await self.start_call(message, params, encoded=encoded)
        return await pending.result()

    async def start_call(
        self, message: str, params: dict[str, Any], *, encoded: bytes | None = None
    ) -> PendingCall:
        """Send one call now and return without waiting for its answer, so the caller can
        work while the peer does (``await pending.result()`` then gives what ``call_with_meta``
        gives). Connects first if needed."""
        await self.connect()
        session, writer = self._session, self._writer
        if session is None or writer is None:  # it died while we waited for the lock
            raise ConnectionError(f"connection to {self.address} lost while connecting")
        serial = session.send_request(message, params, encoded=encoded)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[serial] = fut
        try:
            writer.write(session.data_to_send())
        except BaseException:
            self._waiters.pop(serial, None)
            await self._drop(f"{message} to {self.address} failed")
            raise
        return PendingCall(self, message, serial, fut, writer)

    async def _finish(self, call: PendingCall) -> tuple[Any, dict[str, bytes]]:
        try:
            async with asyncio.timeout(self.request_timeout):
                await call.writer.drain()
                result = await call.future
        except TimeoutError:
            await self._drop(f"{call.message} to {self.address} timed out "
                             f"after {self.request_timeout}s")
            raise
        except BaseException:
            await self._drop(f"{call.message} to {self.address} failed")
            raise
        finally:
            self._waiters.pop(call.serial, None)
        if result.error is not None:
            raise RpcError(result.error)
        return result.value, result.meta

    async def _read_loop(self, reader: asyncio.StreamReader, session: ClientSession) -> None:
        reason = "connection closed by peer"
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                for resp in session.feed(data):
                    fut = self._waiters.get(resp.serial)
                    if fut is not None and not fut.done():
                        fut.set_result(resp)
                out = session.data_to_send()  # a NONE handshake makes the session re-send
                if out and self._writer is not None:
                    self._writer.write(out)
                    await self._writer.drain()
                self.server_hashes[self.address] = session.server_hash
        except RemoteProtocolError as exc:
            reason = f"bad reply from {self.address}: {exc}"
            log.warning("%s", reason)
        except OSError as exc:  # incl. ETIMEDOUT (TimeoutError) and TLS errors
            reason = f"connection to {self.address} lost: {exc}"
        except asyncio.CancelledError:
            reason = "connection closed"
        self._fail_waiters(reason)
        if self._session is session:
            self._session = None
            if self._writer is not None:
                self._writer.close()
            self._writer = None

    def _fail_waiters(self, reason: str) -> None:
        waiters, self._waiters = self._waiters, {}
        for fut in waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionError(reason))

    async def _drop(self, reason: str) -> None:
        task, writer = self._reader_task, self._writer
        self._session, self._writer, self._reader_task = None, None, None
        self._fail_waiters(reason)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        """Idempotent: end the deflate stream politely and close the socket."""
        session, writer = self._session, self._writer
        if session is not None and writer is not None:
            with contextlib.suppress(Exception):
                writer.write(session.close())
        await self._drop("client closed")


__all__ = ["Connection", "Encoded", "LocalProtocolError", "PendingCall", "Reply", "RpcClient",
           "RpcError", "RpcServer"]
