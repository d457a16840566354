"""The http source: Flume's HTTPSource on aiohttp's server.

A POST (or GET, as Flume's servlet treats both alike) on any path is handed to the handler
(``JSONHandler`` by default, or ``BlobHandler``); all its events go to the channels in one
transaction. Status codes are Flume's: 200 accepted; 400 the handler refused the input
(``EventReadFail``); 503 the channels refused the batch (``ChannelWriteFail``: nothing was
accepted, so the client may resend); 500 anything else. 413 for a body over the handler's
limit, 405 for other methods. ``ssl``/``enableSSL`` with ``keystore`` (a PEM file) serves HTTPS.

It listens through the wire layer's listener (:mod:`protocol.transport_protocol`), under the
line sources' limit keys: ``max-connections`` (plus the process's descriptor reserve),
``max-buffered-bytes`` (request heads and bodies held across connections; past it the
connection holding the most is closed), ``idle-timeout``, and ``frame-timeout`` (a request
begun and not read whole). aiohttp caps heads (8190-byte lines, 128 headers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.components import ChannelException, EventDrivenSource
from agent.config.converters import integer, to_bool, to_words
from agent.config.issues import IssueCode
from agent.config.limits import LISTENER_KEYS
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sources.http_handlers import (
    JSON_HANDLER,
    BadRequest,
    Handler,
    TooLarge,
    make_handler,
)
from agent.sources.listener import LINE_LIMIT_KEYS, line_limits
from agent.tls import SERVER_KEYS, TlsConfigError, server_context, server_rules
from protocol.errors import LimitExceeded
from protocol.limits import ListenerLimits
from protocol.transport_protocol import GuardedProtocol, ProtocolListener

if TYPE_CHECKING:
    import ssl

    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

_JETTY = ("QueuedThreadPool", "HttpConfiguration", "SslContextFactory", "ServerConnector")


_DEPRECATED = {"ssl": "enableSSL", "keystore-password": "keystorePassword",
               "exclude-protocols": "excludeProtocols"}


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    for new, old in _DEPRECATED.items():  # Flume reads the older name if the newer is absent
        if old in ctx.present and new not in ctx.present:
            settings[new] = settings[old]
    problems = server_rules(settings, ctx)
    try:
        make_handler(settings["handler"], settings["handler."])
    except ValueError as exc:
        problems.append(Problem(IssueCode.BAD_VALUE, str(exc), "handler"))
    return problems


_OLD_NAME = "Flume's older name, folded into {} by validation"
# What one JSON request may decode to, counted while it is decoded (as on the avro listeners).
_DECODE_KEYS = tuple(key for key in LISTENER_KEYS
                     if key.name in ("max-events-per-call", "max-call-bytes"))


def _handler(settings: Any) -> Handler:
    return make_handler(settings["handler"], settings["handler."],
                        max_events=settings["max-events-per-call"],
                        max_decoded_bytes=settings["max-call-bytes"])


class HttpSource(EventDrivenSource):
    SCHEMA = Schema(
        keys=(
            Key("port", integer(0, 65535), required=True),
            Key("bind", default="0.0.0.0"),
            Key("handler", default=JSON_HANDLER),
            *SERVER_KEYS,
            Key("enableSSL", to_bool, False, ignored=_OLD_NAME.format("ssl")),
            Key("keystorePassword", ignored=_OLD_NAME.format("keystore-password")),
            Key("excludeProtocols", to_words, [], ignored=_OLD_NAME.format("exclude-protocols")),
            *LINE_LIMIT_KEYS,
            *_DECODE_KEYS,
        ),
        # handler.* configures the handler; Jetty's bean keys are accepted and unused
        families=(KeyFamily("handler"), *(KeyFamily(prefix) for prefix in _JETTY)),
        rules=_rules,
        listen=("bind", "port"),
    )

    def __init__(self, name: str, bind: str, port: int, handler: Handler, *,
                 ssl: ssl.SSLContext | None = None, counter: CounterGroup | None = None,
                 limits: ListenerLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name)
        self.limits = limits or line_limits({})
        self.clock = clock
        self.listener: ProtocolListener | None = None
        self.bind = bind
        self.requested_port = port
        self.handler = handler
        self.ssl = ssl
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.port = 0
        self._runner: web.ServerRunner | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> HttpSource:
        s = spec.settings
        handler = _handler(s)
        unused = [f"{prefix}.{key}" for prefix in _JETTY for key in s[prefix]]
        if unused:
            log.info("source %s: Jetty settings have no equivalent here and are not used: %s",
                     spec.name, ", ".join(unused))
        try:
            tls = server_context(s)
        except TlsConfigError as exc:
            raise ComponentConfigError(spec, str(exc)) from exc
        return cls(spec.name, s["bind"], s["port"], handler, ssl=tls,
                   counter=ctx.metrics.source(spec.name), limits=line_limits(s))

    @property
    def open_connections(self) -> int:
        return 0 if self.listener is None else self.listener.open_connections

    async def start(self) -> None:
        server = web.Server(self._handle, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        listener = ProtocolListener(f"source {self.name}", server, self.bind,
                                    self.requested_port, limits=self.limits, ssl=self.ssl,
                                    clock=self.clock)
        try:
            await listener.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"source {self.name}: cannot listen on "
                                     f"{self.bind}:{self.requested_port}: {exc.strerror}") from exc
        self._runner, self.listener = runner, listener
        self.port = listener.port

    async def stop(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            await listener.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        conn = None if self.listener is None else self.listener.connection(request.transport)
        if conn is None:  # the connection has ended (a limit cut it off, or stop())
            return web.Response(status=503)
        with conn.handling():
            try:
                return await self._request(request, conn)
            except (LimitExceeded, ConnectionError):  # closed: nobody reads an answer
                return web.Response(status=503)

    async def _request(self, request: web.BaseRequest,
                       conn: GuardedProtocol) -> web.StreamResponse:
        if request.method not in ("POST", "GET"):
            conn.input_done()
            return web.Response(status=405, text=f"HTTP method {request.method} is not "
                                                 "supported\n")
        counters = self.counter.counters
        peer = request.remote
        try:
            conn.input_pending()
            body = await _read_body(request, self.handler.max_bytes, conn)
            conn.input_done()
            events = self.handler.events(body, request.headers.get("Content-Type"),
                                         request.query)
        except BadRequest as exc:
            conn.input_done()
            counters["EventReadFail"] += 1
            self._warn_once("bad-request", f"bad request from {peer}: {exc}")
            status = 413 if isinstance(exc, TooLarge) else 400
            return web.Response(status=status, text=f"Bad request from client. {exc}\n")
        counters["AppendBatchReceivedCount"] += 1
        counters["EventReceivedCount"] += len(events)
        try:
            if events:
                self.channel_processor.process_event_batch(events)
        except ChannelException as exc:
            counters["ChannelWriteFail"] += 1
            self._warn_once("channel-full", f"channels refused {len(events)} event(s) from "
                                            f"{peer}: {exc}")
            return web.Response(status=503, text="Error appending event to channel. Channel "
                                                 f"might be full. {exc}\n")
        except Exception as exc:
            counters["GenericProcessingFail"] += 1
            log.exception("source %s: unexpected error on a request from %s", self.name, peer)
            return web.Response(status=500, text="Unexpected error while appending event to "
                                                 f"channel. {exc}\n")
        counters["AppendBatchAcceptedCount"] += 1
        counters["EventAcceptedCount"] += len(events)
        return web.Response(status=200)


    def _warn_once(self, key: str, message: str) -> None:
        """At most one line per ``key`` per interval: a flood of bad requests (or of 503s
        while a channel is full) costs a few lines a minute."""
        if self.listener is not None:
            self.listener.log_once(key, logging.WARNING, message)


async def _read_body(request: web.BaseRequest, limit: int, conn: GuardedProtocol) -> bytes:
    """The request body, refused as soon as it grows past ``limit`` bytes, and held against
    the listener's input budget while it is read (LimitExceeded if that closes it)."""
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge(f"request body of {length} bytes exceeds {limit}")
    chunks, size = [], 0
    while chunk := await request.content.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        conn.hold(size)
    return b"".join(chunks)
