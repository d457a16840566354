"""Pure file selection and the position tracker's file format."""

from __future__ import annotations

import random
import re
from pathlib import Path

from agent.sources.spooldir.selection import CandidateIndex, CandidateRules, Listing, candidates
from agent.sources.spooldir.tracker import FileIdentity, PositionTracker

RULES = CandidateRules(re.compile(r"^.*$"), re.compile(r"^$"), ".COMPLETED")


def entry(path: str, mtime_ms: int, inode: int = 1) -> Listing:
    return Listing(path, mtime_ms * 1_000_000 + 123, 10, inode)


def test_candidates_drop_hidden_completed_marked_and_skipped_files() -> None:
    listing = [entry("a", 1), entry(".b", 1), entry("c.COMPLETED", 1), entry("d", 1),
               entry("e", 1, inode=9)]
    got = candidates(listing, RULES, completed_markers=frozenset({"d"}),
                     skip=frozenset({("e", 9, 1_000_123)}))
    assert [e.rel_path for e in got] == ["a"]


def test_ignore_pattern_wins_over_include_and_both_are_full_matches() -> None:
    rules = CandidateRules(re.compile(r"log"), re.compile(r"tmp"), ".DONE")
    assert rules.accepts_name("log")
    assert not rules.accepts_name("x.log")  # a search would match; a full match does not
    rules = CandidateRules(re.compile(r".*"), re.compile(r".*tmp"), ".DONE")
    assert not rules.accepts_name("a.tmp")
    assert rules.enters_directory("sub") and not rules.enters_directory("xtmp")
    assert not rules.enters_directory(".hidden")


def picks(index: CandidateIndex) -> list[str]:
    out = []
    while (entry := index.first()) is not None:
        index.discard(entry.rel_path)
        out.append(entry.rel_path)
    return out


def test_oldest_and_youngest_compare_whole_milliseconds_then_paths() -> None:
    files = [entry("b", 5), entry("a", 5), entry("c", 3), entry("d", 9)]
    oldest, youngest = CandidateIndex("oldest"), CandidateIndex("youngest")
    oldest.replace(files)
    youngest.replace(files)
    assert picks(oldest) == ["c", "a", "b", "d"]
    assert picks(youngest) == ["d", "a", "b", "c"]
    tie = CandidateIndex("oldest")
    tie.replace([Listing("b", 5_000_000_900, 1), Listing("a", 5_000_000_100, 1)])
    assert picks(tie) == ["a", "b"]  # same millisecond: the smaller path first
    assert tie.first() is None


def test_index_updates_move_files_and_forget_removed_ones() -> None:
    index = CandidateIndex("oldest")
    index.replace([entry("a", 1), entry("b", 2), entry("c", 3)])
    index.put(entry("a", 9))  # modified: now the youngest
    index.put(entry("d", 0))  # arrived, older than all
    index.put(entry("d", 0))  # reported twice: still once
    index.discard("b")
    index.discard("nope")
    assert len(index) == 3 and "b" not in index and index.get("a") == entry("a", 9)
    assert picks(index) == ["d", "c", "a"]


def test_random_order_uses_the_given_generator_and_reaches_every_file() -> None:
    def order(seed: int) -> list[str]:
        index = CandidateIndex("random", random.Random(seed))
        index.replace([entry(str(i), i) for i in range(20)])
        return picks(index)

    assert sorted(order(1)) == sorted(str(i) for i in range(20))
    assert order(1) == order(1) and order(1) != order(2)
    assert len({order(s)[0] for s in range(30)}) > 5


def test_tracker_round_trip_and_torn_last_line(tmp_path: Path) -> None:
    tracker = PositionTracker(str(tmp_path))
    ident = FileIdentity("sub/a.log", 1, 2, 300, 4)
    tracker.begin(ident)
    tracker.commit(100)
    tracker.commit(200)
    loaded = tracker.load()
    assert loaded is not None and loaded.identity == ident and loaded.offset == 200
    with open(tracker.path, "ab") as f:
        f.write(b"29")  # a crash in the middle of an append
    assert tracker.load().offset == 200  # type: ignore[union-attr]
    tracker.clear()
    assert tracker.load() is None


def test_tracker_compacts_its_log(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("agent.sources.spooldir.tracker.COMPACT_EVERY", 5)
    tracker = PositionTracker(str(tmp_path))
    tracker.begin(FileIdentity("a", 1, 2, 3, 4))
    for offset in range(1, 13):
        tracker.commit(offset)
    assert len(Path(tracker.path).read_text().splitlines()) <= 6
    assert tracker.load().offset == 12  # type: ignore[union-attr]
    tracker.close()


def test_unreadable_tracker_file_is_ignored(tmp_path: Path) -> None:
    tracker = PositionTracker(str(tmp_path))
    Path(tracker.path).write_text("not json\n5\n")
    assert tracker.load() is None
