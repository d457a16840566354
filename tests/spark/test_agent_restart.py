"""The flume source's executor code against a real ``flume-agent`` (file channel) that is
SIGKILLed and restarted in the middle of a slot: the batch staged but not acked comes back
from the channel's replay under new sequence numbers, and is counted once (no Spark needed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow", reason="the spark extra (pyarrow) is not installed")

from consumer.spark import pull  # noqa: E402
from consumer.spark.offsets import SlotRange  # noqa: E402
from consumer.spark.options import parse_options  # noqa: E402
from consumer.spark.slots import read_slots  # noqa: E402
from consumer.spark.staging import SlotStore  # noqa: E402
from scripts.genlog import generate, write_spool_file  # noqa: E402
from tests.e2e.procs import (  # noqa: E402
    ROOT,
    Proc,
    agent_metrics,
    free_port,
    start_agent,
    wait_listening,
    wait_until,
)

pytestmark = pytest.mark.e2e

LINES = 6000
OUT = pa.schema([pa.field("headers", pa.map_(pa.string(), pa.string())),
                 pa.field("body", pa.binary()), pa.field("agent", pa.string())])


class Agent:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.spool = tmp / "spool"
        self.spool.mkdir()
        self.port, self.metrics = free_port(), free_port()
        self.proc = self.start()

    def start(self) -> Proc:
        conf = ROOT / "configs" / "spark" / "agent.conf"
        proc = start_agent(conf, "a1", self.tmp / "agent.log", {
            "sources.r1.spoolDir": str(self.spool),
            "channels.c1.checkpointDir": str(self.tmp / "channel" / "cp"),
            "channels.c1.dataDirs": str(self.tmp / "channel" / "data"),
            "sinks.k1.hostname": "127.0.0.1", "sinks.k1.port": str(self.port)},
            metrics_port=self.metrics)
        wait_listening(self.port, proc)
        return proc

    def channel_size(self) -> int:
        return int(agent_metrics(self.metrics)["CHANNEL.c1"]["ChannelSize"])


def test_agent_killed_between_staging_and_ack_counts_the_replayed_batch_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = Agent(tmp_path)
    try:
        lines = [line.encode() for line in generate(LINES, 21, start=1_700_000_000, span=600)]
        write_spool_file(agent.spool, "access.log", [b.decode() for b in lines])
        wait_until(lambda: agent.channel_size() == LINES, 60, "the channel to fill",
                   [agent.proc])
        address = f"127.0.0.1:{agent.port}"
        opts = dataclasses.replace(
            parse_options({"addresses": address, "stagingDir": str(tmp_path / "staging"),
                           "pollTimeoutMs": "2000"}),
            max_batch_size=500, max_unacked_batches=2)
        real_settle = pull.SinkConnection.settle
        acks = 0

        async def kill_before_third_ack(self: pull.SinkConnection, batch: Any,
                                        verb: str) -> bool:
            nonlocal acks
            if verb == "ack":
                acks += 1
                if acks == 3:  # parts 1 (acked) and 2 (staged) exist: the agent dies
                    agent.proc.kill()
                    agent.proc = agent.start()  # its file channel replays part 2's takes
            return await real_settle(self, batch, verb)

        monkeypatch.setattr(pull.SinkConnection, "settle", kill_before_third_ack)
        got: list[bytes] = []
        for slot in range(1, 10):
            rng = SlotRange("run", address, slot, slot, 2000)
            got += [b for batch in read_slots(rng, opts, OUT)
                    for b in batch.column(1).to_pylist()]
            if len(got) >= LINES and agent.channel_size() == 0:
                break
        store = SlotStore(opts.staging_dir, "run", address)
        first = store.seal(1)
        assert first is not None
        assert [p.confirmed for p in first.parts] == [True, False]  # the unproven part
        assert sorted(got) == sorted(lines)  # every line once: the replay was recognised
        assert agent.channel_size() == 0
    finally:
        agent.proc.kill()
