"""The web UI's HTTP layer on a real loopback socket: the page and its files, pushed
events, read-only routes, the Host check, the stream cap, Prometheus text."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from consumer.jobs.logsummary import BatchSample
from consumer.jobs.observe import BatchReport
from consumer.jobs.ranking import WindowTop
from consumer.ui.model import JobInfo, JobView
from consumer.ui.server import WebUI, host_of, is_loopback

INFO = JobInfo("top", "count by url", "push receiver", 1000, 1000, 10, 0)


def report(t: int) -> BatchReport:
    return BatchReport(BatchSample(t, 3, 0.001, 0.002), (WindowTop(t - 1000, t, (("/a", 3),), 1),),
                       {"malformed": 0})


async def read_event(resp: aiohttp.ClientResponse) -> tuple[str, dict]:
    lines = []
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode().rstrip("\n")
        if not line:
            if lines:
                break
            continue
        if not line.startswith(":"):
            lines.append(line)
    fields = dict(line.split(": ", 1) for line in lines)
    return fields["event"], json.loads(fields["data"])


def test_loopback_names() -> None:
    assert [is_loopback(host_of(h)) for h in ("localhost:4040", "127.0.0.1", "[::1]:4040",
                                              "127.1.2.3:80", "example.com:4040", "10.0.0.1")
            ] == [True, True, True, True, False, False]


def test_page_events_and_limits() -> None:
    async def main() -> None:
        ui = WebUI(JobView(INFO), lambda: [{"address": "x", "peers": []}], lambda: 5000,
                   port=0, max_streams=1)
        await ui.start()
        base = f"http://127.0.0.1:{ui.port}"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/") as resp:
                    assert resp.status == 200
                    assert "static/uPlot.iife.min.js" in await resp.text()
                    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
                for name in ("uPlot.iife.min.js", "ui.js", "uPlot.LICENSE"):
                    async with http.get(f"{base}/static/{name}") as resp:
                        assert resp.status == 200, name
                async with http.get(base + "/static/..%2fserver.py") as resp:
                    assert resp.status == 404
                async with http.post(base + "/api/state") as resp:
                    assert resp.status == 405
                async with http.get(base + "/", headers={"Host": "evil.example:4040"}) as resp:
                    assert resp.status == 421
                async with http.get(base + "/events") as stream:
                    assert stream.headers["Content-Type"] == "text/event-stream"
                    event, state = await read_event(stream)
                    assert (event, state["totals"]["batches"]) == ("state", 0)
                    async with http.get(base + "/events") as second:
                        assert second.status == 503  # max_streams=1
                    ui.observe(report(1000))  # as the worker thread would
                    event, update = await read_event(stream)
                    assert event == "batch"
                    assert update["batch"]["records"] == 3
                    assert update["windows"][0]["top"] == [["/a", 3]]
                async with http.get(base + "/metrics") as resp:
                    text = await resp.text()
                    assert 'flumelet_consumer_batches_total{job="top"} 1.0' in text
        finally:
            await ui.stop()

    asyncio.run(main())


def test_a_taken_port_moves_to_the_next_one() -> None:
    async def main() -> None:
        first = WebUI(JobView(INFO), list, lambda: 0, port=0)
        await first.start()
        second = WebUI(JobView(INFO), list, lambda: 0, port=first.port)
        await second.start()
        try:
            assert second.port != first.port and second.port - first.port <= 16
        finally:
            await second.stop()
            await first.stop()

    asyncio.run(main())
