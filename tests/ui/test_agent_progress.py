"""The agent's progress lines: the periodic events/s and channel fill line (pure, from
counter snapshots) and the INFO line per spool file completed (a real spooldir agent)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from agent.config.loader import load_config
from agent.progress import ProgressLine
from agent.runtime import serve_agent


def snap(accepted: int, drained: int, size: int) -> dict[str, dict[str, str]]:
    return {"SOURCE.r1": {"EventAcceptedCount": str(accepted)},
            "SINK.k1": {"EventDrainSuccessCount": str(drained)},
            "CHANNEL.c1": {"ChannelSize": str(size), "ChannelCapacity": "1000"}}


def test_periodic_line_rates_and_fill_and_quiet_when_idle() -> None:
    progress = ProgressLine("a1")
    assert progress.next(0.0, snap(0, 0, 0)) is None  # the first call only starts
    assert progress.next(30.0, snap(0, 0, 0)) is None  # idle: quiet
    assert progress.next(60.0, snap(3000, 2700, 300)) == (
        "agent a1: sources r1 100.0 events/s; sinks k1 90.0 events/s; "
        "channels c1 30.0% full (300/1000)")
    assert progress.next(90.0, snap(3000, 3000, 0)) == (
        "agent a1: sources r1 0.0 events/s; sinks k1 10.0 events/s; "
        "channels c1 0.0% full (0/1000)")
    assert progress.next(120.0, snap(3000, 3000, 0)) == (  # once more, showing it stopped
        "agent a1: sources r1 0.0 events/s; sinks k1 0.0 events/s; "
        "channels c1 0.0% full (0/1000)")
    assert progress.next(150.0, snap(3000, 3000, 0)) is None


def test_a_spooldir_agent_logs_each_file_and_its_progress(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.log").write_text("".join(f"line {i}\n" for i in range(250)))
    conf = tmp_path / "a.conf"
    conf.write_text(f"""a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
""")
    result = load_config(str(conf), "a1")
    config = result.config
    assert config is not None, result.issues

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(serve_agent(config, stop_event=stop, grace=1,
                                               progress_interval=0.2))
        for _ in range(300):  # bounded polling: the file completed and a progress line
            messages = [r.getMessage() for r in caplog.records]
            if any("finished" in m for m in messages) and \
                    any(m.startswith("agent a1: sources") for m in messages):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    finished = [m for m in messages if "finished" in m]
    assert len(finished) == 1
    assert "a.log" in finished[0] and ": 250 lines, 2140 bytes in " in finished[0]
    line = next(m for m in messages if m.startswith("agent a1: sources"))
    assert " events/s; sinks k1 " in line and "% full (" in line
