"""The http source: Flume's HTTPSource on aiohttp's server.

A POST (or GET, as Flume's servlet treats both alike) on any path is handed to the handler
(``JSONHandler`` by default, or ``BlobHandler``); all its events go to the channels in one
transaction. Status codes are Flume's: 200 accepted; 400 the handler refused the input
(``EventReadFail``); 503 the channels refused the batch (``ChannelWriteFail``: nothing was
accepted, so the client may resend); 500 anything else. 413 for a body over the handler's
limit, 405 for other methods. ``ssl``/``enableSSL`` with ``keystore`` (a PEM file) serves HTTPS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from agent.components import ChannelException, EventDrivenSource
from agent.metrics import CounterGroup
from agent.registry import ComponentConfigError
from agent.sources.http_handlers import (
    JSON_HANDLER,
    BadRequest,
    Handler,
    TooLarge,
    make_handler,
)
from agent.tls import TlsConfigError, server_context

if TYPE_CHECKING:
    import ssl

    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

_DEPRECATED = {"ssl": "enableSSL", "keystore-password": "keystorePassword",
               "exclude-protocols": "excludeProtocols"}


def tls_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Flume's HTTPSource reads ``enableSSL``/``keystorePassword``/``excludeProtocols`` when
    the new key is not set."""
    out = dict(settings)
    for new, old in _DEPRECATED.items():
        if out.get(old) not in (None, "", []) and not out.get(new):
            out[new] = out[old]
    return out


class HttpSource(EventDrivenSource):
    def __init__(self, name: str, bind: str, port: int, handler: Handler, *,
                 ssl: ssl.SSLContext | None = None, counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        self.bind = bind
        self.requested_port = port
        self.handler = handler
        self.ssl = ssl
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.port = 0
        self._runner: web.ServerRunner | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> HttpSource:
        s = tls_settings(spec.settings)
        options = {k.removeprefix("handler."): str(v) for k, v in s.items()
                   if k.startswith("handler.")}
        options.update({str(k): str(v) for k, v in (s.get("handler.") or {}).items()})
        handler = make_handler(str(s.get("handler") or JSON_HANDLER), options)
        try:
            tls = server_context(s)
        except TlsConfigError as exc:
            raise ComponentConfigError(spec, str(exc)) from exc
        bind = str(s.get("bind") or "0.0.0.0")
        return cls(spec.name, bind, int(s["port"]), handler, ssl=tls,
                   counter=ctx.metrics.source(spec.name))

    async def start(self) -> None:
        server = web.Server(self._handle, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.bind, self.requested_port, ssl_context=self.ssl,
                           reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"source {self.name}: cannot listen on "
                                     f"{self.bind}:{self.requested_port}: {exc.strerror}") from exc
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("POST", "GET"):
            return web.Response(status=405, text=f"HTTP method {request.method} is not "
                                                 "supported\n")
        counters = self.counter.counters
        peer = request.remote
        try:
            body = await _read_body(request, self.handler.max_bytes)
            events = self.handler.events(body, request.headers.get("Content-Type"),
                                         request.query)
        except BadRequest as exc:
            counters["EventReadFail"] += 1
            log.warning("source %s: bad request from %s: %s", self.name, peer, exc)
            status = 413 if isinstance(exc, TooLarge) else 400
            return web.Response(status=status, text=f"Bad request from client. {exc}\n")
        counters["AppendBatchReceivedCount"] += 1
        counters["EventReceivedCount"] += len(events)
        try:
            if events:
                self.channel_processor.process_event_batch(events)
        except ChannelException as exc:
            counters["ChannelWriteFail"] += 1
            log.warning("source %s: channels refused %d event(s) from %s: %s", self.name,
                        len(events), peer, exc)
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


async def _read_body(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, refused as soon as it grows past ``limit`` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise TooLarge(f"request body of {length} bytes exceeds {limit}")
    chunks, size = [], 0
    while chunk := await request.content.read(1 << 20):
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
