"""The hdfs sink on the local filesystem (plain paths and file:// URLs): rolled files read
back, compressed and SequenceFile formats, escapes into directories, timers, maxOpenFiles,
failed writes, and files a crash left in use."""

from __future__ import annotations

import asyncio
import bz2
import gzip
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.channels.memory import MemoryChannel
from agent.components import ManualClock, Status
from agent.registry import BuildContext
from agent.sinks.hdfs import HdfsSink
from protocol.event import Event
from tests.agent_helpers import channel, component
from tests.unit.test_hdfs_logic import read_sequence_file

T0 = int(datetime(2024, 3, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)


def _sink(tmp: Path, clock: ManualClock | None = None, **settings: Any) -> HdfsSink:
    base = {"hdfs.path": str(tmp / "out"), "hdfs.fileType": "DataStream",
            "hdfs.inUseJournal": str(tmp / "journal.json"), "hdfs.timeZone": "UTC"}
    sink: HdfsSink = component("sink", "hdfs", {**base, **settings},
                               BuildContext(clock=clock or ManualClock(T0 / 1000)))
    sink.channel = channel(capacity=10_000, transaction_capacity=1000)
    return sink


def _put(ch: MemoryChannel, events: list[Event]) -> None:
    tx = ch.transaction()
    tx.begin()
    for e in events:
        tx.put(e)
    tx.commit()
    tx.close()


def _events(n: int, start: int = 0, **headers: str) -> list[Event]:
    return [Event({"timestamp": str(T0), **headers}, f"line {i}".encode())
            for i in range(start, start + n)]


async def _drain(sink: HdfsSink) -> None:
    while await sink.process() is Status.READY:
        pass


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_data_stream_rolls_by_count_and_in_use_files_are_renamed(tmp_path: Path) -> None:
    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.rollCount": 10, "hdfs.rollSize": 0,
                                  "hdfs.batchSize": 7})
        await sink.start()
        _put(sink.channel, _events(25))
        await _drain(sink)
        open_now = [p.name for p in _files(tmp_path / "out")]
        assert sum(name.endswith(".tmp") for name in open_now) == 1
        await sink.stop()
        files = _files(tmp_path / "out")
        assert [len(p.read_bytes().splitlines()) for p in files] == [10, 10, 5]
        assert all(p.name.startswith("FlumeData.") and not p.name.endswith(".tmp")
                   for p in files)
        lines = [line for p in files for line in p.read_bytes().splitlines()]
        assert lines == [f"line {i}".encode() for i in range(25)]
        c = sink.counter.counters
        assert (c["ConnectionCreatedCount"], c["ConnectionClosedCount"]) == (3, 3)
        assert c["EventDrainSuccessCount"] == 25

    asyncio.run(main())


@pytest.mark.parametrize(("codec", "opener", "ext"), [("gzip", gzip.open, ".gz"),
                                                      ("bzip2", bz2.open, ".bz2")])
def test_compressed_stream_files_read_back(tmp_path: Path, codec: str, opener: Any,
                                           ext: str) -> None:
    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.fileType": "CompressedStream", "hdfs.codeC": codec,
                                  "hdfs.rollCount": 0, "hdfs.rollSize": 0,
                                  "hdfs.batchSize": 10, "hdfs.filePrefix": "events"})
        await sink.start()
        for start in range(0, 30, 10):  # three flushes: three members in one file
            _put(sink.channel, _events(10, start))
            await _drain(sink)
        in_use = _files(tmp_path / "out")
        assert len(in_use) == 1 and in_use[0].name.endswith(ext + ".tmp")
        with opener(in_use[0], "rb") as f:  # readable while still open
            assert len(f.read().splitlines()) == 30
        await sink.stop()
        (done,) = _files(tmp_path / "out")
        assert done.name.startswith("events.") and done.name.endswith(ext)
        with opener(done, "rb") as f:
            assert f.read().splitlines() == [f"line {i}".encode() for i in range(30)]

    asyncio.run(main())


def test_sequence_file_is_the_default_file_type(tmp_path: Path) -> None:
    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.fileType": "SequenceFile", "hdfs.writeFormat": "Text"})
        await sink.start()
        _put(sink.channel, _events(3))
        await _drain(sink)
        await sink.stop()
        (done,) = _files(tmp_path / "out")
        value_class, records = read_sequence_file(done.read_bytes())
        assert value_class == "org.apache.hadoop.io.Text"
        assert records == [(T0, b"\x06line " + str(i).encode()) for i in range(3)]

    asyncio.run(main())


def test_escapes_make_directories_per_header_and_rounded_time(tmp_path: Path) -> None:
    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.path": f"file://{tmp_path}/out/%{{host}}/%Y%m%d/%H%M",
                                  "hdfs.round": True, "hdfs.roundValue": 10,
                                  "hdfs.roundUnit": "minute", "hdfs.filePrefix": "%{host}-log"})
        await sink.start()
        late = [Event({"timestamp": str(T0 + 17 * 60_000), "host": "b"}, b"late")]
        _put(sink.channel, _events(2, host="a") + late)
        await _drain(sink)
        await sink.stop()
        files = [p.relative_to(tmp_path / "out") for p in _files(tmp_path / "out")]
        assert [str(p.parent) for p in files] == ["a/20240301/1000", "b/20240301/1010"]
        assert files[0].name.startswith("a-log.") and files[1].name.startswith("b-log.")

    asyncio.run(main())


def test_roll_interval_and_idle_timeout_close_files_on_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(T0 / 1000)

    async def main() -> None:
        sink = _sink(tmp_path, clock, **{"hdfs.rollInterval": 30, "hdfs.idleTimeout": 10,
                                         "hdfs.rollCount": 0, "hdfs.rollSize": 0})
        await sink.start()
        _put(sink.channel, _events(1))
        await _drain(sink)
        clock.advance(9)
        await sink.roll_due()
        assert _files(tmp_path / "out")[0].name.endswith(".tmp")
        clock.advance(1)  # idle for 10 s
        await sink.roll_due()
        assert not _files(tmp_path / "out")[0].name.endswith(".tmp")
        assert not sink.buckets
        _put(sink.channel, _events(1, 1))
        await _drain(sink)
        for _ in range(4):  # written to every 8 s: never idle, but rolled after 30 s
            clock.advance(8)
            _put(sink.channel, _events(1, 2))
            await _drain(sink)
            await sink.roll_due()
        names = [p.name for p in _files(tmp_path / "out")]  # rolled at 42 s, 32 s after open
        assert len(names) == 2 and not any(n.endswith(".tmp") for n in names)
        assert len((tmp_path / "out" / names[1]).read_bytes().splitlines()) == 5
        await sink.stop()

    asyncio.run(main())


def test_max_open_files_closes_the_least_recently_used(tmp_path: Path) -> None:
    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.path": f"{tmp_path}/out/%{{k}}", "hdfs.maxOpenFiles": 2,
                                  "hdfs.rollCount": 0, "hdfs.rollSize": 0})
        await sink.start()
        for key in ("a", "b", "a", "c"):
            _put(sink.channel, _events(1, k=key))
            await _drain(sink)
        open_files = {p.parent.name for p in _files(tmp_path / "out") if p.name.endswith(".tmp")}
        assert open_files == {"a", "c"}
        await sink.stop()

    asyncio.run(main())


def test_failed_write_rolls_back_and_keeps_the_events(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")

    async def main() -> None:
        sink = _sink(tmp_path, **{"hdfs.path": f"{tmp_path}/blocker/sub"})
        await sink.start()
        _put(sink.channel, _events(3))
        assert await sink.process() is Status.RETRY
        assert sink.channel.size() == 3
        assert sink.counter.counters["EventWriteFail"] == 1
        await sink.stop()

    asyncio.run(main())


def test_files_left_in_use_by_a_crash_are_cut_and_renamed_at_start(tmp_path: Path) -> None:
    async def main() -> None:
        crashed = _sink(tmp_path, **{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "gzip",
                                     "hdfs.rollCount": 0, "hdfs.rollSize": 0})
        await crashed.start()
        _put(crashed.channel, _events(5))
        await _drain(crashed)
        (in_use,) = _files(tmp_path / "out")
        with open(in_use, "ab") as f:  # a batch torn by kill -9 in the middle of a write
            f.write(gzip.compress(b"torn batch\n")[:15])
        # no stop(): the process died. The next start finds the file through the journal.
        fresh = _sink(tmp_path, **{"hdfs.fileType": "CompressedStream", "hdfs.codeC": "gzip"})
        await fresh.start()
        await fresh.stop()
        (done,) = _files(tmp_path / "out")
        assert done.name == in_use.name.removesuffix(".tmp")
        with gzip.open(done) as f:
            assert f.read().splitlines() == [f"line {i}".encode() for i in range(5)]
        assert not os.path.exists(tmp_path / "journal.json") or \
            (tmp_path / "journal.json").read_text() == "[]"

    asyncio.run(main())


def test_roll_size_rolls_after_the_event_that_reaches_it(tmp_path: Path) -> None:
    async def main() -> None:
        # bodies of 6 bytes ("line 0"): 24 bytes < 25 takes a 5th event, then the file rolls
        sink = _sink(tmp_path, **{"hdfs.rollSize": 25, "hdfs.rollCount": 0,
                                  "hdfs.batchSize": 100})
        await sink.start()
        _put(sink.channel, _events(10))
        await _drain(sink)
        await sink.stop()
        files = _files(tmp_path / "out")
        assert [len(p.read_bytes().splitlines()) for p in files] == [5, 5]

    asyncio.run(main())
