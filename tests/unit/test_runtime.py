"""Polling runner back-off and wake-ups, graph building errors, serve_agent lifecycle."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from agent.components import ManualClock, Status
from agent.config.loader import load_text
from agent.config.model import AgentConfig
from agent.registry import BuildContext
from agent.runtime import (
    AgentBuildError,
    BackoffPolicy,
    PollingRunner,
    build_agent,
    run_agent,
    serve_agent,
)
from agent.sinkprocessors import FailoverSinkProcessor
from agent.sinks import EventDeliveryException


def test_backoff_policy_matches_flume_sink_runner():
    policy = BackoffPolicy()
    assert [policy.after_backoffs(k) for k in range(1, 8)] == [1, 2, 3, 4, 5, 5, 5]


def test_backoff_policy_retries_double_up_to_their_maximum():
    policy = BackoffPolicy(retry=0.25, retry_maximum=4)
    assert [policy.after_retries(k) for k in range(1, 8)] == [0.25, 0.5, 1, 2, 4, 4, 4]
    assert policy.after_retries(100_000) == 4


def test_runner_waits_out_doubling_retries_whatever_wakes_it():
    times: list[float] = []

    async def go():
        loop = asyncio.get_running_loop()

        async def poll() -> Status:
            times.append(loop.time())
            return Status.RETRY if len(times) < 4 else Status.BACKOFF

        policy = BackoffPolicy(step=10, maximum=10, retry=0.05, retry_maximum=0.1)
        runner = PollingRunner("r", poll, policy)
        runner.start()
        while len(times) < 4:
            runner.wake()  # e.g. a file watcher: must not cut a retry back-off short
            await asyncio.sleep(0.005)
        await runner.stop(1.0)

    asyncio.run(go())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert [g >= w - 0.005 for g, w in zip(gaps, [0.05, 0.1, 0.1], strict=True)] == [True] * 3


def test_runner_backs_off_and_wakes_early():
    calls: list[float] = []

    async def go():
        loop = asyncio.get_running_loop()

        async def poll() -> Status:
            calls.append(loop.time())
            return Status.BACKOFF

        runner = PollingRunner("r", poll, BackoffPolicy(step=10, maximum=10, error=10))
        runner.start()
        await asyncio.sleep(0.05)
        assert len(calls) == 1  # waiting 10 s
        runner.wake()
        await asyncio.sleep(0.05)
        assert len(calls) == 2
        await runner.stop(1.0)

    asyncio.run(go())


def test_runner_survives_exceptions_without_a_busy_loop():
    async def go():
        count = 0

        async def poll() -> Status:
            nonlocal count
            count += 1
            raise RuntimeError("boom")

        runner = PollingRunner("r", poll, BackoffPolicy(step=1, maximum=1, error=0.05))
        runner.start()
        for _ in range(20):
            runner.wake()  # wake-ups do not shorten an error back-off
            await asyncio.sleep(0.01)
        await runner.stop(1.0)
        return count, runner.errors

    count, errors = asyncio.run(go())
    assert 2 <= count <= 6
    assert errors == count


def _run_script(outcomes: list[object], clock: ManualClock, **kw: object) -> PollingRunner:
    """Run a runner whose polls return or raise ``outcomes`` in turn, 10 s apart."""
    async def go() -> PollingRunner:
        script = iter(outcomes)
        done = asyncio.Event()

        async def poll() -> Status:
            clock.advance(10)
            outcome = next(script, None)
            if outcome is None:
                done.set()
                return Status.BACKOFF
            if isinstance(outcome, Exception):
                raise outcome
            assert isinstance(outcome, Status)
            return outcome

        runner = PollingRunner("sink k1", poll, BackoffPolicy(step=0.001, error=0.001),
                               clock=clock, **kw)  # type: ignore[arg-type]
        runner.start()
        await asyncio.wait_for(done.wait(), 5)
        await runner.stop(1.0)
        return runner

    return asyncio.run(go())


def test_runner_logs_an_outage_once_when_it_begins_changes_and_ends(caplog):
    down = EventDeliveryException("127.0.0.1:9092 unreachable (connection refused)")
    slow = EventDeliveryException("127.0.0.1:9092 not answering (timed out)")
    with caplog.at_level(logging.INFO):
        _run_script([Status.READY, down, down, down, slow, slow, Status.READY, Status.READY],
                    ManualClock(), meanwhile="events stay in c1", resumed="delivering again")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "sink k1: 127.0.0.1:9092 unreachable (connection refused); retrying every 0.001 s, "
        "events stay in c1",
        "sink k1: 127.0.0.1:9092 not answering (timed out); retrying every 0.001 s, "
        "events stay in c1",
        "sink k1: delivering again after 50 s",
    ]
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in caplog.records)


def test_runner_tracebacks_are_for_debug_and_for_bugs(caplog):
    down = ConnectionError("closed by peer")
    with caplog.at_level(logging.DEBUG, logger="agent.runtime.runner"):
        _run_script([down, down, KeyError("oops"), KeyError("oops")], ManualClock())
    records = [r for r in caplog.records if r.name == "agent.runtime.runner"]
    # at DEBUG the first delivery failure carries its traceback, repeats are DEBUG lines
    assert [(r.levelname, bool(r.exc_info)) for r in records] == [
        ("WARNING", True), ("DEBUG", True), ("ERROR", True), ("DEBUG", True), ("WARNING", False)]
    assert records[2].getMessage().startswith("sink k1: process() failed: KeyError('oops')")
    assert records[4].getMessage() == "sink k1: working again after 40 s"


def test_runner_loops_on_ready_yielding_to_others():
    async def go():
        n = 0
        ticks = 0

        async def poll() -> Status:
            nonlocal n
            n += 1
            return Status.READY

        async def other():
            nonlocal ticks
            for _ in range(10):
                ticks += 1
                await asyncio.sleep(0)

        runner = PollingRunner("r", poll)
        runner.start()
        await other()
        await runner.stop(1.0)
        return n, ticks

    n, ticks = asyncio.run(go())
    assert ticks == 10 and n >= 10


BASE = """\
a.sources = r
a.channels = c
a.sinks = k1 k2
a.sources.r.type = seq
a.sources.r.totalEvents = 10
a.sources.r.channels = c
a.channels.c.type = memory
a.sinks.k1.type = null
a.sinks.k1.channel = c
a.sinks.k2.type = null
a.sinks.k2.channel = c
"""


def base_config(extra: str = "") -> AgentConfig:
    """BASE with ``extra``'s keys (a key set again replaces BASE's: a warning, not a problem)."""
    result = load_text(BASE + extra, "a")
    assert result.config is not None and {i.code for i in result.issues} <= {"DUPLICATE_KEY"}
    return result.config


def test_build_agent_wires_groups_and_default_processors():
    cfg = base_config(
        "a.sinkgroups = g\na.sinkgroups.g.sinks = k1 k2\na.sinkgroups.g.processor.type = failover\n"
    )
    agent = build_agent(cfg, BuildContext(clock=ManualClock()))
    assert set(agent.processors) == {"g"}
    assert isinstance(agent.processors["g"], FailoverSinkProcessor)
    agent = build_agent(base_config())
    assert set(agent.processors) == {"k1", "k2"}
    assert agent.sinks["k1"].channel is agent.channels["c"]


def test_build_agent_collects_every_environment_problem(tmp_path):
    (tmp_path / "not-a-dir").write_text("")
    cfg = base_config(
        "a.channels = c f1 f2\na.sinks = k1 k2 k3\n"
        f"a.channels.f1.type = file\na.channels.f1.dataDirs = {tmp_path}/not-a-dir/x\n"
        f"a.channels.f2.type = file\na.channels.f2.dataDirs = {tmp_path}/not-a-dir/y\n"
        "a.sources.r.channels = c f1\na.sinks.k3.type = null\na.sinks.k3.channel = f2\n"
    )
    with pytest.raises(AgentBuildError) as info:
        build_agent(cfg)
    assert len(info.value.problems) == 2
    assert all("not-a-dir" in p for p in info.value.problems)
    assert "channel f1 (<string>:" in str(info.value)


def test_serve_agent_runs_until_stopped():
    async def go():
        stop = asyncio.Event()
        task = asyncio.create_task(serve_agent(base_config(), grace=1.0, metrics_port=0,
                                               stop_event=stop))
        await asyncio.sleep(0.3)
        stop.set()
        return await task

    assert asyncio.run(go()).remaining == {"c": 0}


def test_run_agent_returns_1_when_the_graph_cannot_be_built(caplog, tmp_path):
    (tmp_path / "file").write_text("")
    cfg = base_config(
        f"a.channels.c.type = file\na.channels.c.dataDirs = {tmp_path}/file/data\n"
    )
    assert run_agent(cfg, grace=0.1) == 1
    assert f"{tmp_path}/file/data" in caplog.text
