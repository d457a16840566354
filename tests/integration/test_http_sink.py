"""The http sink against a local HTTP server: Flume's per-status-code policy, timeouts,
an unreachable endpoint."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web

from agent.components import Status
from agent.registry import BuildContext
from agent.sinks.http_sink import HttpSink, StatusPolicy, policy_from_settings
from tests.agent_helpers import channel, component, fill
from tests.source_helpers import take

OVERRIDES = {"backoff.4XX": "false", "rollback.4XX": "false", "incrementMetrics.4XX": "true",
             "backoff.200": "false", "rollback.200": "false", "incrementMetrics.200": "true"}


def test_policy_most_specific_code_wins() -> None:
    policy = policy_from_settings({**OVERRIDES, "rollback.404": "true"})
    assert policy.decide(200) == (False, False, True)
    assert policy.decide(201) == (True, True, False)  # no 2XX override: Flume's defaults
    assert policy.decide(400) == (False, False, True)
    assert policy.decide(404) == (True, False, True)
    assert policy.decide(503) == (True, True, False)
    assert policy.decide(42) == (True, True, False)  # unreadable status


def test_policy_defaults_are_flumes() -> None:
    assert StatusPolicy().decide(200) == (True, True, False)
    p = policy_from_settings({"defaultRollback": "false", "defaultBackoff": "FALSE",
                              "defaultIncrementMetrics": "yes"})
    assert p.decide(500) == (False, False, False)  # Boolean.valueOf("yes") is false


class Server:
    """A scripted endpoint: answers each POST with the next status (then 200)."""

    def __init__(self, *statuses: int, delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.bodies: list[tuple[bytes, str]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append((await request.read(), request.headers["Content-Type"]))
        await asyncio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def __aenter__(self) -> Server:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _sink(port: int, **settings: Any) -> HttpSink:
    sink: HttpSink = component("sink", "http", {
        "endpoint": f"http://127.0.0.1:{port}/events", "contentTypeHeader": "application/json",
        **settings}, BuildContext())
    sink.channel = channel()
    return sink


def test_posts_each_body_and_follows_the_status_policy() -> None:
    async def main() -> None:
        async with Server(200, 503, 200, 404) as server:
            sink = _sink(server.port, **OVERRIDES)
            fill(sink.channel, 3)
            await sink.start()
            try:
                got = [await sink.process() for _ in range(5)]
            finally:
                await sink.stop()
        # 200 commits event 0; 503 rolls event 1 back; it is sent again (200); 404 commits 2
        assert got == [Status.READY, Status.RETRY, Status.READY, Status.READY, Status.BACKOFF]
        assert [b for b, _ in server.bodies] == [b"event 0", b"event 1", b"event 1", b"event 2"]
        assert {t for _, t in server.bodies} == {"application/json"}
        assert sink.channel.size() == 0
        c = sink.counter.counters
        assert (c["EventDrainAttemptCount"], c["EventDrainSuccessCount"]) == (4, 3)

    asyncio.run(main())


def test_timeout_rolls_back_and_counts_a_write_failure() -> None:
    async def main() -> None:
        async with Server(delay=1.0) as server:
            sink = _sink(server.port, requestTimeout=100, **OVERRIDES)
            fill(sink.channel, 1)
            await sink.start()
            try:
                assert await sink.process() is Status.RETRY
            finally:
                await sink.stop()
        assert sink.channel.size() == 1
        assert sink.counter.counters["EventWriteFail"] == 1

    asyncio.run(main())


def test_unreachable_endpoint_keeps_the_event() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]

    async def main() -> None:
        sink = _sink(free_port, **OVERRIDES)
        fill(sink.channel, 1)
        await sink.start()
        try:
            assert await sink.process() is Status.RETRY
        finally:
            await sink.stop()
        assert [e.body for e in take(sink.channel)] == [b"event 0"]

    asyncio.run(main())


def test_default_policy_warns_about_endless_resends(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        sink = _sink(1)
        await sink.start()
        await sink.stop()

    asyncio.run(main())
    assert "every event will be sent again" in caplog.text


def test_bad_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpSink("k1", "localhost:8080/x")
