"""Hostile spool-directory entries against a real ``flume-agent``: a self-referencing
symlink, a dangling one, a FIFO, a name with a line break, a name that is not UTF-8 and a
symlink to a file outside the spool directory, all in one directory with ordinary files.

Each bad entry gets one WARNING naming it and saying why (not one per scan), every ordinary
file arrives complete, and the agent keeps running and stops cleanly. Before the fix the
symlink loop alone stopped the whole source: 0 of 1,000 control lines arrived.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.procs import Proc, start_agent, wait_until

CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.pollDelay = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
"""


@dataclass
class Run:
    agent: Proc
    spool: Path
    out: Path
    expected: list[bytes]

    def delivered(self) -> list[bytes]:
        return [line for p in sorted(self.out.iterdir()) for line in p.read_bytes().splitlines()]

    def log(self) -> str:
        return self.agent.log.read_text(errors="replace")


def lines(prefix: str, count: int) -> bytes:
    return b"".join(b"%s %d\n" % (prefix.encode(), i) for i in range(count))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    work = tmp_path_factory.mktemp("hostile-entries")
    spool, out = work / "spool", work / "out"
    spool.mkdir()
    out.mkdir()
    outside = work / "outside.log"
    outside.write_bytes(lines("outside", 5))
    (spool / "control-1.log").write_bytes(lines("control-1", 1000))
    os.symlink("loop", spool / "loop")
    os.symlink(work / "no-such-file", spool / "dangling.log")
    os.mkfifo(spool / "pipe")
    (spool / "new\nline.log").write_bytes(b"never read\n")
    with open(os.path.join(os.fsencode(spool), b"caf\xe9.log"), "wb") as f:
        f.write(lines("latin", 3))
    os.symlink(outside, spool / "outside-link.log")
    conf = work / "agent.conf"
    conf.write_text(CONFIG.format(spool=spool, out=out))
    agent = start_agent(conf, "a1", work / "agent.log", {})
    expected = sorted(lines("control-1", 1000).splitlines() + lines("latin", 3).splitlines()
                      + lines("outside", 5).splitlines())
    result = Run(agent, spool, out, expected)
    try:
        wait_until(lambda: sorted(result.delivered()) == expected, 60,
                   "every ordinary file's lines", [agent])
        # one more file after the first scans: proves the bad entries are rescanned quietly
        (work / "control-2.log").write_bytes(lines("control-2", 500))
        os.rename(work / "control-2.log", spool / "control-2.log")
        result.expected = sorted(expected + lines("control-2", 500).splitlines())
        wait_until(lambda: sorted(result.delivered()) == result.expected, 60,
                   "the file dropped later", [agent])
        yield result
    finally:
        agent.stop()


def skip_lines(run: Run, name: str) -> list[str]:
    return [line for line in run.log().splitlines() if f"skipping {name}:" in line]


def test_every_ordinary_file_arrives_complete_and_once(run: Run) -> None:
    assert sorted(run.delivered()) == run.expected
    assert run.agent.alive()


@pytest.mark.parametrize(("entry", "why"), [
    ("loop", "a symbolic link that loops (Too many levels of symbolic links)"),
    ("dangling.log", "a dangling symbolic link"),
    ("pipe", "a FIFO (named pipe)"),
    ("new\\nline.log", "its name contains a line break"),
])
def test_each_bad_entry_is_reported_once_by_name(run: Run, entry: str, why: str) -> None:
    (line,) = skip_lines(run, str(run.spool / entry))
    assert why in line and "WARNING" in line
    assert os.path.lexists(run.spool / entry.replace("\\n", "\n"))  # left where it was


def test_a_name_that_is_not_utf8_is_read_and_a_symlink_outside_is_followed(run: Run) -> None:
    names = os.listdir(os.fsencode(run.spool))
    assert b"caf\xe9.log.COMPLETED" in names and b"outside-link.log.COMPLETED" in names


def test_the_agent_stops_cleanly_afterwards(run: Run) -> None:
    assert run.agent.stop() == 0
    assert "Traceback" not in run.log()
