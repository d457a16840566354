"""Spool files that change while the source reads them: truncated, grown, rewritten in place,
deleted, or replaced by another file. Real files, the real source and channel processor; the
change happens at a chosen moment (right after the file's first batch reached the channel),
so every case is deterministic. Each is reported clearly (one log line naming the file and
what happened; a ``.reason`` file when it is set aside), every other file arrives complete,
and the source keeps reading files dropped afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from agent.components import Status
from agent.sources.spooldir import SpoolDirSource
from agent.sources.spooldir.settings import SpoolDirSettings
from protocol.event import Event

LINES = [f"line {i:03d}".encode() for i in range(100)]


class HookedProcessor:
    """Accepts every batch; after the first batch from ``target`` calls ``hook`` once."""

    def __init__(self, target: str, hook: Callable[[], None]) -> None:
        self.target = target
        self.hook: Callable[[], None] | None = hook
        self.bodies: dict[str, list[bytes]] = {}

    def process_event(self, event: Event) -> None:
        self.process_event_batch([event])

    def process_event_batch(self, events: Sequence[Event]) -> None:
        name = os.path.basename(events[0].headers["file"])
        self.bodies.setdefault(name, []).extend(e.body for e in events)
        if name == self.target and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()

    async def synced(self) -> None:
        """Nothing to wait for: no file channel."""


def run(spool: Path, target: str, hook: Callable[[], None]) -> HookedProcessor:
    """Read the spool dir (target first, then before.log... by age), changing ``target``
    after its first batch; then drop one more file and read that too."""
    settings = SpoolDirSettings.from_mapping(
        {"spoolDir": str(spool), "batchSize": 10, "fileHeader": True})
    src = SpoolDirSource("r1", settings, watch=False)
    proc = HookedProcessor(target, hook)
    src.channel_processor = proc

    async def go() -> None:
        await src.start()
        while await src.process() is not Status.BACKOFF:
            pass
        (spool.parent / "later.log").write_bytes(b"later\n")
        os.rename(spool.parent / "later.log", spool / "later.log")
        while await src.process() is not Status.BACKOFF:
            pass
        await src.stop()

    asyncio.run(go())
    return proc


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    (d / "target.log").write_bytes(b"".join(line + b"\n" for line in LINES))
    os.utime(d / "target.log", (1000, 1000))
    (d / "other.log").write_bytes(b"other 1\nother 2\n")
    os.utime(d / "other.log", (2000, 2000))
    return d


def reason(spool: Path) -> str:
    assert not (spool / "target.log").exists()
    return (spool / ".flumespool" / "failed" / "target.log.reason").read_text()


def assert_others_complete(proc: HookedProcessor) -> None:
    assert proc.bodies["other.log"] == [b"other 1", b"other 2"]
    assert proc.bodies["later.log"] == [b"later"]  # the source kept running


def one_line(caplog: pytest.LogCaptureFixture, words: str) -> str:
    (line,) = [r.getMessage() for r in caplog.records if words in r.getMessage()]
    return line


def test_truncated_while_read_is_set_aside_as_truncated(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        proc = run(spool, "target.log", lambda: os.truncate(spool / "target.log", 90))
    assert proc.bodies["target.log"] == LINES  # read whole when reading began
    text = reason(spool)
    assert "problem: it was truncated from 900 bytes to 90 bytes while it was being read" in text
    assert "delivered: 100 events: bytes 0 to 899 of the file" in text
    assert "It is now shorter (90 bytes) than what was delivered (900 bytes)" in text
    assert "target.log: it was truncated" in one_line(caplog, "problem with")
    assert_others_complete(proc)


def test_grown_while_read_says_how_to_deliver_only_the_new_lines(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def append() -> None:
        with open(spool / "target.log", "ab") as f:
            f.write(b"appended 1\nappended 2\n")

    with caplog.at_level(logging.WARNING):
        proc = run(spool, "target.log", append)
    assert proc.bodies["target.log"] == LINES
    text = reason(spool)
    assert "it grew from 900 bytes to 922 bytes while it was being read" in text
    assert "tail -c +901 " in text
    assert "the other 22 bytes not" in one_line(caplog, "problem with")
    assert_others_complete(proc)


def test_rewritten_in_place_while_read_is_set_aside_as_rewritten(spool: Path) -> None:
    def rewrite() -> None:
        with open(spool / "target.log", "r+b") as f:
            f.write(b"LINE")
        os.utime(spool / "target.log", (5000, 5000))

    proc = run(spool, "target.log", rewrite)
    text = reason(spool)
    assert "it was rewritten in place (same size, 900 bytes) while it was being read" in text
    assert "do not drop it into the spool directory again" in text
    assert_others_complete(proc)


def test_deleted_while_read_is_still_delivered_whole_and_logged(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        proc = run(spool, "target.log", lambda: os.unlink(spool / "target.log"))
    assert proc.bodies["target.log"] == LINES  # the open descriptor still reads it
    assert "its events were delivered" in one_line(caplog, "vanished before it could be retired")
    assert not (spool / ".flumespool" / "failed").exists()
    assert_others_complete(proc)


def test_replaced_while_read_delivers_both_files_whole(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def replace() -> None:
        (spool.parent / "new.log").write_bytes(b"new 1\nnew 2\n")
        os.rename(spool.parent / "new.log", spool / "target.log")

    with caplog.at_level(logging.WARNING):
        proc = run(spool, "target.log", replace)
    assert proc.bodies["target.log"] == [*LINES, b"new 1", b"new 2"]
    line = one_line(caplog, "was replaced by another file")
    assert "delivered whole (100 events" in line and "read as a new file" in line
    assert (spool / "target.log.COMPLETED").read_bytes() == b"new 1\nnew 2\n"
    assert_others_complete(proc)
