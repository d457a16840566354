"""A real flume-agent picks up an edited configuration file while events flow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.procs import Proc, wait_until

pytestmark = pytest.mark.e2e
TOTAL = 20_000


def conf_text(out: Path, sink_batch: int) -> str:
    return (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = seq\na1.sources.r1.totalEvents = {TOTAL}\n"
        "a1.sources.r1.batchSize = 50\na1.sources.r1.channels = c1\n"
        "a1.channels.c1.type = memory\na1.channels.c1.capacity = 2000\n"
        "a1.channels.c1.transactionCapacity = 1000\n"
        f"a1.sinks.k1.type = file_roll\na1.sinks.k1.sink.directory = {out}\n"
        f"a1.sinks.k1.sink.rollInterval = 0\na1.sinks.k1.sink.batchSize = {sink_batch}\n"
        "a1.sinks.k1.channel = c1\n"
    )


def lines(out: Path) -> list[str]:
    return [line for f in sorted(out.glob("*")) for line in f.read_text().splitlines()]


def test_an_edited_file_is_applied_without_losing_events(tmp_path: Path) -> None:
    out = tmp_path / "out"
    conf = tmp_path / "agent.conf"
    conf.write_text(conf_text(out, sink_batch=1))  # slow enough to be mid-flow at the edit
    agent = Proc("flume-agent", [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                 "--reload-interval", "0.1", "-Dflume.root.logger=INFO,console"],
                 tmp_path / "agent.log")
    try:
        wait_until(lambda: len(lines(out)) >= 200 if out.exists() else False, 60,
                   "the first events", [agent])
        conf.write_text(conf_text(out, sink_batch=1000))
        wait_until(lambda: "configuration reloaded" in agent.tail(20_000), 60,
                   "the reload", [agent])
        wait_until(lambda: len(lines(out)) >= TOTAL, 120, "every event", [agent])
    finally:
        assert agent.stop() == 0
    assert lines(out) == [str(n) for n in range(TOTAL)]
    log = agent.tail(50_000)
    assert "agent.conf changed; reloading" in log
    # the sink restarted: its second file starts where the first one stopped
    assert len(list(out.glob("*"))) == 2
