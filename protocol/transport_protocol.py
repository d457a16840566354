"""A :class:`~protocol.transport.Listener` for servers written as asyncio protocols (aiohttp's
server: the http source, the consumer's web UI), under the same limits as every other socket.

The listener accepts and admits each connection itself (connection cap, descriptor reserve),
then hands the socket to the protocol the factory makes, wrapped in a :class:`GuardedProtocol`
that sees every byte arriving. What the guard knows without the application's help:

- bytes arrived: the connection is not idle (``idle-timeout``);
- bytes arrived while no request is being handled: a request has begun, and its head is
  held until the application says it is read (``frame-timeout``, ``max-buffered-bytes``).

What the application tells it, through :meth:`ProtocolListener.connection` (by transport):
that a request is being handled (``handling``: never idle meanwhile), that its input is all
read (``input_done``), and what it holds of a body while reading it (``hold``, which closes
the connection holding the most when the listener's budget is exceeded). A connection past a
limit is closed with one rate-limited log line; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from protocol.errors import LimitExceeded
from protocol.transport import Listener, Peer

log = logging.getLogger(__name__)

ProtocolFactory = Callable[[], asyncio.Protocol]


class GuardedProtocol(asyncio.Protocol):
    """One admitted connection: forwards everything to ``inner`` and keeps its
    :class:`~protocol.transport.Peer` (activity, held input) up to date."""

    def __init__(self, listener: ProtocolListener, inner: asyncio.Protocol, name: str) -> None:
        self.listener = listener
        self.inner = inner
        self.name = name
        self.peer: Peer | None = None
        self.head = 0  # bytes of the request begun, before the application reads it
        self.body = 0  # what the application holds of the request's body

    # ---- what the application says -----------------------------------------------------
    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """A request is being handled: not idle, whatever the peer does meanwhile."""
        peer = self._peer
        peer.activity.busy += 1
        try:
            yield
        finally:
            peer.activity.busy -= 1
            peer.activity.progressed(self.listener.clock())

    def input_done(self) -> None:
        """The request's head (and body, if it is read) is all in: no input pending."""
        peer = self._peer
        peer.activity.input_state(self.listener.clock(), incomplete=False, completed=True)
        self.head = self.body = 0
        self.listener.budget.release(peer)

    def input_pending(self) -> None:
        """A body is still to be read: the frame timeout goes on running."""
        self._peer.activity.input_state(self.listener.clock(), incomplete=True,
                                        completed=False)

    def hold(self, body_bytes: int) -> None:
        """The application holds ``body_bytes`` of this request's body. Raises LimitExceeded
        (having closed this connection) if the listener's input budget closes it."""
        self.body = body_bytes
        self._hold()

    @property
    def _peer(self) -> Peer:
        assert self.peer is not None, "connection not made"
        return self.peer

    def _hold(self) -> None:
        peer = self._peer
        try:
            peer.hold(self.head + self.body)
        except LimitExceeded as exc:
            peer.cut_off(exc.limit, str(exc))
            raise

    # ---- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.peer = peer = Peer(self.listener, None, self.name, transport=transport)
        self.listener.peers.add(peer)
        self.listener.protocols[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        peer = self._peer
        if peer.cut is not None:
            return
        now = self.listener.clock()
        activity = peer.activity
        activity.progressed(now)
        if not activity.busy:  # a request's head (or the next one's) is arriving
            activity.input_state(now, incomplete=True, completed=False)
            self.head += len(data)
            try:
                self._hold()
            except LimitExceeded:
                return
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self.peer
        if peer is not None:
            listener = self.listener
            if peer.cut is not None:
                key, reason = peer.cut
                listener.log_once(key, logging.WARNING,
                                  f"closing the connection from {peer.peer}: {reason}")
            listener.protocols.pop(peer.transport, None)
            listener._forget(peer)
            peer._close()
        self.inner.connection_lost(exc)


async def _no_stream_serve(*_: Any) -> None:
    raise AssertionError("a ProtocolListener serves through its protocol factory")


class ProtocolListener(Listener):
    """A Listener whose admitted connections are served by ``factory()`` protocols."""

    def __init__(self, name: str, factory: ProtocolFactory, host: str, port: int,
                 **kwargs: Any) -> None:
        super().__init__(name, _no_stream_serve, host, port, **kwargs)
        self.factory = factory
        self.protocols: dict[asyncio.BaseTransport, GuardedProtocol] = {}

    def connection(self, transport: asyncio.BaseTransport | None) -> GuardedProtocol | None:
        """The guard of the connection a request came on (None once it has ended)."""
        return None if transport is None else self.protocols.get(transport)

    async def _connected(self, conn: Any, name: str) -> None:
        assert self.guard is not None
        loop = asyncio.get_running_loop()
        guarded = GuardedProtocol(self, self.factory(), name)
        try:
            await loop.connect_accepted_socket(lambda: guarded, conn, ssl=self.ssl)
        except (OSError, asyncio.CancelledError) as exc:  # a failed TLS handshake, or stop()
            if guarded.peer is None:  # never made: it was counted at admission only
                self.guard.release(self.name, self.shared)
            conn.close()
            if not isinstance(exc, asyncio.CancelledError):
                self.log_once("lost", logging.INFO, f"connection from {name} lost: {exc!r}")


__all__ = ["GuardedProtocol", "ProtocolListener"]
