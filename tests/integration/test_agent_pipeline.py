"""In-process loopback: seq -> timestamp+static -> replicating -> 2 memory channels ->
logger + file_roll; plus graceful stop draining and reporting what could not drain."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from agent.components import ManualClock, Sink, Status
from agent.config.model import AgentConfig, ComponentSpec, SinkSpec, SourceSpec
from agent.registry import BuildContext
from agent.runtime import Agent, BackoffPolicy, build_agent
from agent.sinkprocessors import DefaultSinkProcessor
from agent.sinks import take_batch
from agent.sources.seq import SequenceGeneratorSource

FAST = BackoffPolicy(step=0.05, maximum=0.2, error=0.2)
CLOCK_START = 1_700_000_000.0


def memory(name: str, capacity: int = 1000) -> ComponentSpec:
    return ComponentSpec("channel", name, "memory", {
        "capacity": capacity, "transactionCapacity": 100, "keep-alive": 3,
        "byteCapacity": None, "byteCapacityBufferPercentage": 20,
    })


def loopback_config(out_dir: Path, total: int) -> AgentConfig:
    source = SourceSpec(
        "source", "r1", "seq", {"totalEvents": total, "batchSize": 10},
        channels=("c1", "c2"),
        selector=ComponentSpec("selector", "r1", "replicating", {"optional": []}),
        interceptors=(
            ComponentSpec("interceptor", "ts", "timestamp",
                          {"headerName": "timestamp", "preserveExisting": False}),
            ComponentSpec("interceptor", "st", "static",
                          {"key": "origin", "value": "loop", "preserveExisting": True}),
        ),
    )
    return AgentConfig(
        name="a1",
        sources={"r1": source},
        channels={"c1": memory("c1"), "c2": memory("c2")},
        sinks={
            "log": SinkSpec("sink", "log", "logger", {"maxBytesToLog": 16}, channel="c1"),
            "roll": SinkSpec("sink", "roll", "file_roll", {
                "sink.directory": str(out_dir), "sink.rollInterval": 0,
                "sink.serializer": "TEXT", "sink.serializer.appendNewline": True,
                "sink.batchSize": 100, "sink.pathManager.prefix": "",
                "sink.pathManager.extension": "",
            }, channel="c2"),
        },
    )


async def wait_for(predicate, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return predicate()


def test_loopback_pipeline_delivers_every_event_to_both_sinks(tmp_path, caplog):
    total = 250
    ctx = BuildContext(clock=ManualClock(CLOCK_START))
    agent = build_agent(loopback_config(tmp_path, total), ctx)
    agent.policy = FAST
    logged: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Collect(level=logging.INFO)
    sink_log = logging.getLogger("agent.sinks.logger")
    sink_log.addHandler(handler)
    old_level = sink_log.level
    sink_log.setLevel(logging.INFO)

    def file_lines() -> list[bytes]:
        return b"".join(p.read_bytes() for p in tmp_path.iterdir()).splitlines()

    async def go():
        await agent.start()
        ok = await wait_for(lambda: len(logged) >= total and len(file_lines()) >= total)
        remaining = await agent.stop(grace=2.0)
        return ok, remaining

    try:
        ok, remaining = asyncio.run(go())
    finally:
        sink_log.removeHandler(handler)
        sink_log.setLevel(old_level)
    assert ok
    assert remaining == {"c1": 0, "c2": 0}
    assert file_lines() == [str(i).encode() for i in range(total)]
    headers = "{timestamp=1700000000000, origin=loop}"
    assert logged[0] == "Event: { headers:" + headers + " body: 30" + " " * 46 + "0 }"
    assert len(logged) == total
    assert all(line.startswith("Event: { headers:" + headers) for line in logged)
    snap = ctx.metrics.snapshot()
    assert snap["SOURCE.r1"]["EventAcceptedCount"] == str(total)
    for channel in ("c1", "c2"):
        assert snap[f"CHANNEL.{channel}"]["EventPutSuccessCount"] == str(total)
        assert snap[f"CHANNEL.{channel}"]["EventTakeSuccessCount"] == str(total)
        assert snap[f"CHANNEL.{channel}"]["StopTime"] != "0"
    assert snap["SINK.roll"]["EventDrainSuccessCount"] == str(total)
    assert snap["SINK.log"]["EventDrainSuccessCount"] == str(total)


class GatedSink(Sink):
    """Takes nothing until the gate opens, then drains in batches."""

    def __init__(self, name: str, gate: asyncio.Event) -> None:
        super().__init__(name)
        self.gate = gate
        self.taken = 0

    async def process(self) -> Status:
        if not self.gate.is_set():
            return Status.BACKOFF
        tx = self.channel.transaction()
        tx.begin()
        batch = take_batch(tx, 50)
        tx.commit()
        tx.close()
        self.taken += len(batch)
        return Status.READY if batch else Status.BACKOFF


class BrokenSink(Sink):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.calls = 0

    async def process(self) -> Status:
        self.calls += 1
        tx = self.channel.transaction()
        tx.begin()
        try:
            take_batch(tx, 10)
            raise ConnectionError("downstream is gone")
        except BaseException:
            tx.rollback()
            raise
        finally:
            tx.close()


def manual_agent(sink: Sink, total: int) -> tuple[Agent, BuildContext]:
    ctx = BuildContext(clock=ManualClock(CLOCK_START))
    cfg = AgentConfig(name="a", channels={"c": memory("c")},
                      sources={"r": SourceSpec("source", "r", "seq",
                                               {"totalEvents": total, "batchSize": 50},
                                               channels=("c",))},
                      sinks={"k": SinkSpec("sink", "k", "null", {"batchSize": 100},
                                           channel="c")})
    built = build_agent(cfg, ctx)
    sink.channel = built.channels["c"]
    agent = Agent("a", built.channels, built.sources, {"k": sink},
                  {"k": DefaultSinkProcessor(sink)}, ctx, FAST)
    return agent, ctx


def test_graceful_stop_lets_sinks_drain_after_sources_stop():
    async def go():
        gate = asyncio.Event()
        sink = GatedSink("k", gate)
        agent, _ = manual_agent(sink, 300)
        await agent.start()
        source = agent.sources["r"]
        assert isinstance(source, SequenceGeneratorSource)
        assert await wait_for(lambda: agent.channels["c"].size() == 300)
        stopping = asyncio.create_task(agent.stop(grace=5.0))
        assert await wait_for(lambda: agent.state == "STOPPING")
        gate.set()  # the sink only starts working once the stop has begun
        remaining = await stopping
        return remaining, sink.taken

    remaining, taken = asyncio.run(go())
    assert remaining == {"c": 0}
    assert taken == 300


def test_stop_reports_what_a_failing_sink_could_not_drain(caplog):
    async def go():
        sink = BrokenSink("k")
        agent, _ = manual_agent(sink, 120)
        await agent.start()
        assert await wait_for(lambda: agent.sources["r"].sent == 120)
        await asyncio.sleep(0.5)  # the sink fails and keeps failing; the runner survives
        remaining = await agent.stop(grace=0.3)
        return remaining, sink.calls, agent.sink_runners["k"].errors

    with caplog.at_level(logging.WARNING):
        remaining, calls, errors = asyncio.run(go())
    assert remaining == {"c": 120}
    assert 2 <= calls <= 10  # retried with back-off, not in a busy loop
    assert errors == calls
    assert "120 event(s) still in memory channel c are lost" in caplog.text
    assert "--grace, or use a file channel" in caplog.text
    # one line for the outage however many attempts failed, and no traceback
    assert caplog.text.count("sink k: downstream is gone; retrying every") == 1
    assert "Traceback" not in caplog.text
