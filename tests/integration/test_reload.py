"""Reloading the configuration while events flow: only what changed restarts, nothing is lost.

The reloader is driven by calling ``check()`` (or ``run()`` with a short interval), so no test
waits for flume-ng's 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from agent.config.loader import load_config
from agent.registry import BuildContext
from agent.runtime import BackoffPolicy, build_agent
from agent.runtime.agent import Agent
from agent.runtime.reload import ConfigReloader, plan
from tests.plugins.greeting import COLLECTED

FAST = BackoffPolicy(step=0.01, maximum=0.02, error=0.05)
TOTAL = 3000
SINK = "tests.plugins.greeting.CollectingSink"


def config_text(sink_batch: int = 5, capacity: int = 1000, source_batch: int = 10) -> str:
    return (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = seq\na1.sources.r1.totalEvents = {TOTAL}\n"
        f"a1.sources.r1.batchSize = {source_batch}\na1.sources.r1.channels = c1\n"
        f"a1.channels.c1.type = memory\na1.channels.c1.capacity = {capacity}\n"
        f"a1.sinks.k1.type = {SINK}\na1.sinks.k1.batchSize = {sink_batch}\n"
        "a1.sinks.k1.channel = c1\n"
    )


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def started(conf: Path) -> tuple[Agent, ConfigReloader]:
    COLLECTED.pop("k1", None)
    result = load_config(conf, "a1")
    assert result.config is not None, [str(i) for i in result.issues]
    agent = build_agent(result.config, BuildContext())
    agent.policy = FAST
    await agent.start()
    reloader = ConfigReloader(agent, str(conf), lambda: load_config(conf, "a1"), grace=5.0,
                              interval=0.02)
    return agent, reloader


def delivered() -> list[bytes]:
    return COLLECTED.get("k1", [])


def test_a_sink_batch_size_changes_while_events_flow_and_nothing_is_lost(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(config_text(sink_batch=5))

    async def run() -> tuple[list[int], list[int], bool, bool]:
        agent, reloader = await started(conf)
        channel, source, old_sink = agent.channels["c1"], agent.sources["r1"], agent.sinks["k1"]
        await until(lambda: len(delivered()) >= 300)
        assert not await reloader.check()  # the file did not change: nothing to do
        conf.write_text(config_text(sink_batch=50))
        assert await reloader.check()
        new_sink = agent.sinks["k1"]
        await until(lambda: len(delivered()) == TOTAL)
        await agent.stop(grace=2.0)
        kept = agent.channels["c1"] is channel and agent.sources["r1"] is source
        return old_sink.batches, new_sink.batches, new_sink is not old_sink, kept

    old_batches, new_batches, replaced, kept = asyncio.run(run())
    assert delivered() == [str(n).encode() for n in range(TOTAL)]  # all, once, in order
    assert replaced and kept  # only the sink restarted
    assert max(old_batches) <= 5 and max(new_batches) > 5 and max(new_batches) <= 50


def test_a_channel_change_waits_until_it_is_drained(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(config_text(capacity=1000))

    async def run() -> tuple[bool, int, int]:
        agent, reloader = await started(conf)
        channel, old_source = agent.channels["c1"], agent.sources["r1"]
        await until(lambda: len(delivered()) >= 300)
        conf.write_text(config_text(capacity=2000, source_batch=20))
        assert await reloader.check()
        sent_before = old_source.sent  # type: ignore[attr-defined]
        await until(lambda: len(delivered()) == sent_before + TOTAL)
        await agent.stop(grace=2.0)
        new_channel = agent.channels["c1"]
        return (new_channel is not channel and new_channel.capacity == 2000,  # type: ignore
                agent.sources["r1"].batch_size, sent_before)  # type: ignore[attr-defined]

    replaced, batch, sent_before = asyncio.run(run())
    assert replaced and batch == 20
    # the old source's events all arrived (the channel was drained, not dropped), then the
    # new source's (a seq source counts from 0 again), each once
    expected = [str(n).encode() for n in range(sent_before)] + [
        str(n).encode() for n in range(TOTAL)]
    assert sorted(delivered()) == sorted(expected)


def test_the_timer_polls_the_file_and_a_broken_file_changes_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(config_text(sink_batch=5))

    async def run() -> tuple[int, int]:
        agent, reloader = await started(conf)
        stop = asyncio.Event()
        task = asyncio.create_task(reloader.run(stop))
        conf.write_text("a1.sources = r1\na1.sources.r1.type = nosuchtype\n")
        await asyncio.sleep(0.1)  # several polls of the broken file
        unchanged = agent.config.sinks["k1"].settings["batchSize"]
        conf.write_text(config_text(sink_batch=40))
        await until(lambda: agent.config.sinks["k1"].settings["batchSize"] == 40)
        stop.set()
        await task
        await agent.stop(grace=2.0)
        return unchanged, agent.config.sinks["k1"].settings["batchSize"]

    assert asyncio.run(run()) == (5, 40)


def test_plan_restarts_only_what_changed_and_ignores_moved_lines(tmp_path: Path) -> None:
    first = tmp_path / "a.conf"
    first.write_text(config_text())
    moved = tmp_path / "b.conf"
    moved.write_text("\n\n# moved\n" + config_text())
    old, same = load_config(first, "a1").config, load_config(moved, "a1").config
    assert old is not None and same is not None
    steps = plan(old, same)
    assert not (steps.stop_sources | steps.stop_units | steps.stop_channels)
    changed = tmp_path / "c.conf"
    changed.write_text(config_text(capacity=5000))
    new = load_config(changed, "a1").config
    assert new is not None
    steps = plan(old, new)
    assert steps.stop_channels == {"c1"} and steps.stop_sources == {"r1"}
    assert steps.stop_units == {"k1"} and steps.start_units == {"k1"}
