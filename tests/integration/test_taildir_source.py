"""The taildir source on real files: groups and headers, rotation by rename (matching and not),
truncation, positions across restarts (Flume's file too), skipToEnd, idle files, full channel.
The source is driven by calling ``process()`` with a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.components import ManualClock, Status
from agent.registry import BuildContext
from agent.sources.taildir import TaildirSource
from tests.agent_helpers import channel, component, processor
from tests.source_helpers import take


def _source(tmp: Path, ch: Any, clock: ManualClock | None = None, **settings: Any) -> TaildirSource:
    base = {"filegroups": "g1", "filegroups.g1": f"{tmp}/logs/app\\.log",
            "positionFile": f"{tmp}/pos/taildir_position.json"}
    src: TaildirSource = component("source", "taildir", {**base, **settings},
                                   BuildContext(clock=clock or ManualClock()))
    src.channel_processor = processor(ch)
    return src


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """The directory the sources tail (filegroup g1 is ``logs/app\\.log``)."""
    path = tmp_path / "logs"
    path.mkdir()
    return path


@contextlib.asynccontextmanager
async def started(src: TaildirSource) -> AsyncIterator[TaildirSource]:
    await src.start()
    try:
        yield src
    finally:
        await src.stop()


async def _drain(src: TaildirSource) -> None:
    """Start, read everything there is, stop."""
    async with started(src):
        await _run(src)


async def _run(src: TaildirSource) -> None:
    """process() until it has nothing more to read."""
    for _ in range(1000):
        if await src.process() is Status.BACKOFF:
            return
    raise AssertionError("source never caught up")


def _append(path: Path, *lines: str) -> None:
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def _bodies(ch: Any) -> list[str]:
    return [e.body.decode() for e in take(ch)]


def test_groups_headers_and_offsets(tmp_path: Path, logs: Path) -> None:
    _append(logs / "app.log", "first", "second")
    (logs / "other.txt").write_text("not matched\n")

    async def main() -> None:
        ch = channel()
        src = _source(tmp_path, ch, fileHeader=True, fileHeaderKey="path",
                      byteOffsetHeader=True, **{"headers.g1.team": "ops"})
        await src.start()
        try:
            await _run(src)
        finally:
            await src.stop()
        events = take(ch)
        assert [e.body for e in events] == [b"first", b"second"]
        assert events[1].headers == {"team": "ops", "path": str(logs / "app.log"),
                                     "byteoffset": "6"}

    asyncio.run(main())


def test_rotation_out_of_the_pattern_loses_nothing_and_repeats_nothing(tmp_path: Path,
                                                                       logs: Path) -> None:
    app = logs / "app.log"

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch)) as src:
            _append(app, "a1", "a2")
            await _run(src)
            writer = open(app, "a")  # noqa: SIM115 (the application's handle, kept across the rename)
            writer.write("a3\n")
            writer.flush()
            os.rename(app, logs / "app.log.1")  # does not match app\.log
            writer.write("a4 written after the rename\n")
            writer.flush()
            _append(app, "b1")  # the new file
            await _run(src)
            assert {p.file for p in src.table.positions()} == {str(app), f"{app}.1"}
            writer.write("a5 late\n")
            writer.close()
            await _run(src)
        assert sorted(_bodies(ch)) == sorted(["a1", "a2", "a3", "a4 written after the rename",
                                              "b1", "a5 late"])

    asyncio.run(main())


def test_rotation_within_the_pattern_does_not_read_the_file_again(tmp_path: Path,
                                                                  logs: Path) -> None:
    app = logs / "app.log"

    async def main() -> None:
        ch = channel()
        pattern: dict[str, Any] = {"filegroups.g1": f"{logs}/app\\.log.*"}
        async with started(_source(tmp_path, ch, **pattern)) as src:
            _append(app, "a1", "a2")
            await _run(src)
            os.rename(app, logs / "app.log.1")
            _append(logs / "app.log.1", "a3")
            _append(app, "b1")
            await _run(src)
        assert sorted(_bodies(ch)) == ["a1", "a2", "a3", "b1"]

    asyncio.run(main())


def test_truncation_reads_the_file_again_from_the_start(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch)) as src:
            _append(app, "long line one", "long line two")
            await _run(src)
            with open(app, "w") as f:  # copytruncate
                f.write("new\n")
            await _run(src)
        assert _bodies(ch) == ["long line one", "long line two", "new"]

    asyncio.run(main())


def test_positions_survive_a_restart_and_flume_files_are_read(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    _append(app, "one", "two")
    pos_file = tmp_path / "pos" / "taildir_position.json"

    async def main() -> None:
        ch = channel()
        await _drain(_source(tmp_path, ch))
        assert json.loads(pos_file.read_text()) == [
            {"inode": app.stat().st_ino, "pos": 8, "file": str(app)}]
        _append(app, "three")
        await _drain(_source(tmp_path, ch))
        assert _bodies(ch) == ["one", "two", "three"]
        # a position file as Flume writes it
        pos_file.write_text(f'[{{"inode":{app.stat().st_ino},"pos":4,"file":"{app}"}}]')
        await _drain(_source(tmp_path, ch))
        assert _bodies(ch) == ["two", "three"]

    asyncio.run(main())


def test_broken_position_file_is_set_aside(tmp_path: Path, logs: Path) -> None:
    _append(logs / "app.log", "x")
    (tmp_path / "pos").mkdir()
    (tmp_path / "pos" / "taildir_position.json").write_text("[{garbage")

    async def main() -> None:
        ch = channel()
        await _drain(_source(tmp_path, ch))
        assert _bodies(ch) == ["x"]

    asyncio.run(main())
    assert (tmp_path / "pos" / "taildir_position.json.broken").read_text() == "[{garbage"


def test_skip_to_end_only_skips_what_existed_at_start(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    _append(app, "old")

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch, skipToEnd=True)) as src:
            _append(app, "new")
            await _run(src)
            os.rename(app, logs / "gone")
            _append(app, "fresh file")
            await _run(src)
        assert sorted(_bodies(ch)) == ["fresh file", "new"]

    asyncio.run(main())


def test_partial_line_waits_for_its_newline_or_for_idle_timeout(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    clock = ManualClock()

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch, clock, idleTimeout=1000)) as src:
            with open(app, "a") as f:
                f.write("complete\npart")
            await _run(src)
            assert _bodies(ch) == ["complete"]
            with open(app, "a") as f:
                f.write("ial\nno newline")
            await _run(src)
            assert _bodies(ch) == ["partial"]
            clock.advance(2)
            await _run(src)
            assert _bodies(ch) == ["no newline"]

    asyncio.run(main())


def test_full_channel_backs_off_and_keeps_the_position(tmp_path: Path, logs: Path) -> None:
    _append(logs / "app.log", *[f"line {i}" for i in range(25)])

    async def main() -> None:
        ch = channel(capacity=10, transaction_capacity=10)
        src = _source(tmp_path, ch, batchSize=10)
        await src.start()
        got: list[str] = []
        try:
            for _ in range(10):
                status = await src.process()
                got += _bodies(ch)
                if status is not Status.READY and len(got) == 25:
                    break
        finally:
            await src.stop()
        assert got == [f"line {i}" for i in range(25)]
        assert src.counter.counters["ChannelWriteFail"] >= 1

    asyncio.run(main())


def test_rotation_of_a_closed_idle_file_is_found_by_inode(tmp_path: Path, logs: Path) -> None:
    app = logs / "app.log"
    clock = ManualClock()

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch, clock, idleTimeout=1000)) as src:
            _append(app, "before idle")
            await _run(src)
            clock.advance(2)
            await _run(src)  # idle: the handle is closed
            assert not src._open
            _append(app, "written while closed")
            os.rename(app, logs / "app.log.2024-01-01")
            await _run(src)
        assert _bodies(ch) == ["before idle", "written while closed"]

    asyncio.run(main())


def test_a_new_file_is_recorded_at_once_not_at_the_next_interval(tmp_path: Path,
                                                                 logs: Path) -> None:
    app = logs / "app.log"
    clock = ManualClock()

    async def main() -> None:
        ch = channel()
        async with started(_source(tmp_path, ch, clock, writePosInterval=60_000)) as src:
            _append(app, "x")
            await _run(src)  # the clock does not move: only the new file triggers a write
            text = (tmp_path / "pos" / "taildir_position.json").read_text()
            assert json.loads(text)[0]["file"] == str(app)

    asyncio.run(main())
