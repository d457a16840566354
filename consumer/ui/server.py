"""The consumer's web UI: a thin aiohttp layer over :class:`~consumer.ui.model.JobView`.

It is a service of the StreamingContext (``ssc.addService``), so it runs on the consumer's
one event loop, started after the receivers and stopped after the last batch. Routes, all
read-only (anything but GET/HEAD is refused):

- ``/``: the page (static files in ``consumer/ui/static``, the chart library vendored: the
  page loads nothing from elsewhere, so it works offline);
- ``/events``: Server-Sent Events: ``state`` (everything) when a page connects, then one
  ``batch`` event per completed batch; no polling;
- ``/api/state``: the same state as JSON;
- ``/metrics``: Prometheus text (:mod:`consumer.ui.metrics`).

Batch reports arrive in the engine's worker thread and are handed to the loop, where the
view is updated and pushed to every open stream. Limits: at most ``max_streams`` open event
streams (503 past it), a stream that falls ``STREAM_QUEUE`` events behind is sent the whole
state again instead of queueing more. It listens through the wire layer's listener
(:mod:`protocol.transport_protocol`) under :data:`UI_LIMITS`, as the agent's /metrics does:
at most 32 connections (the one idle longest is closed for a new one) drawn from the
process's descriptor reserve, so a flood on the push receiver never takes the UI away; idle
connections close after 10 s, a request head not all sent within 10 s closes its connection,
and heads held across connections are capped at 1 MiB (aiohttp also caps lines at 8 KiB and
bodies at ``client_max_size``). Bound to loopback, it only answers requests whose Host is a
loopback name (a web page cannot read it through DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from consumer.jobs.observe import BatchReport
from consumer.ui import metrics
from consumer.ui.model import JobView
from protocol.limits import ListenerLimits
from protocol.transport_protocol import ProtocolListener

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "WebUI"]

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 4040  # Spark's UI port
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"index.html": "text/html", "ui.js": "text/javascript", "ui.css": "text/css",
                "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css",
                "uPlot.LICENSE": "text/plain"}
PORT_RETRIES = 16  # Spark's spark.port.maxRetries: 4040 taken -> 4041 ...
STREAM_QUEUE = 64
HEARTBEAT_S = 15.0
MAX_BODY_BYTES = 64 * 1024  # read-only routes: no request needs a body
UI_LIMITS = ListenerLimits(max_connections=32, max_frame_bytes=64 * 1024,
                           max_buffered_bytes=1024 * 1024, idle_timeout=10.0,
                           frame_timeout=10.0)
LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

Receivers = Callable[[], Sequence[Mapping[str, Any]]]


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:4040`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class WebUI:
    def __init__(self, view: JobView, receivers: Receivers, clock_ms: Callable[[], int], *,
                 host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 max_streams: int = 16, limits: ListenerLimits = UI_LIMITS) -> None:
        self.view = view
        self.receivers = receivers
        self.clock_ms = clock_ms
        self.host = host
        self.port = port
        self.max_streams = max_streams
        self.limits = limits
        self.listener: ProtocolListener | None = None
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._files: dict[str, bytes] = {}

    # ---- lifecycle (a StreamingContext service) -----------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._files = await asyncio.to_thread(_read_static)
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/metrics", self._metrics)
        app.on_response_prepare.append(_security_headers)
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=10.0,
                                     shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        tries = 1 if self.port == 0 else PORT_RETRIES + 1
        for attempt in range(tries):
            port = self.port + attempt
            listener = ProtocolListener("web UI", server, self.host, port, limits=self.limits,
                                        shared=False, evict_idle=True)
            try:
                await listener.start()
                break
            except OSError as exc:
                log.warning("web UI: cannot listen on %s:%d (%s)%s", self.host, port,
                            exc.strerror or exc, "; trying the next port"
                            if attempt + 1 < tries else "")
        else:
            log.error("web UI: no free port in %d-%d: running without it (--ui-port picks "
                      "another; 0 turns it off)", self.port, self.port + tries - 1)
            await self._runner.cleanup()
            self._runner = None
            return
        self.listener = listener
        self.port = listener.port
        log.info("web UI on %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        for queue in list(self._streams):
            _replace_queued(queue, None)  # ends each stream's response
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- batch reports (any thread) -----------------------------------------------------
    def observe(self, report: BatchReport) -> None:
        """A job observer: hands the report to the loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.view.add(report)  # not serving (yet): keep the history all the same
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._publish, report)

    def _publish(self, report: BatchReport) -> None:
        row = self.view.add(report)
        if not self._streams:
            return
        message = sse("batch", self.view.update(row, report, self.receivers(),
                                                self.clock_ms()))
        for queue in list(self._streams):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # a slow page: start it over rather than queue more
                _replace_queued(queue, sse("state", self.state()))

    def state(self) -> dict[str, Any]:
        return self.view.state(self.receivers(), self.clock_ms())

    # ---- HTTP -------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                     ) -> web.StreamResponse:
        conn = None if self.listener is None else self.listener.connection(request.transport)
        if conn is None:  # the connection has ended (a limit cut it off, or stop())
            raise web.HTTPServiceUnavailable()
        conn.input_done()  # GET and HEAD only: the head is all the input
        with conn.handling():  # an event stream is never idle
            if is_loopback(self.host) and not is_loopback(host_of(request.host)):
                raise web.HTTPMisdirectedRequest(text="this UI answers loopback host names "
                                                      "only (see the README to expose it)")
            return await handler(request)

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES or name == "index.html":
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        return web.Response(body=self._files[name], content_type=STATIC_FILES[name],
                            charset="utf-8")

    async def _state(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state(), headers={"Cache-Control": "no-store"})

    async def _metrics(self, _request: web.Request) -> web.StreamResponse:
        body = metrics.render(self.view, self.receivers())
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= self.max_streams:
            raise web.HTTPServiceUnavailable(
                text=f"too many open event streams (at most {self.max_streams})")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(STREAM_QUEUE)
        self._streams.add(queue)
        try:
            await response.write(sse("state", self.state()))
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    message = b": keep-alive\n\n"
                if message is None:
                    break
                await response.write(message)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the page went away, or the server is stopping
        finally:
            self._streams.discard(queue)
        return response


def _replace_queued(queue: asyncio.Queue[bytes | None], message: bytes | None) -> None:
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(message)


def _read_static() -> dict[str, bytes]:
    return {name: (STATIC / name).read_bytes() for name in STATIC_FILES}


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
