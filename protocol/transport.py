"""The one asyncio layer of the wire protocol: RpcServer and RpcClient over the sessions.

Everything protocol-specific happens in :mod:`protocol.rpc`; this module only moves bytes,
enforces timeouts and keeps one bad peer from hurting anyone else: a malformed or
oversized frame closes that connection with a logged reason, never the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_lib
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.framing import DEFAULT_MAX_FRAME_BYTES
from protocol.rpc import CallRequest, ClientSession, ProtocolCache, ServerSession, default_cache
from protocol.schemas import Protocol

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


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
        self.closed = True
        callbacks, self._on_close = self._on_close, []
        for cb in reversed(callbacks):  # newest first, like undoing: rollbacks keep order
            try:
                cb()
            except Exception:
                log.exception("close callback failed for %s", self.peer)


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

# Queued after a read that produced output but no call (a NONE handshake reply, a ping).
_FLUSH = CallRequest(-1, "", {})


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class RpcServer:
    """Serves one Avro protocol. ``handler(call, connection)`` returns the response value
    or raises (the exception text goes back as an Avro system error, as Java does).
    Calls on one connection are handled in arrival order, as Java's Netty server does."""

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
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        accept: Callable[[str], bool] | None = None,
        name: str = "rpc-server",
    ) -> None:
        self.protocol = protocol
        self.handler = handler
        self.host = host
        self.port = port
        self.deflate = deflate
        self.compression_level = compression_level
        self.ssl = ssl
        self.max_frame_bytes = max_frame_bytes
        self.accept = accept
        self.name = name
        self.cache: ProtocolCache = default_cache(protocol)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.open_connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl, limit=READ_SIZE
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        log.info("%s listening on %s:%d", self.name, self.host, self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # reads end even if a cancellation gets swallowed
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        peer = _peer_name(writer)
        conn = Connection(peer)
        self.open_connections += 1
        try:
            if self.accept is not None and not self.accept(peer.rsplit(":", 1)[0]):
                log.warning("%s: connection from %s refused by ipFilter", self.name, peer)
                return
            session = ServerSession(
                self.protocol, self.cache, deflate=self.deflate,
                compression_level=self.compression_level, max_frame_bytes=self.max_frame_bytes,
            )
            await self._session_loop(session, conn, reader, writer)
        except RemoteProtocolError as exc:
            log.warning("%s: closing connection from %s: %s", self.name, peer, exc)
        except (OSError, asyncio.IncompleteReadError) as exc:  # incl. ETIMEDOUT, TLS errors
            log.info("%s: connection from %s lost: %s", self.name, peer, exc)
        except asyncio.CancelledError:
            # The server is stopping. Ending quietly matters: Python 3.11's start_server
            # callback logs a cancelled connection task as an unhandled error.
            log.debug("%s: connection from %s closed by stop()", self.name, peer)
        finally:
            self.open_connections -= 1
            conn._close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)
            self._writers.discard(writer)

    async def _session_loop(
        self, session: ServerSession, conn: Connection,
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    ) -> None:
        """Calls are handled one at a time in arrival order, while a separate task keeps
        reading: a peer that hangs up during a long call (a blocked getEventBatch) is
        noticed at once, so what it held can be rolled back."""
        calls: asyncio.Queue[CallRequest | BaseException | None] = asyncio.Queue()
        reading = asyncio.create_task(self._read_calls(session, conn, reader, calls))
        try:
            while (item := await calls.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                await self._answer(session, conn, item)
                out = session.data_to_send()
                if out:
                    writer.write(out)
                    await writer.drain()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    async def _read_calls(
        self, session: ServerSession, conn: Connection, reader: asyncio.StreamReader,
        calls: asyncio.Queue[CallRequest | BaseException | None],
    ) -> None:
        try:
            while data := await reader.read(READ_SIZE):
                fed = session.feed(data)
                for call in fed:
                    calls.put_nowait(call)
                if not fed:  # maybe a reply made without a call (NONE handshake, ping)
                    calls.put_nowait(_FLUSH)
        except (RemoteProtocolError, OSError) as exc:
            calls.put_nowait(exc)
            return
        conn._close()
        calls.put_nowait(None)

    async def _answer(self, session: ServerSession, conn: Connection, call: CallRequest) -> None:
        if call is _FLUSH:
            return
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
        await self.connect()
        session, writer = self._session, self._writer
        if session is None or writer is None:  # it died while we waited for the lock
            raise ConnectionError(f"connection to {self.address} lost while connecting")
        serial = session.send_request(message, params, encoded=encoded)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[serial] = fut
        try:
            writer.write(session.data_to_send())
            async with asyncio.timeout(self.request_timeout):
                await writer.drain()
                result = await fut
        except TimeoutError:
            await self._drop(f"{message} to {self.address} timed out "
                             f"after {self.request_timeout}s")
            raise
        except BaseException:
            await self._drop(f"{message} to {self.address} failed")
            raise
        finally:
            self._waiters.pop(serial, None)
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


__all__ = ["Connection", "Encoded", "LocalProtocolError", "Reply", "RpcClient", "RpcError",
           "RpcServer"]
