"""A tiny HTTP server for Flume-style JSON metrics: ``GET /metrics``.

Mirrors Flume's HTTPMetricsServer: ``/metrics`` -> the JSON snapshot
(``application/json;charset=utf-8``), ``/`` -> a small HTML page linking to it, TRACE and
OPTIONS -> 403, anything else -> 404. One request per connection. With
``exposition="prometheus"`` (``-Dflume.monitoring.type=prometheus``) ``/metrics`` serves the
same counters in Prometheus' text format instead (:mod:`agent.prometheus`).

It runs on the wire layer's :class:`~protocol.transport.Listener`, under limits of its own
(:data:`METRICS_LIMITS`): a request head of at most 16 KiB (431 past it), 10 s to send it,
at most 16 connections at a time, the one idle the longest closed to make room for a new
one. Its connections do not count against the process's shared connection ceiling, so a
flood of clients on a data port never takes the operator's view away. Hand-written rather
than aiohttp: one GET route with no body, and the listener's limits apply as they do to
every other socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from agent import prometheus
from agent.metrics import MetricsRegistry
from protocol.limits import ListenerLimits
from protocol.transport import Listener, Peer

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
METRICS_LIMITS = ListenerLimits(max_connections=16, max_frame_bytes=MAX_HEADER_BYTES,
                                max_buffered_bytes=16 * MAX_HEADER_BYTES,
                                idle_timeout=10.0, frame_timeout=10.0)
INDEX = b"<html><body><a href='/metrics'>metrics</a></body></html>"
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           431: "Request Header Fields Too Large"}


class MetricsServer:
    def __init__(self, metrics: MetricsRegistry, port: int, host: str = "0.0.0.0", *,
                 limits: ListenerLimits = METRICS_LIMITS,
                 clock: Callable[[], float] = time.monotonic,
                 exposition: str = "http", agent: str = "") -> None:
        if exposition not in ("http", "prometheus"):
            raise ValueError(f"unknown metrics exposition {exposition!r}")
        self.metrics = metrics
        self.exposition = exposition
        self.agent = agent
        self.listener = Listener("metrics", self._handle, host, port, limits=limits,
                                 shared=False, evict_idle=True, clock=clock,
                                 read_limit=limits.max_frame_bytes)

    @property
    def bound_port(self) -> int:
        """The actual port (useful with port 0 in tests)."""
        return self.listener.port

    async def start(self) -> None:
        await self.listener.start()
        log.info("metrics served on http://%s:%d/metrics", self.listener.host, self.bound_port)

    async def stop(self) -> None:
        await self.listener.stop()

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Pure routing: (status, content type, body) for a request line."""
        if method in ("TRACE", "OPTIONS"):
            return 403, "text/plain", b"Forbidden"
        if method not in ("GET", "HEAD"):
            return 404, "text/plain", b"Not Found"
        path = path.split("?", 1)[0]
        if path == "/metrics" and self.exposition == "prometheus":
            return 200, prometheus.CONTENT_TYPE, prometheus.render(self.metrics, self.agent)
        if path == "/metrics":
            body = json.dumps(self.metrics.snapshot()).encode()
            return 200, "application/json;charset=utf-8", body
        if path == "/":
            return 200, "text/html;charset=utf-8", INDEX
        return 404, "text/plain", b"Not Found"

    def answer(self, head: bytes | None) -> tuple[int, str, bytes, bool]:
        """Pure: (status, content type, body, send the body) for a request head, or for
        None when the head was larger than MAX_HEADER_BYTES."""
        if head is None:
            return 431, "text/plain", b"Request Header Fields Too Large", True
        try:
            method, path, version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
            if not version.startswith("HTTP/") or not path:
                raise ValueError(version)
        except (ValueError, UnicodeDecodeError):
            return 400, "text/plain", b"Bad Request", True
        status, ctype, body = self.respond(method, path)
        return status, ctype, body, method != "HEAD"

    async def _handle(self, peer: Peer, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        """One request. A client that resets or vanishes just ends its connection: the
        listener notes it (rate-limited), with no traceback."""
        clock = peer.listener.clock
        peer.activity.input_state(clock(), incomplete=True, completed=False)  # head timeout
        head: bytes | None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            head = None
        except asyncio.IncompleteReadError:
            return  # closed (or cut off by the timeout) before a whole head arrived
        peer.activity.input_state(clock(), incomplete=False, completed=True)
        status, ctype, body, with_body = self.answer(head)
        writer.write(
            f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        if with_body:
            writer.write(body)
        await writer.drain()
