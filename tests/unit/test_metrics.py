"""Counter groups, Flume's JSON shape and the /metrics HTTP endpoint."""

from __future__ import annotations

import asyncio
import json

from agent.metrics import MetricsRegistry, java_double
from agent.runtime.http_metrics import MetricsServer


def test_java_double_rendering():
    assert java_double(5.0) == "5.0"
    assert java_double(33.33333333333333) == "33.33333333333333"
    assert java_double(0.0001) == "1.0E-4"
    assert java_double(12345678.0) == "1.2345678E7"
    assert java_double(1.7976931348623157e308) == "1.7976931348623157E308"
    assert java_double(0.0) == "0.0"


def test_snapshot_has_flume_keys_all_strings():
    m = MetricsRegistry()
    m.source("r1").increment("EventAcceptedCount", 3)
    ch = m.channel("c1")
    ch.set("ChannelCapacity", 200)
    ch.set("ChannelSize", 10)
    m.sink("k1")
    m.mark_started("SOURCE", "r1", 1234)
    snap = m.snapshot()
    assert set(snap) == {"SOURCE.r1", "CHANNEL.c1", "SINK.k1"}
    assert snap["SOURCE.r1"]["EventAcceptedCount"] == "0"  # zeroed at start, like Flume
    assert snap["SOURCE.r1"]["StartTime"] == "1234"
    assert snap["SOURCE.r1"]["Type"] == "SOURCE"
    assert snap["CHANNEL.c1"]["ChannelFillPercentage"] == "5.0"
    assert snap["SINK.k1"]["StopTime"] == "0"
    assert "BatchUnderflowCount" in snap["SINK.k1"]
    assert all(isinstance(v, str) for group in snap.values() for v in group.values())
    m.mark_stopped("SOURCE", "r1", 5678)
    assert m.snapshot()["SOURCE.r1"]["StopTime"] == "5678"


def test_zero_capacity_reports_double_max():
    m = MetricsRegistry()
    assert m.channel("c").attributes()["ChannelFillPercentage"] == "1.7976931348623157E308"


async def _request(port: int, line: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{line}\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


def test_http_server_routes():
    m = MetricsRegistry()
    m.channel("c1").set("ChannelCapacity", 100)

    async def go():
        server = MetricsServer(m, 0, host="127.0.0.1")
        await server.start()
        try:
            port = server.bound_port
            return [await _request(port, f"{verb} {path} HTTP/1.1") for verb, path in
                    [("GET", "/metrics"), ("GET", "/"), ("GET", "/nope"), ("TRACE", "/metrics")]]
        finally:
            await server.stop()

    metrics, index, missing, trace = asyncio.run(go())
    head, body = metrics.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/json;charset=utf-8" in head
    assert json.loads(body)["CHANNEL.c1"]["ChannelCapacity"] == "100"
    assert index.startswith(b"HTTP/1.1 200") and b"/metrics" in index
    assert missing.startswith(b"HTTP/1.1 404")
    assert trace.startswith(b"HTTP/1.1 403")
