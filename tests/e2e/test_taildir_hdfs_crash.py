"""kill -9 a real ``flume-agent`` running taildir -> file channel -> hdfs (gzip) while the
tailed log grows and is rotated away (renamed to names the pattern does not match), also
while the agent is down, then restart it. Nothing may be lost: every line ends up in the
sink's files, files a crash left in use are cut back and renamed at the next start, and after
a graceful stop no in-use file remains. Duplicates are allowed (at-least-once) but bounded.

A log file that is created *and* rotated away while the agent is down was never seen, so no
tailer can know it: each file here lives through at least one running period of the agent.
"""

from __future__ import annotations

import collections
import gzip
import io
import os
import random
import time
from pathlib import Path

import pytest

from agent.sinks.hdfs_format import valid_length
from tests.e2e.procs import Proc, start_agent, wait_until

pytestmark = pytest.mark.e2e

CONF = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = g1
a1.sources.r1.filegroups.g1 = {work}/logs/app\\\\.log
a1.sources.r1.positionFile = {work}/taildir_position.json
a1.sources.r1.writePosInterval = 200
a1.sources.r1.batchSize = 100
a1.sources.r1.idleTimeout = 2000
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.dataDirs = {work}/channel/data
a1.channels.c1.checkpointDir = {work}/channel/checkpoint
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = hdfs
a1.sinks.k1.hdfs.path = file://{work}/out/%Y%m%d
a1.sinks.k1.hdfs.useLocalTimeStamp = true
a1.sinks.k1.hdfs.filePrefix = events
a1.sinks.k1.hdfs.fileType = CompressedStream
a1.sinks.k1.hdfs.codeC = gzip
a1.sinks.k1.hdfs.rollCount = 700
a1.sinks.k1.hdfs.rollSize = 0
a1.sinks.k1.hdfs.rollInterval = 0
a1.sinks.k1.hdfs.batchSize = 100
a1.sinks.k1.hdfs.inUseJournal = {work}/hdfs-journal.json
a1.sinks.k1.channel = c1
"""


class Log:
    """The application: appends numbered lines; ``rotate`` renames the log away (to a name
    the pattern does not match), writes one last line through the old handle, and starts a
    new log."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.next = 0
        self.rotations = 0
        self.out = open(logs / "app.log", "a")  # noqa: SIM115 (kept open across renames)

    def write(self, n: int, pace: float = 0.0) -> None:
        for _ in range(n):
            self.out.write(f"L{self.next:06d}\n")
            self.next += 1
            if self.next % 50 == 0:
                self.out.flush()
                time.sleep(pace)
        self.out.flush()

    def rotate(self) -> None:
        self.rotations += 1
        os.rename(self.logs / "app.log", self.logs / f"app.log.{self.rotations}")
        self.write(1)
        self.out.close()
        self.out = open(self.logs / "app.log", "a")  # noqa: SIM115


def _delivered(out: Path) -> list[str]:
    """Every line in the sink's files, in-use ones included (cut at their last flush)."""
    lines: list[str] = []
    for path in sorted(out.rglob("events.*")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # renamed since the listing: the next poll reads it by its new name
        data = data[:valid_length(data, "gzip")]
        if data:
            with gzip.open(io.BytesIO(data)) as f:
                lines += f.read().decode().splitlines()
    return lines


def test_taildir_file_channel_hdfs_survive_kill_9(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "agent.conf"
    conf.write_text(CONF.format(work=tmp_path))
    positions = tmp_path / "taildir_position.json"
    log_file = tmp_path / "agent.log"
    app = Log(tmp_path / "logs")
    rng = random.Random(42)
    agent: Proc | None = None

    def start() -> Proc:
        """Start the agent and wait until its source has recorded the files it tails."""
        before = positions.stat().st_mtime_ns if positions.exists() else 0
        proc = start_agent(conf, "a1", log_file, {})
        wait_until(lambda: positions.exists() and positions.stat().st_mtime_ns != before, 60,
                   "the agent's source to start", [proc])
        return proc

    try:
        app.write(300)
        agent = start()
        for _ in range(4):
            app.write(rng.randrange(300, 900), pace=0.01)  # the agent reads as it grows
            agent.kill()
            app.write(rng.randrange(50, 300))  # written while the agent is down
            app.rotate()  # rotated away while the agent is down
            app.write(rng.randrange(50, 300))
            agent = start()
            app.write(rng.randrange(100, 400), pace=0.01)
            app.rotate()  # rotated away while the agent runs
        app.write(500)
        expected = {f"L{i:06d}" for i in range(app.next)}
        try:
            wait_until(lambda: expected <= set(_delivered(tmp_path / "out")), 120,
                       "every line in the sink's files", [agent])
        except AssertionError as exc:
            missing = sorted(expected - set(_delivered(tmp_path / "out")))
            raise AssertionError(f"{len(missing)} line(s) missing, from {missing[:3]} to "
                                 f"{missing[-3:]}; positions: {positions.read_text()}\n"
                                 f"{exc}") from None
    finally:
        code = agent.stop() if agent is not None else 0
    assert code == 0, agent.tail() if agent is not None else ""
    lines = _delivered(tmp_path / "out")
    assert set(lines) == expected
    assert not list((tmp_path / "out").rglob("*.tmp")), "in-use files left after a clean stop"
    repeats = sum(n - 1 for n in collections.Counter(lines).values())
    # each crash may repeat what was delivered but not yet recorded: the source batches of
    # one position-file interval plus one sink batch (written, take not yet logged)
    assert repeats <= 4 * 1000, repeats
