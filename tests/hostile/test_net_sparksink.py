"""Hostile clients against a real agent's SparkSink, while a good poller drains it and a good
avro client fills it: the agent survives, its RSS stays bounded, the poller keeps its rate,
and every event the avro client was told was accepted reaches the poller (batches a vanished
poller took are rolled back and served again)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.hostile import attacks
from tests.hostile.net_targets import (
    AgentPorts,
    GoodPuller,
    GoodSender,
    Target,
    assert_unharmed,
    attack,
    spark_agent,
    wait_for,
)

pytestmark = pytest.mark.e2e
MiB = 2**20


@dataclass
class Sink:
    target: Target
    port: int
    sender: GoodSender
    puller: GoodPuller


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    ports = AgentPorts()
    target = spark_agent(tmp_path_factory.mktemp("spark"), ports)
    sender, puller = GoodSender(ports.avro), GoodPuller(ports.spark)
    sender.start()
    puller.start()
    try:
        yield Sink(target, ports.spark, sender, puller)
    finally:
        sender.stop()
        puller.stop()
        target.stop()


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[int], object]
    rss_mib: int
    closes: int | None = None


CASES = [
    Case("random bytes", attacks.random_bytes, 30, closes=20),
    Case("frame announcing 2 GiB", attacks.frame_announcing_2gib, 30, closes=1),
    Case("2^31 buffers in a frame", attacks.buffer_count_2_31, 30, closes=1),
    Case("truncated polls", attacks.spark_truncated_polls, 30, closes=20),
    Case("polls taken, then the poller vanishes", attacks.spark_poll_and_vanish, 30),
    Case("handshake with a wrong protocol hash", attacks.spark_wrong_hash, 30, closes=10),
    Case("500 idle connections", lambda p: attacks.idle_connections(p, 500), 60),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack(sink: Sink, case: Case) -> None:
    out = attack(sink.target, sink.puller.record, case.name, lambda: case.run(sink.port))
    assert_unharmed(out, sink.target, case.rss_mib)
    if case.closes is not None:
        assert out.result == case.closes, f"{out}: the server closed {out.result}"


def test_every_accepted_event_reaches_the_good_poller(sink: Sink) -> None:
    sink.sender.stop()
    total = sink.sender.record.total
    assert total > 0 and sink.sender.failed == 0, sink.sender.record.errors[:5]
    # batches a vanished poller held come back after the sink's 5 s close grace
    wait_for(lambda: sink.puller.record.total >= total, 30,
             f"{total} accepted events to be polled", sink.target)
    assert sink.puller.record.total == total
    assert "Traceback" not in sink.target.text()
