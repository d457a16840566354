"""The durable file channel: what was committed survives a restart; takes are remembered."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.channels.file import LOG_NAME, DirectoryLockedError, FileChannel
from agent.components import ChannelFullException
from protocol.event import EMPTY_HEADERS, Event, events_with


def _put(ch: FileChannel, bodies: list[str]) -> None:
    tx = ch.transaction()
    tx.begin()
    for b in bodies:
        tx.put(Event({"b": b}, b.encode()))
    tx.commit()
    tx.close()


def _take(ch: FileChannel, n: int, commit: bool = True) -> list[str]:
    tx = ch.transaction()
    tx.begin()
    got = [e.body.decode() for e in tx.take_batch(n)]
    tx.commit() if commit else tx.rollback()
    tx.close()
    return got


def _bodies(ch: FileChannel) -> list[str]:
    return [e.body.decode() for e in ch.queue]


def _killed(ch: FileChannel) -> FileChannel:
    """As after kill -9: nothing closed or flushed, but the system releases its lock."""
    ch._unlock()
    return ch


def test_committed_puts_survive_and_committed_takes_stay_taken(tmp_path: Path) -> None:
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(ch, ["a", "b", "c"])
    _put(ch, ["d"])
    assert _take(ch, 2) == ["a", "b"]
    assert _take(ch, 1, commit=False) == ["c"]  # rolled back: still in the channel
    _killed(ch)  # no close(): a kill -9 as far as the log is concerned
    again = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    assert _bodies(again) == ["c", "d"]
    assert again.queue[0].headers == {"b": "c"}
    assert _take(again, 10) == ["c", "d"]
    _killed(again)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == []


def test_a_refused_commit_writes_nothing(tmp_path: Path) -> None:
    ch = FileChannel("c1", tmp_path, capacity=3, transaction_capacity=3)
    _put(ch, ["a", "b"])
    with pytest.raises(ChannelFullException):
        _put(ch, ["c", "d"])
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=3, transaction_capacity=3)) == ["a", "b"]


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(ch, ["a"])
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(b"\x00\x00\x10\x00\xde\xad")  # a commit cut short by the crash
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == ["a"]


def test_a_zero_filled_tail_is_ignored(tmp_path: Path) -> None:
    """What some file systems leave after a crash; eight zeros pass the length and crc32
    checks, and the channel used to fail to open with EOFError."""
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(ch, ["a"])
    with open(tmp_path / LOG_NAME, "ab") as f:
        f.write(bytes(4096))
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == ["a"]


def test_log_is_rewritten_with_live_events_when_it_grows(tmp_path: Path) -> None:
    ch = FileChannel("c1", tmp_path, capacity=1000, transaction_capacity=100, max_file_size=4096)
    for i in range(50):
        _put(ch, [f"event-{i}-" + "x" * 100])
        _take(ch, 1)
    _put(ch, ["last"])
    assert (tmp_path / LOG_NAME).stat().st_size < 4096 + 1024
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=1000, transaction_capacity=100)) == ["last"]


def test_a_failed_log_write_commits_nothing_and_stops_takes(tmp_path: Path) -> None:
    """Found in review: the put used to be visible although its commit failed, and takes
    kept succeeding on a log that could not record them (redelivery forever)."""
    from agent.components import ChannelException

    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(ch, ["a"])

    class FullDisk:
        def __init__(self, real: object) -> None:
            self.real = real

        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

    ch._file = FullDisk(ch._file)
    with pytest.raises(ChannelException, match="No space left"):
        _put(ch, ["b"])
    assert _bodies(ch) == ["a"]  # the failed put is not in the channel
    tx = ch.transaction()
    tx.begin()
    with pytest.raises(ChannelException, match="No space left"):
        tx.take_batch(1)
    tx.rollback()
    tx.close()
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == ["a"]


def test_a_directory_serves_one_channel_at_a_time(tmp_path: Path) -> None:
    """As Flume's in_use.lock: a second channel on the directory is refused until the first
    stops (two channels on one log would each replay and rewrite the other's events)."""
    import asyncio

    first = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(first, ["a"])
    with pytest.raises(DirectoryLockedError, match="the directory is already locked") as info:
        FileChannel("c2", tmp_path, capacity=100, transaction_capacity=10)
    assert str(tmp_path) in str(info.value) and "[channel=c2]" in str(info.value)
    asyncio.run(first.stop())
    second = FileChannel("c2", tmp_path, capacity=100, transaction_capacity=10)
    assert _bodies(second) == ["a"]
    asyncio.run(second.stop())


def test_another_process_holding_the_lock_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys; f = open(sys.argv[1] + '/in_use.lock', 'ab'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
         str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(DirectoryLockedError):
            FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    finally:
        holder.communicate("")
    FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)._unlock()


def test_by_default_every_commit_is_fsynced_before_it_returns(tmp_path: Path) -> None:
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    _put(ch, ["a"])
    assert ch.syncs == 1
    _take(ch, 1)
    assert ch.syncs == 2
    _killed(ch)


def test_fsync_per_interval_covers_every_commit_written_since_the_last(tmp_path: Path) -> None:
    import asyncio

    from agent.components import ManualClock

    clock = ManualClock()
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10,
                     fsync_per_transaction=False, fsync_interval=5.0, clock=clock)
    _put(ch, ["a"])
    _put(ch, ["b"])
    assert _take(ch, 1) == ["a"]
    assert ch.syncs == 0  # written, not yet fsynced
    clock.advance(5.0)
    _put(ch, ["c"])
    assert ch.syncs == 1  # one fsync for the four commits
    clock.advance(1.0)
    _put(ch, ["d"])
    ch.sync_if_due()  # what the idle timer calls: not due yet
    assert ch.syncs == 1
    clock.advance(4.0)
    ch.sync_if_due()
    assert ch.syncs == 2
    ch.sync_if_due()  # nothing new written
    assert ch.syncs == 2
    _put(ch, ["e"])
    _killed(ch)  # a killed process: the written commits are in the page cache
    again = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    assert _bodies(again) == ["b", "c", "d", "e"]
    _take(again, 1)
    asyncio.run(again.stop())  # a clean stop fsyncs what is unsynced (here: nothing)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == [
        "c", "d", "e"]


def test_a_clean_stop_fsyncs_the_commits_the_interval_left(tmp_path: Path) -> None:
    import asyncio

    from agent.components import ManualClock

    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10,
                     fsync_per_transaction=False, clock=ManualClock())

    async def run() -> None:
        await ch.start()
        _put(ch, ["a"])
        assert ch.syncs == 0
        await ch.stop()

    asyncio.run(run())
    assert ch.syncs == 1


def test_group_commit_one_fsync_covers_every_commit_written_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os
    import threading

    from agent.channels.durability import fsync_later

    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    running, release = threading.Event(), threading.Event()
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def held_fsync(fd: int) -> None:
        fsyncs.append(fd)
        running.set()
        assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)

    async def main() -> None:
        with fsync_later():  # as a source and a sink do: written now, fsynced when awaited
            _put(ch, ["a"])
            assert _take(ch, 1) == ["a"]
        assert ch.syncs == 0
        source, sink = asyncio.create_task(ch.synced()), asyncio.create_task(ch.synced())
        assert await asyncio.to_thread(running.wait, 10)  # one fsync running, both wait
        with fsync_later():
            _put(ch, ["b"])  # written while it runs: the next fsync's
        late = asyncio.create_task(ch.synced())
        release.set()
        await asyncio.gather(source, sink, late)

    asyncio.run(main())
    assert ch.syncs == len(fsyncs) == 2  # three commits, two fsyncs
    _killed(ch)
    assert _bodies(FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)) == ["b"]


def test_a_failed_group_fsync_fails_the_waiters_and_breaks_the_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os

    from agent.channels.durability import fsync_later
    from agent.components import ChannelException

    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with fsync_later():
        _put(ch, ["a"])
    with pytest.raises(ChannelException, match=r"fsync .* failed"):
        asyncio.run(ch.synced())
    assert ch.broken
    with pytest.raises(ChannelException):
        _put(ch, ["b"])
    _killed(ch)


def test_a_replayed_batch_shares_its_map_and_an_edit_stays_in_its_event(tmp_path: Path) -> None:
    """A batch put with one shared map (a spool file's headers) is logged with the map once
    and comes back after a kill -9 as one read-only map; editing one event copies it."""
    ch = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    tx = ch.transaction()
    tx.begin()
    tx.put_all([*events_with({"file": "/spool/a.log"}, [b"1", b"2", b"3"]), Event({}, b"4")])
    tx.commit()
    tx.close()
    _killed(ch)
    again = FileChannel("c1", tmp_path, capacity=100, transaction_capacity=10)
    events = list(again.queue)
    assert events[0].header_map is events[1].header_map is events[2].header_map
    assert events[3].header_map is EMPTY_HEADERS
    events[1].headers["file"] = "edited"
    assert [e.headers for e in events] == [{"file": "/spool/a.log"}, {"file": "edited"},
                                           {"file": "/spool/a.log"}, {}]
