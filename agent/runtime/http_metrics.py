"""A tiny HTTP server for Flume-style JSON metrics: ``GET /metrics``.

Mirrors Flume's HTTPMetricsServer: ``/metrics`` -> the JSON snapshot
(``application/json;charset=utf-8``), ``/`` -> a small HTML page linking to it, TRACE and
OPTIONS -> 403, anything else -> 404. One request per connection; requests are bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging

from agent.metrics import MetricsRegistry

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 16 * 1024
INDEX = b"<html><body><a href='/metrics'>metrics</a></body></html>"


class MetricsServer:
    def __init__(self, metrics: MetricsRegistry, port: int, host: str = "0.0.0.0") -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def bound_port(self) -> int:
        """The actual port (useful with port 0 in tests)."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("metrics served on http://%s:%d/metrics", self.host, self.bound_port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Pure routing: (status, content type, body) for a request line."""
        if method in ("TRACE", "OPTIONS"):
            return 403, "text/plain", b"Forbidden"
        if method not in ("GET", "HEAD"):
            return 404, "text/plain", b"Not Found"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            body = json.dumps(self.metrics.snapshot()).encode()
            return 200, "application/json;charset=utf-8", body
        if path == "/":
            return 200, "text/html;charset=utf-8", INDEX
        return 404, "text/plain", b"Not Found"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        try:
            if len(head) > MAX_HEADER_BYTES:
                raise ValueError("request too large")
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, ctype, body = self.respond(method, path)
        except ValueError:
            status, ctype, body, method = 400, "text/plain", b"Bad Request", "GET"
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        if method != "HEAD":
            writer.write(body)
        try:
            await writer.drain()
        finally:
            writer.close()
