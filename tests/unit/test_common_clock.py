"""The one clock vocabulary: seconds for wall time, deadlines and advance; ``_ms`` names for
the consumer's integer epoch milliseconds."""

from __future__ import annotations

import asyncio

import pytest

from agent.components import ManualClock as AgentManualClock
from common.clock import ManualClock, SystemClock


def test_agent_and_consumer_share_one_manual_clock():
    assert AgentManualClock is ManualClock


def test_advance_moves_wall_monotonic_and_ms_time_together():
    clock = ManualClock(1_700_000_000.3)
    assert (clock.time(), clock.monotonic(), clock.now_ms()) == (
        1_700_000_000.3, 0.0, 1_700_000_000_300)
    clock.advance(1.5)
    assert clock.now_ms() == 1_700_000_001_800
    assert clock.monotonic() == 1.5
    clock.set_ms(1_700_000_002_000)
    assert clock.now_ms() == 1_700_000_002_000
    assert clock.monotonic() == pytest.approx(1.7)
    with pytest.raises(ValueError, match="back in time"):
        clock.set_ms(1_700_000_001_999)
    with pytest.raises(ValueError, match="back in time"):
        clock.advance(-0.001)


def test_ms_times_survive_the_seconds_representation():
    clock = ManualClock(0)
    for t_ms in (1, 999, 1_700_000_000_001, 1_700_000_000_999, 4_102_444_800_123):
        clock.set_ms(t_ms)
        assert clock.now_ms() == t_ms


def test_sleepers_wake_when_another_thread_moves_time():
    clock = ManualClock(100.0)
    woke: list[int] = []

    async def sleeper() -> None:
        await clock.sleep_until(101_000)
        woke.append(clock.now_ms())

    async def main() -> None:
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        await asyncio.to_thread(clock.advance, 0.5)  # from another thread
        for _ in range(3):
            await asyncio.sleep(0)
        assert woke == [] and not task.done()  # 100.5 s: not yet
        await asyncio.to_thread(clock.set_ms, 101_000)
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert woke == [101_000]


def test_system_clock_units_agree():
    clock = SystemClock()
    assert abs(clock.now_ms() - clock.time() * 1000) < 1000
    assert clock.monotonic() > 0
