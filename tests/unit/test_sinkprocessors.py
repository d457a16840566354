"""Sink processor selection logic, driven by a manual clock."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from agent.components import ManualClock, Sink, Status
from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.sinkprocessors import (
    DefaultSinkProcessor,
    FailoverSinkProcessor,
    LoadBalancingSinkProcessor,
)
from agent.sinks import EventDeliveryException


class FakeSink(Sink):
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        super().__init__(name)
        self.log = log
        self.fail = fail
        self.status = Status.READY

    async def process(self) -> Status:
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} is down")
        return self.status


def run(coro):
    return asyncio.run(coro)


def call(processor, times: int = 1) -> list[Status]:
    async def go():
        return [await processor.process() for _ in range(times)]

    return run(go())


def test_default_processor_delegates():
    log: list[str] = []
    assert call(DefaultSinkProcessor(FakeSink("k", log)), 2) == [Status.READY] * 2
    assert log == ["k", "k"]


def test_failover_uses_highest_priority_then_switches_on_failure():
    log: list[str] = []
    clock = ManualClock()
    k1, k2, k3 = FakeSink("k1", log), FakeSink("k2", log), FakeSink("k3", log)
    p = FailoverSinkProcessor([(k1, 5), (k2, 10), (k3, 1)], 30000, clock)
    call(p, 2)
    assert log == ["k2", "k2"]
    k2.fail = True
    log.clear()
    call(p)
    assert log == ["k2", "k1"]  # same call fails over to the next priority
    log.clear()
    clock.advance(1.9)  # first failure parks for 2 s
    call(p)
    assert log == ["k1"]
    clock.advance(0.2)  # penalty over: the parked sink is retried first
    log.clear()
    call(p)
    assert log == ["k2", "k1"]  # still failing: parked again (4 s now), k1 serves
    log.clear()
    clock.advance(3.9)
    call(p)
    assert log == ["k1"]
    k2.fail = False
    clock.advance(0.2)
    log.clear()
    call(p, 2)
    assert log == ["k2", "k2"]  # recovered with READY and active again


def test_failover_penalty_doubles_up_to_maxpenalty():
    log: list[str] = []
    clock = ManualClock()
    bad, good = FakeSink("bad", log, fail=True), FakeSink("good", log)
    p = FailoverSinkProcessor([(bad, 2), (good, 1)], 5000, clock)
    penalties = []
    for _ in range(4):
        call(p)
        penalties.append(round(p.parked[0].refresh_ms - clock.monotonic() * 1000))
        clock.advance(100)  # let the penalty expire
    assert penalties == [2000, 4000, 5000, 5000]
    assert log[:2] == ["bad", "good"]


def test_failover_all_failed_raises():
    log: list[str] = []
    a, b = FakeSink("a", log, fail=True), FakeSink("b", log, fail=True)
    p = FailoverSinkProcessor([(a, 1), (b, 2)], clock=ManualClock())
    assert p.sinks == [a, b]
    with pytest.raises(EventDeliveryException, match="nothing left to fail over to"):
        call(p)
    with pytest.raises(ValueError, match="different priorities"):  # validation prevents it
        FailoverSinkProcessor([(a, 1), (b, 1)], clock=ManualClock())


def test_failover_from_spec_takes_the_priorities_validation_resolved():
    text = "".join(
        f"a1.sinks.{k}.type = null\na1.sinks.{k}.channel = c1\n" for k in ("x", "y", "z")
    ) + (
        "a1.sources = r1\na1.channels = c1\na1.sinks = x y z\na1.sinkgroups = g\n"
        "a1.sources.r1.type = seq\na1.sources.r1.channels = c1\na1.channels.c1.type = memory\n"
        "a1.sinkgroups.g.sinks = x y z\na1.sinkgroups.g.processor.type = failover\n"
        "a1.sinkgroups.g.processor.priority.z = 0\n"
    )
    config = load_text(text, "a1", strict=True).config
    assert config is not None
    log: list[str] = []
    sinks = [FakeSink("x", log), FakeSink("y", log), FakeSink("z", log)]
    spec = config.sinkgroups["g"]
    p = FailoverSinkProcessor.from_spec(spec, sinks, BuildContext(clock=ManualClock()))
    assert p.live == {-1: sinks[0], -2: sinks[1], 0: sinks[2]}  # Flume's -1, -2 ... in order
    call(p)
    assert log == ["z"]


def test_round_robin_spreads_evenly():
    log: list[str] = []
    sinks = [FakeSink(f"k{i}", log) for i in range(3)]
    p = LoadBalancingSinkProcessor(sinks, clock=ManualClock())
    call(p, 9)
    assert log == ["k0", "k1", "k2"] * 3


def test_random_spreads_roughly_evenly():
    log: list[str] = []
    sinks = [FakeSink(f"k{i}", log) for i in range(3)]
    p = LoadBalancingSinkProcessor(sinks, "random", clock=ManualClock(), rng=random.Random(7))
    call(p, 3000)
    counts = Counter(log)
    assert set(counts) == {"k0", "k1", "k2"}
    assert all(900 < n < 1100 for n in counts.values())


def test_load_balance_skips_a_dead_sink_and_backs_it_off():
    log: list[str] = []
    clock = ManualClock()
    k0, k1, k2 = FakeSink("k0", log), FakeSink("k1", log, fail=True), FakeSink("k2", log)
    p = LoadBalancingSinkProcessor([k0, k1, k2], backoff=True, clock=clock)
    call(p, 3)
    assert log == ["k0", "k1", "k2", "k0"]  # k1 failed, k2 took over in the same call
    log.clear()
    call(p, 4)
    assert "k1" not in log and Counter(log) == {"k0": 2, "k2": 2}
    clock.advance(2.01)  # first back-off: 2 s
    k1.fail = False
    log.clear()
    call(p, 3)
    assert sorted(log) == ["k0", "k1", "k2"]


def test_load_balance_backoff_doubles_and_resets_after_an_hour():
    clock = ManualClock()
    p = LoadBalancingSinkProcessor([FakeSink("a", [])], backoff=True, max_timeout_ms=30000,
                                   clock=clock)
    lengths = []
    for _ in range(6):
        p.inform_failure(0)
        lengths.append(round(p.states[0].restore_ms - clock.monotonic() * 1000))
        clock.advance(lengths[-1] / 1000 + 0.001)
    assert lengths == [2000, 4000, 8000, 16000, 30000, 30000]
    clock.advance(2 * 3600)
    p.inform_failure(0)
    assert round(p.states[0].restore_ms - clock.monotonic() * 1000) == 2000


def test_load_balance_without_backoff_retries_dead_sink_every_time_and_all_fail_raises():
    log: list[str] = []
    p = LoadBalancingSinkProcessor([FakeSink("a", log, fail=True), FakeSink("b", log, fail=True)],
                                   clock=ManualClock())
    with pytest.raises(EventDeliveryException, match="all sinks"):
        call(p)
    assert log == ["a", "b"]


def test_load_balance_all_backed_off_returns_backoff():
    clock = ManualClock()
    p = LoadBalancingSinkProcessor([FakeSink("a", [], fail=True)], backoff=True, clock=clock)
    with pytest.raises(EventDeliveryException):
        call(p)
    assert call(p) == [Status.BACKOFF]


def test_round_robin_restarts_at_the_first_sink_when_the_active_set_shrinks() -> None:
    """Flume's RoundRobinOrderSelector: a head past the end restarts at 0 (not modulo)."""
    from agent.components import ManualClock, Sink
    from agent.sinkprocessors import LoadBalancingSinkProcessor

    lb = LoadBalancingSinkProcessor([Sink(f"k{i}") for i in range(5)], backoff=True,
                                    clock=ManualClock())
    for _ in range(4):
        lb.order()
    lb.inform_failure(0)
    lb.inform_failure(1)
    assert lb.order() == [2, 3, 4]
