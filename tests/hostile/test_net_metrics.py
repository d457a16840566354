"""Hostile clients against a real agent's /metrics endpoint while a dashboard polls it every
20 ms: malformed requests are answered 400, huge heads 431, a flood of idle connections
does not lock the dashboard out, and a client that resets leaves no traceback (issue 21
item 9)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.hostile import attacks
from tests.hostile.net_targets import (
    AgentPorts,
    MetricsPoller,
    Target,
    assert_unharmed,
    attack,
    avro_agent,
)

pytestmark = pytest.mark.e2e
MiB = 2**20


@dataclass
class Endpoint:
    target: Target
    port: int
    poller: MetricsPoller


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    ports = AgentPorts()
    target = avro_agent(tmp_path_factory.mktemp("metrics"), ports)
    poller = MetricsPoller(ports.metrics)
    poller.start()
    try:
        yield Endpoint(target, ports.metrics, poller)
    finally:
        poller.stop()
        target.stop()


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[int], object]
    expect: int | None  # what the attack must report (answers, refusals)
    rss_mib: int = 30


CASES = [
    Case("random bytes", attacks.random_bytes, 20),  # 64 KiB each: past the head limit
    Case("malformed requests", attacks.http_garbage, 20),
    Case("1 MiB of headers", attacks.http_huge_headers, 5),
    Case("500 idle connections", lambda p: attacks.idle_connections(p, 500), None, rss_mib=60),
    Case("clients resetting before the answer", attacks.http_resets, 50),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack(endpoint: Endpoint, case: Case) -> None:
    out = attack(endpoint.target, endpoint.poller.record, case.name,
                 lambda: case.run(endpoint.port))
    assert_unharmed(out, endpoint.target, case.rss_mib)
    if case.expect is not None:
        assert out.result == case.expect, str(out)


def test_no_traceback_and_few_log_lines(endpoint: Endpoint) -> None:
    endpoint.poller.stop()
    assert endpoint.poller.record.total > 0
    log = endpoint.target.text()
    assert "Traceback" not in log and "Unhandled exception" not in log, log[-3000:]
    assert len(log.splitlines()) < 100, log[-3000:]
