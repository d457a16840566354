"""spooldir with the real config loader, memory channel, channel processor and runtime."""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from pathlib import Path

from agent.channel_processor import DefaultChannelProcessor
from agent.channels.memory import MemoryChannel
from agent.components import ManualClock, Status, SystemClock
from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime.graph import build_agent
from agent.runtime.runner import BackoffPolicy, PollingRunner
from agent.selectors import ReplicatingSelector
from agent.sources.spooldir import SpoolDirSource
from agent.sources.spooldir.settings import SpoolDirSettings

CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.fileHeader = true
a1.sources.r1.batchSize = 50
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = ts
a1.sources.r1.interceptors.ts.type = timestamp
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
"""


async def wait_for(predicate, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def test_agent_moves_every_line_of_every_file_in_order(tmp_path: Path) -> None:
    spool, out = tmp_path / "spool", tmp_path / "out"
    spool.mkdir()
    out.mkdir()
    expected = []
    for f in range(12):
        lines = [f"file{f:02d} line{i:04d}" for i in range(300)]
        (spool / f"f{f:02d}.log").write_text("\n".join(lines) + "\n")
        os.utime(spool / f"f{f:02d}.log", (1000 + f, 1000 + f))
        expected += lines
    result = load_text(CONFIG.format(spool=spool, out=out), "a1")
    assert result.config is not None, result.issues
    ctx = BuildContext(clock=SystemClock())
    agent = build_agent(result.config, ctx)

    def delivered() -> list[str]:
        return [line for p in sorted(out.iterdir()) for line in p.read_text().splitlines()]

    async def go() -> None:
        await agent.start()
        try:
            assert await wait_for(lambda: len(delivered()) >= len(expected), timeout=20)
        finally:
            await agent.stop(grace=2)

    asyncio.run(go())
    assert delivered() == expected  # oldest first, nothing lost, nothing repeated
    assert sorted(p.name for p in spool.iterdir()) == [".flumespool"] + [
        f"f{f:02d}.log.COMPLETED" for f in range(12)]
    counters = ctx.metrics.source("r1").counters
    assert counters["EventAcceptedCount"] == len(expected)
    assert counters["AppendBatchAcceptedCount"] == 12 * 6


def _source_into(
    channel: MemoryChannel, spool: Path, clock, *, watch: bool = False, **settings
) -> SpoolDirSource:
    s = SpoolDirSettings.from_mapping({"spoolDir": str(spool), **settings})
    src = SpoolDirSource("r1", s, clock=clock, watch=watch)
    src.channel_processor = DefaultChannelProcessor(ReplicatingSelector({"c1": channel}))
    return src


def _take_all(channel: MemoryChannel) -> list[bytes]:
    tx = channel.transaction()
    tx.begin()
    bodies = []
    while (event := tx.take()) is not None:
        bodies.append(event.body)
    tx.commit()
    tx.close()
    return bodies


def test_full_memory_channel_backs_off_and_resumes_without_loss(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a").write_text("".join(f"{i}\n" for i in range(250)))
    channel = MemoryChannel("c1", capacity=100, transaction_capacity=100)
    clock = ManualClock()
    src = _source_into(channel, spool, clock, batchSize=40)
    got: list[bytes] = []

    async def go() -> None:
        await src.start()
        statuses = [await src.process() for _ in range(3)]
        assert statuses == [Status.READY, Status.READY, Status.RETRY]  # 80 in, 40 refused
        assert channel.size() == 80
        assert await src.process() is Status.RETRY  # still full: refused again
        while True:
            got.extend(_take_all(channel))
            status = await src.process()
            if status is Status.BACKOFF:
                break
            while status is Status.READY:
                status = await src.process()
        got.extend(_take_all(channel))
        await src.stop()

    asyncio.run(go())
    assert got == [str(i).encode() for i in range(250)]
    assert src.counters["ChannelWriteFail"] >= 1


def test_a_full_channel_is_reported_at_most_every_30_s_naming_its_sinks_state(
        tmp_path: Path, caplog) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a").write_text("".join(f"{i}\n" for i in range(100)))
    channel = MemoryChannel("c1", capacity=10, transaction_capacity=10)
    clock = ManualClock()
    state = ("sink k1 failing for 12 s (127.0.0.1:9092 unreachable (connection refused))", True)
    s = SpoolDirSettings.from_mapping({"spoolDir": str(spool), "batchSize": 10})
    src = SpoolDirSource("r1", s, clock=clock, watch=False, drain_state=lambda c: state)
    src.channel_processor = DefaultChannelProcessor(ReplicatingSelector({"c1": channel}))

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY  # 10 in: full
        for _ in range(5):
            assert await src.process() is Status.RETRY
            clock.advance(5)
        clock.advance(10)  # 35 s after the first refusal
        assert await src.process() is Status.RETRY
        await src.stop()

    with caplog.at_level(logging.INFO, logger="agent.sources.spooldir.source"):
        asyncio.run(go())
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if r.name == "agent.sources.spooldir.source"]
    assert len(lines) == 2
    first = (f"source r1: channel c1 is full: {state[0]}; reading {spool / 'a'} waits, "
             "retrying within 4 s")
    assert lines[0] == ("WARNING", first)
    assert lines[1] == ("WARNING", first + " (4 more refusal(s) since the last such line)")


def test_a_full_channel_without_a_running_sink_is_a_warning(tmp_path: Path, caplog) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a").write_text("".join(f"{i}\n" for i in range(30)))
    result = load_text(CONFIG.format(spool=spool, out=tmp_path) +
                       "a1.channels.c1.capacity = 10\na1.channels.c1.transactionCapacity = 10\n"
                       "a1.sources.r1.batchSize = 10\n", "a1")
    assert result.config is not None, result.issues
    ctx = BuildContext(clock=ManualClock())
    agent = build_agent(result.config, ctx)  # not started: only its view of the sinks counts
    src = agent.sources["r1"]
    assert isinstance(src, SpoolDirSource)
    src._watch = False

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY
        assert await src.process() is Status.RETRY
        await src.stop()

    with caplog.at_level(logging.INFO, logger="agent.sources.spooldir.source"):
        asyncio.run(go())
    [record] = [r for r in caplog.records if r.name == "agent.sources.spooldir.source"]
    assert record.levelname == "WARNING"  # no sink runs on c1 (the agent is not started)
    assert "channel c1 is full: no sink is running on c1" in record.getMessage()


def test_the_agent_tells_sources_what_the_sinks_of_a_channel_are_doing(tmp_path: Path) -> None:
    result = load_text(CONFIG.format(spool=tmp_path, out=tmp_path), "a1")
    assert result.config is not None, result.issues
    clock = ManualClock()
    ctx = BuildContext(clock=clock)
    agent = build_agent(result.config, ctx)

    async def go() -> list[tuple[str, bool]]:
        await agent.start_channel("c1", agent.channels["c1"])
        states = [ctx.drain_state("c1")]
        await agent.start_processor("k1", agent.processors["k1"])
        runner = agent.sink_runners["k1"]
        states.append(ctx.drain_state("c1"))  # its first poll has not run yet
        assert await wait_for(lambda: runner.successes > 0, timeout=5)
        states.append(ctx.drain_state("c1"))  # it polls (the channel is empty): healthy
        runner.outage.failed("127.0.0.1:9092 unreachable (connection refused)", clock.monotonic())
        clock.advance(12)
        states.append(ctx.drain_state("c1"))
        await agent.stop(grace=0)
        return states

    assert asyncio.run(go()) == [
        ("no sink is running on c1", True),
        ("sink k1 has not delivered a batch yet", False),
        ("sink k1 is delivering, more slowly than the source reads", False),
        ("sink k1 failing for 12 s (127.0.0.1:9092 unreachable (connection refused))", True),
    ]


def test_watchdog_wakes_the_source_within_100_ms_of_a_file_landing(tmp_path: Path) -> None:
    spool, staging = tmp_path / "spool", tmp_path / "staging"
    spool.mkdir()
    staging.mkdir()
    channel = MemoryChannel("c1", capacity=1000, transaction_capacity=100)
    # pollDelay of a minute: only the watcher can explain a fast pick-up
    src = _source_into(channel, spool, SystemClock(), pollDelay=60_000, watch=True)
    latencies: list[float] = []

    async def go() -> None:
        await src.start()
        runner = PollingRunner("source r1", src.process)  # backs off 1 s, 2 s, ... up to 5 s
        src.wakeup = runner.wake
        runner.start()
        try:
            await asyncio.sleep(0.2)  # the runner is now deep in a BACKOFF wait
            for n in range(3):
                (staging / f"f{n}").write_text(f"line {n}\n")
                landed = time.monotonic()
                os.rename(staging / f"f{n}", spool / f"f{n}")  # the documented way to land
                assert await wait_for(lambda n=n: channel.size() > n, timeout=3, step=0.002)
                latencies.append(time.monotonic() - landed)
                await asyncio.sleep(0.3)
        finally:
            await runner.stop(1)
            await src.stop()

    asyncio.run(go())
    assert statistics.median(latencies) < 0.1, latencies


def test_without_a_watcher_the_poll_delay_timer_picks_files_up(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    channel = MemoryChannel("c1", capacity=1000, transaction_capacity=100)
    src = _source_into(channel, spool, SystemClock(), pollDelay=100, watch=False)

    async def go() -> float:
        await src.start()
        runner = PollingRunner("source r1", src.process, src.backoff_policy(BackoffPolicy()))
        src.wakeup = runner.wake
        runner.start()
        try:
            await asyncio.sleep(0.15)
            (spool / "late").write_text("x\n")
            landed = time.monotonic()
            assert await wait_for(lambda: channel.size() == 1, timeout=3)
            return time.monotonic() - landed
        finally:
            await runner.stop(1)
            await src.stop()

    assert asyncio.run(go()) < 0.9  # the source's pollDelay, not the agent's 1-5 s backoff
