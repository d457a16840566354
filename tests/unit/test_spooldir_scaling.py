"""The spooldir source's cost per file does not grow with the number of files waiting.

Counted, not timed: the directory listings and stat calls the source makes. Before the
candidate index, every file cost a listing and a stat of every other waiting file, so reading
n files cost n listings and about n^2/2 stats (2,500 one-line files took 48 s, 5,000 took 146 s).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from agent.components import Status
from agent.sources.spooldir.watcher import ChangeInbox, _Handler
from tests.unit.test_spooldir_support import make_source, processor, put, run_source


def cost(spool: Path, files: int) -> tuple[float, int]:
    """(stat calls per file, directory listings) to read ``files`` one-line files."""
    spool.mkdir()
    for i in range(files):
        put(spool, f"f{i:05d}.log", f"{i}\n", mtime=1000 + i)
    src = make_source(spool)
    assert run_source(src).bodies == [str(i).encode() for i in range(files)]
    return src.spool.lister.stats / files, src.spool.lister.listings


def test_cost_per_file_does_not_grow_with_the_number_of_files(tmp_path: Path) -> None:
    small_stats, small_listings = cost(tmp_path / "small", 50)
    big_stats, big_listings = cost(tmp_path / "big", 800)
    assert big_stats <= small_stats <= 1.0  # one stat per file, in the first scan
    assert big_listings == small_listings == 2  # the first scan, and the idle poll at the end


def test_reported_changes_are_examined_path_by_path_without_a_scan(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    for i in range(20):
        put(spool, f"f{i:02d}", f"{i}\n", mtime=2000 + i)
    src = make_source(spool)
    lister = src.spool.lister
    first = src.spool.open_next()
    assert first is not None and first.rel_path == "f00"
    first.close()
    assert (lister.listings, lister.stats) == (1, 20)
    put(spool, "older", "o\n", mtime=1000)
    put(spool, "ignored.COMPLETED", "x\n", mtime=1)
    os.unlink(spool / "f01")
    os.mkfifo(spool / "pipe")
    reader = src.spool.open_next({"older", "ignored.COMPLETED", "f01", "pipe"})
    assert reader is not None and reader.rel_path == "older"  # the index keeps the order
    reader.close()
    assert lister.listings == 1  # no scan while files wait
    assert lister.stats == 20 + 3  # older, f01 (gone), pipe; a refused name costs nothing
    assert "f01" not in src.spool.index and len(src.spool.index) == 18


def test_files_landing_while_the_source_is_busy_join_the_order_through_the_watcher(
    tmp_path: Path,
) -> None:
    spool, staging = tmp_path / "spool", tmp_path / "staging"
    staging.mkdir()
    for i in range(30):
        put(spool, f"f{i:02d}", f"{i}\n", mtime=2000 + i)
    src = make_source(spool, batchSize=5)  # read-ahead groups of 5 files: 10 ends one
    src._watch = True
    proc = processor(src)

    async def go() -> None:
        await src.start()
        while len(proc.bodies) < 10:
            await src.process()
        put(staging, "older", "old\n", mtime=1000)
        os.rename(staging / "older", spool / "older")  # mv keeps the old modification time
        deadline = time.monotonic() + 10
        while "older" not in src._inbox.take()[0]:  # bounded: the watcher thread reports it
            assert time.monotonic() < deadline, "the watcher never reported the new file"
            await asyncio.sleep(0.01)
        src._inbox.add("older")  # hand it back as the watcher had
        while await src.process() is not Status.BACKOFF:
            pass
        await src.stop()

    asyncio.run(go())
    assert proc.bodies[:11] == [str(i).encode() for i in range(10)] + [b"old"]
    assert sorted(proc.bodies[11:]) == [str(i).encode() for i in range(10, 30)]
    # the first scan, one when the watcher started, perhaps the idle poll at the very end
    assert src.spool.lister.listings <= 3


def test_the_inbox_wakes_once_per_batch_of_news_and_falls_back_to_a_scan() -> None:
    inbox = ChangeInbox(limit=3)
    assert inbox.add("a") is True
    assert inbox.add("b") is False  # the source was woken already
    assert inbox.take() == ({"a", "b"}, False)
    assert inbox.add("c") is True
    for name in "defg":
        inbox.add(name)
    assert inbox.take() == (set(), True)  # too many paths: one full scan instead
    assert inbox.add(None) is True and inbox.take() == (set(), True)


class Event:
    def __init__(self, event_type: str, src: str, dest: str = "", is_directory: bool = False):
        self.event_type = event_type
        self.src_path = src
        self.dest_path = dest
        self.is_directory = is_directory


def test_the_watcher_reports_file_paths_and_asks_a_scan_only_for_directory_moves() -> None:
    seen: list[str | None] = []
    flat = _Handler("/s", seen.append, recursive=False, ignore_under="/s/.flumespool/")
    deep = _Handler("/s", seen.append, recursive=True, ignore_under="/s/.flumespool/")
    flat.on_any_event(Event("created", "/s/a.log"))
    flat.on_any_event(Event("moved", "/s/b.log", "/s/b.log.COMPLETED"))
    flat.on_any_event(Event("opened", "/s/c.log"))  # our own reads
    flat.on_any_event(Event("closed_no_write", "/s/c.log"))
    flat.on_any_event(Event("modified", "/s/.flumespool/.flumelet-position"))  # ours
    flat.on_any_event(Event("modified", "/s", is_directory=True))  # comes with every file event
    flat.on_any_event(Event("created", "/s/sub", is_directory=True))  # not searched
    assert seen == ["a.log", "b.log", "b.log.COMPLETED"]
    seen.clear()
    deep.on_any_event(Event("modified", "/s/sub", is_directory=True))
    deep.on_any_event(Event("moved", "/s/sub", "/s/sub2", is_directory=True))
    deep.on_any_event(Event("created", "/elsewhere/x"))
    assert seen == [None, None]
