"""The spooldir source's pure decisions and reason texts, fed made-up stat results."""

from __future__ import annotations

import os

from agent.sources.spooldir.decisions import Headers, Resume, full_scan_needed, resume_verdict
from agent.sources.spooldir.reasons import (
    Delivered,
    FileFailure,
    Kind,
    change,
    delivered_summary,
    reason_text,
    utc,
)
from agent.sources.spooldir.tracker import FileIdentity

OPENED = FileIdentity("a.log", dev=1, inode=7, size=100, mtime_ns=5_000_000_000)


def stat(*, dev: int = 1, inode: int = 7, size: int = 100,
         mtime_ns: int = 5_000_000_000) -> os.stat_result:
    whole, exact = mtime_ns // 1_000_000_000, mtime_ns / 1e9
    return os.stat_result((0o100644, inode, dev, 1, 0, 0, size, whole, whole, whole,
                           exact, exact, exact, mtime_ns, mtime_ns, mtime_ns))


def test_resume_only_an_unchanged_file_and_read_a_new_one_from_the_start() -> None:
    assert resume_verdict(OPENED, stat()) is Resume.RESUME
    assert resume_verdict(OPENED, stat(size=120, mtime_ns=6_000_000_000)) is Resume.MODIFIED
    assert resume_verdict(OPENED, stat(inode=8)) is Resume.NEW_FILE


def test_a_full_scan_only_when_nothing_else_can_be_trusted() -> None:
    assert full_scan_needed(scanned=False, rescan=False, waiting=5, changed=1)
    assert full_scan_needed(scanned=True, rescan=True, waiting=5, changed=0)
    assert full_scan_needed(scanned=True, rescan=False, waiting=0, changed=0)  # idle poll
    assert not full_scan_needed(scanned=True, rescan=False, waiting=5, changed=0)
    assert not full_scan_needed(scanned=True, rescan=False, waiting=0, changed=2)


def test_a_change_is_named_truncation_growth_rewrite_or_replacement_with_times() -> None:
    assert change(OPENED, stat()) is None
    truncated = change(OPENED, stat(size=2, mtime_ns=5_250_000_000), opened_at=5.1)
    assert truncated == (
        "it was truncated from 100 bytes to 2 bytes while it was being read (last modified "
        "1970-01-01 00:00:05.000 UTC when reading began at 1970-01-01 00:00:05.100 UTC; "
        "modified again 1970-01-01 00:00:05.250 UTC)")
    assert "grew from 100 bytes to 120 bytes" in str(change(OPENED, stat(size=120)))
    assert "still being written" in str(change(OPENED, stat(size=120)))
    assert "rewritten in place (same size, 100 bytes)" in str(
        change(OPENED, stat(mtime_ns=6_000_000_000)))
    assert "another file was renamed over its name" in str(change(OPENED, stat(inode=9)))
    assert "while the agent was stopped" in str(change(OPENED, stat(size=5), while_stopped=True))
    assert "mtime_ns" not in str(truncated)


def test_utc_rounds_to_milliseconds() -> None:
    assert utc(1_764_504_003.5124) == "2025-11-30 12:00:03.512 UTC"
    assert utc(59.9996) == "1970-01-01 00:01:00.000 UTC"


def failure(kind: Kind, delivered: Delivered | None, size_now: int | None) -> FileFailure:
    return FileFailure("a.log", "something happened", kind=kind, delivered=delivered,
                       size_now=size_now)


def test_a_fully_delivered_file_says_so_and_warns_against_dropping_it_again() -> None:
    text = reason_text(failure(Kind.REUSED, Delivered(6, 3, whole=True), 6),
                       path="/spool/a.log", target="/spool/.flumespool/failed/a.log", when=0.0)
    assert text.splitlines() == [
        "file: /spool/a.log",
        "set aside: 1970-01-01 00:00:00.000 UTC, moved to /spool/.flumespool/failed/a.log",
        "problem: something happened",
        "delivered: 3 events: bytes 0 to 5 of the file, all of it as it was read",
        "what to do: Every event it holds was delivered: do not drop it into the spool "
        "directory again, or they will be delivered twice. Give every file dropped into the "
        "spool directory a name of its own (e.g. with a timestamp): a completed file is never "
        "overwritten.",
    ]
    assert delivered_summary(failure(Kind.REUSED, Delivered(6, 3, whole=True), 6)) == (
        "all of it as read was delivered (6 bytes)")


def test_a_partly_delivered_file_says_how_to_deliver_only_the_rest() -> None:
    text = reason_text(failure(Kind.CHANGED, Delivered(1000, 10, whole=True), 2000),
                       path="/s/a b.log", target="/s/.flumespool/failed/a b.log", when=0.0)
    assert "delivered: 10 events: bytes 0 to 999 of the file" in text
    assert ("drop a file holding only bytes 1,000 onwards, e.g. tail -c +1001 "
            "'/s/.flumespool/failed/a b.log' > REST") in text
    assert "rename (mv) it in, as a rename is atomic only within one filesystem" in text
    assert "ignorePattern = ^.*[.]tmp$" in text
    assert delivered_summary(failure(Kind.CHANGED, Delivered(1000, 10, whole=True), 2000)) == (
        "its first 1,000 bytes were delivered, the other 1,000 bytes not")


def test_resumed_truncated_and_undelivered_files_get_their_own_words() -> None:
    resumed = reason_text(failure(Kind.CHANGED, Delivered(40, resumed_at=40), 120),
                          path="/s/a", target=None, when=0.0)
    assert "delivered: the events in its first 40 bytes, before a restart" in resumed
    assert "it could not be moved" in resumed and "tail -c +41 /s/a" in resumed
    shorter = reason_text(failure(Kind.CHANGED, Delivered(40, 4, whole=True), 2),
                          path="/s/a", target=None, when=0.0)
    assert "It is now shorter (2 bytes) than what was delivered (40 bytes)" in shorter
    nothing = reason_text(failure(Kind.UNREADABLE, Delivered(0), 9), path="/s/a",
                          target=None, when=0.0)
    assert "delivered: nothing" in nothing and "dropped again whole" in nothing
    assert delivered_summary(failure(Kind.UNREADABLE, Delivered(0), 9)) == (
        "nothing of it was delivered")


def test_headers_carry_the_absolute_path_and_the_base_name() -> None:
    both = Headers("file", "basename").for_file("/spool", "sub/a.log")
    assert both == {"file": "/spool/sub/a.log", "basename": "a.log"}
    assert Headers(None, None).for_file("/spool", "a.log") == {}
