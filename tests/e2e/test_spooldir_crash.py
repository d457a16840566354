"""kill -9 at random moments, restart, and check what arrived (real processes).

Two pipelines:

1. ``spooldir -> a channel processor that appends to a file`` in a child process: this isolates
   the source's own guarantee. Every line must arrive (no gap) and each crash may repeat at
   most one batch, because the position is recorded only after the batch was accepted.
2. ``flume-agent``: spooldir -> memory channel -> file_roll. A memory channel loses what it
   holds when the process is killed (Flume's documented trade-off, not the source's doing),
   so here at most ``capacity`` lines per crash may be missing; duplicates stay bounded by
   one source batch per crash and every file still ends up ``.COMPLETED``.
3. ``flume-agent``: spooldir -> file channel -> file_roll. The durable channel closes that
   gap: the delivered lines are a superset of the input with no gap; each crash repeats at
   most one source batch (committed to the channel, position not yet recorded) plus one sink
   batch (written, take not yet logged).
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FILES, LINES, BATCH, CAPACITY = 100, 100, 50, 1000

HARNESS = """
import asyncio, os, sys, time
from agent.components import Status
from agent.sources.spooldir import SpoolDirSource
from agent.sources.spooldir.settings import SpoolDirSettings

class AppendToFile:
    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    def process_event_batch(self, events):
        os.write(self.fd, b"".join(e.body + b"\\n" for e in events))
        time.sleep(0.002)  # a slow commit: kills often land before the position is recorded
    def process_event(self, event):
        self.process_event_batch([event])
    async def synced(self):
        pass

async def main():
    s = SpoolDirSettings.from_mapping(
        {"spoolDir": sys.argv[1], "batchSize": int(sys.argv[3]), "pollDelay": 20})
    src = SpoolDirSource("r1", s, watch=False)
    src.channel_processor = AppendToFile(sys.argv[2])
    await src.start()
    while True:
        status = await src.process()
        await asyncio.sleep(0.02 if status is Status.BACKOFF else 0.001)

asyncio.run(main())
"""

AGENT_CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.batchSize = {batch}
a1.sources.r1.pollDelay = 50
a1.sources.r1.channels = c1
a1.channels.c1.type = {channel}
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = {batch}
{extra}
"""


def make_input(spool: Path, lines_per_file: int = LINES) -> list[str]:
    spool.mkdir()
    expected = []
    for f in range(FILES):
        lines = [f"f{f:03d}-{i:05d}" for i in range(lines_per_file)]
        (spool / f"in{f:03d}.log").write_text("\n".join(lines) + "\n")
        os.utime(spool / f"in{f:03d}.log", (1000 + f, 1000 + f))
        expected += lines
    return expected


def all_completed(spool: Path) -> bool:
    return sum(p.name.endswith(".COMPLETED") for p in spool.iterdir()) == FILES


LINE_BYTES = len("f000-00000\n")


def crash_and_restart(command: list[str], spool: Path, seed: int, crashes: int, total: int,
                      progress) -> int:
    """Run, SIGKILL at seeded random points of progress, restart; then run to the end.

    Kill points are fractions of the input already delivered (plus a random few ms), so they
    fall mid-stream however fast the machine is. Returns how many kills hit a process that
    still had files to read.
    """
    rng = random.Random(seed)
    points = sorted(rng.uniform(0.05, 0.9) * total for _ in range(crashes))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = 0
    for point in points:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while progress() < point and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if all_completed(spool):
            break
        killed += 1
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not all_completed(spool) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)  # a graceful stop drains the channel
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return killed


def check_order_per_file(delivered: list[str]) -> None:
    """Within a file, lines only go forward, except a replay that starts at an earlier line."""
    by_file: dict[str, list[int]] = collections.defaultdict(list)
    for line in delivered:
        name, _, number = line.partition("-")
        by_file[name].append(int(number))
    for numbers in by_file.values():
        for a, b in itertools.pairwise(numbers):
            assert b == a + 1 or b <= a, (a, b)  # next line, or a replay of a recent batch


def test_source_alone_never_loses_a_line_and_repeats_at_most_a_batch_per_crash(
    tmp_path: Path,
) -> None:
    spool, out = tmp_path / "spool", tmp_path / "delivered.txt"
    expected = make_input(spool)
    command = [sys.executable, "-c", HARNESS, str(spool), str(out), str(BATCH)]

    def delivered() -> list[str]:
        return out.read_text().splitlines() if out.exists() else []

    crashes = crash_and_restart(
        command, spool, seed=7, crashes=6, total=len(expected),
        progress=lambda: (out.stat().st_size if out.exists() else 0) // LINE_BYTES,
    )
    got = delivered()
    assert crashes >= 4, "the kills should land while files are being read"
    assert all_completed(spool)
    assert set(got) == set(expected)  # superset of the input, nothing invented, no gap
    assert len(got) - len(expected) <= BATCH * crashes
    check_order_per_file(got)


def test_flume_agent_with_memory_channel_survives_kill_9(tmp_path: Path) -> None:
    spool, out = tmp_path / "spool", tmp_path / "out"
    out.mkdir()
    expected = make_input(spool, lines_per_file=200)  # an agent is fast: give it work
    conf = tmp_path / "agent.conf"
    conf.write_text(AGENT_CONFIG.format(spool=spool, out=out, batch=BATCH, capacity=CAPACITY,
                                        channel="memory", extra=""))
    agent = ROOT / ".venv" / "bin" / "flume-agent"
    command = [str(agent)] if agent.exists() else [sys.executable, "-m", "agent.cli"]
    command += ["-f", str(conf), "-n", "a1", "--grace", "2"]

    def delivered() -> list[str]:
        return [line for p in sorted(out.iterdir()) for line in p.read_text().splitlines()]

    crashes = crash_and_restart(
        command, spool, seed=11, crashes=5, total=len(expected),
        progress=lambda: sum(p.stat().st_size for p in out.iterdir()) // LINE_BYTES,
    )
    got = delivered()
    assert crashes >= 3, "the kills should land while files are being read"
    assert all_completed(spool)
    assert set(got) <= set(expected)
    missing = len(set(expected) - set(got))
    assert missing <= CAPACITY * crashes, missing  # only what the memory channel held
    assert len(got) - len(set(got)) <= BATCH * crashes


def test_flume_agent_with_file_channel_loses_nothing_across_kill_9(tmp_path: Path) -> None:
    spool, out = tmp_path / "spool", tmp_path / "out"
    out.mkdir()
    expected = make_input(spool, lines_per_file=200)
    conf = tmp_path / "agent.conf"
    conf.write_text(AGENT_CONFIG.format(
        spool=spool, out=out, batch=BATCH, capacity=CAPACITY, channel="file",
        extra=f"a1.channels.c1.dataDirs = {tmp_path / 'channel'}"))
    command = [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", "a1", "--grace", "2"]

    def delivered() -> list[str]:
        return [line for p in sorted(out.iterdir()) for line in p.read_text().splitlines()]

    crashes = crash_and_restart(
        command, spool, seed=13, crashes=5, total=len(expected),
        progress=lambda: sum(p.stat().st_size for p in out.iterdir()) // LINE_BYTES,
    )
    got = delivered()
    assert crashes >= 3, "the kills should land while files are being read"
    assert all_completed(spool)
    assert set(got) == set(expected)  # superset of the input, nothing invented, no gap
    assert len(got) - len(expected) <= 2 * BATCH * crashes
