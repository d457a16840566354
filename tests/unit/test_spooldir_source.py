"""SpoolDirSource against a fake channel processor: one test per property and per surprise."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
from pathlib import Path

import pytest

from agent.components import BackoffPolicy, ManualClock, Status
from agent.sources.spooldir import SpoolDirSource, spool
from agent.sources.spooldir.decisions import java_absolute
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.tracker import POSITION_FILE, PositionTracker
from tests.unit.test_spooldir_support import (
    drain,
    listing,
    make_source,
    processor,
    put,
    run_source,
)


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    return d


# -- reading and retiring -----------------------------------------------------------------
def test_rename_policy_leaves_completed_files_and_an_empty_tracker_dir(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "1\n2\n")
    proc = run_source(make_source(spool_dir))
    assert proc.bodies == [b"1", b"2"]
    assert listing(spool_dir) == {"a.log.COMPLETED", ".flumespool"}
    assert (spool_dir / "a.log.COMPLETED").read_bytes() == b"1\n2\n"


def test_file_suffix_is_configurable_and_suffixed_files_are_never_read(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\n")
    put(spool_dir, "old.log.DONE", "never\n")
    proc = run_source(make_source(spool_dir, fileSuffix=".DONE"))
    assert proc.bodies == [b"x"]
    assert listing(spool_dir) == {"a.log.DONE", "old.log.DONE", ".flumespool"}


def test_delete_policy_immediate_removes_the_file(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\n")
    proc = run_source(make_source(spool_dir, deletePolicy="immediate"))
    assert proc.bodies == [b"x"]
    assert listing(spool_dir) == {".flumespool"}


def test_tracking_policy_tracker_dir_marks_files_instead_of_renaming(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\n")
    put(spool_dir, "sub/b.log", "y\n")
    src = make_source(spool_dir, trackingPolicy="tracker_dir", recursiveDirectorySearch=True)
    proc = run_source(src)
    assert sorted(proc.bodies) == [b"x", b"y"]
    assert listing(spool_dir) == {
        "a.log", "sub", "sub/b.log", ".flumespool", ".flumespool/a.log.COMPLETED",
        ".flumespool/sub", ".flumespool/sub/b.log.COMPLETED",
    }
    again = run_source(make_source(spool_dir, trackingPolicy="tracker_dir",
                                   recursiveDirectorySearch=True))
    assert again.bodies == []  # marked files are not read twice


def test_tracker_dir_relative_is_inside_spool_dir_and_absolute_is_anywhere(
    spool_dir: Path, tmp_path: Path
) -> None:
    put(spool_dir, "a.log", "x\n")
    run_source(make_source(spool_dir, trackerDir="track"))
    assert (spool_dir / "track").is_dir()
    put(spool_dir, "b.log", "y\n")
    elsewhere = tmp_path / "elsewhere"
    proc = run_source(make_source(spool_dir, trackerDir=str(elsewhere)))
    assert proc.bodies == [b"y"] and elsewhere.is_dir()


def test_delete_policy_ignores_tracking_policy(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\n")
    run_source(make_source(spool_dir, deletePolicy="immediate", trackingPolicy="tracker_dir"))
    assert listing(spool_dir) == {".flumespool"}


def test_file_and_basename_headers(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\ny\n")
    proc = run_source(make_source(spool_dir, fileHeader=True, basenameHeader=True))
    path = java_absolute(str(spool_dir), os.getcwd()) + "/a.log"
    assert [e.headers for e in proc.batches[0]] == [{"file": path, "basename": "a.log"}] * 2
    assert proc.batches[0][0].headers is not proc.batches[0][1].headers  # interceptors mutate


def test_header_keys_are_configurable_and_headers_off_by_default(spool_dir: Path) -> None:
    put(spool_dir, "a.log", "x\n")
    proc = run_source(make_source(spool_dir, fileHeader=True, fileHeaderKey="path",
                                  basenameHeader=True, basenameHeaderKey="name"))
    assert set(proc.batches[0][0].headers) == {"path", "name"}
    put(spool_dir, "b.log", "x\n")
    assert run_source(make_source(spool_dir)).batches[0][0].headers == {}


def test_java_absolute_path_keeps_dot_components() -> None:
    assert java_absolute("/a//b/", "/cwd") == "/a/b"
    assert java_absolute("./x", "/cwd/") == "/cwd/./x"


def test_include_and_ignore_patterns_are_full_matches_and_ignore_wins(spool_dir: Path) -> None:
    for name in ("a.log", "a.log.tmp", "b.txt", "xa.log", "skip.log"):
        put(spool_dir, name, name + "\n")
    proc = run_source(make_source(spool_dir, includePattern=r"^.*\.log$",
                                  ignorePattern=r"skip.*|.*\.tmp"))
    assert sorted(proc.bodies) == [b"a.log", b"xa.log"]
    assert (spool_dir / "a.log.tmp").exists() and (spool_dir / "b.txt").exists()


def test_hidden_files_are_skipped(spool_dir: Path) -> None:
    put(spool_dir, ".in-progress.log", "no\n")
    put(spool_dir, "done.log", "yes\n")
    assert run_source(make_source(spool_dir)).bodies == [b"yes"]


def test_recursive_search_skips_hidden_and_ignored_directories(spool_dir: Path) -> None:
    put(spool_dir, "top.log", "top\n")
    put(spool_dir, "d1/d2/deep.log", "deep\n")
    put(spool_dir, ".hidden/h.log", "hidden\n")
    put(spool_dir, "tmpdir/t.log", "ignored\n")
    proc = run_source(make_source(spool_dir, recursiveDirectorySearch=True,
                                  ignorePattern="tmpdir"))
    assert sorted(proc.bodies) == [b"deep", b"top"]
    assert (spool_dir / "d1/d2/deep.log.COMPLETED").exists()


def test_non_recursive_ignores_subdirectories(spool_dir: Path) -> None:
    put(spool_dir, "sub/x.log", "x\n")
    assert run_source(make_source(spool_dir)).bodies == []


def test_consume_order_oldest_and_youngest_with_ties_by_name(spool_dir: Path) -> None:
    put(spool_dir, "c", "c\n", mtime=1000)
    put(spool_dir, "b", "b\n", mtime=2000)
    put(spool_dir, "a", "a\n", mtime=2000)
    assert run_source(make_source(spool_dir)).bodies == [b"c", b"a", b"b"]
    for name in "abc":
        os.rename(spool_dir / f"{name}.COMPLETED", spool_dir / name)
    put(spool_dir, "c", "c\n", mtime=1000)
    put(spool_dir, "b", "b\n", mtime=2000)
    put(spool_dir, "a", "a\n", mtime=2000)
    assert run_source(make_source(spool_dir, consumeOrder="YOUNGEST")).bodies == [
        b"a", b"b", b"c"]


def test_consume_order_random_reads_everything_in_a_seeded_order(spool_dir: Path) -> None:
    for i in range(8):
        put(spool_dir, f"f{i}", f"{i}\n", mtime=1000 + i)
    src = make_source(spool_dir, consumeOrder="random")
    src.spool.index.rng = random.Random(3)
    bodies = run_source(src).bodies
    assert sorted(bodies) == [str(i).encode() for i in range(8)]
    assert bodies != sorted(bodies)


def test_batch_size_and_a_batch_never_spans_two_files(spool_dir: Path) -> None:
    put(spool_dir, "a", "".join(f"a{i}\n" for i in range(5)), mtime=1)
    put(spool_dir, "b", "".join(f"b{i}\n" for i in range(3)), mtime=2)
    proc = run_source(make_source(spool_dir, batchSize=2))
    assert [len(b) for b in proc.batches] == [2, 2, 1, 2, 1]
    assert all(len({e.body[:1] for e in batch}) == 1 for batch in proc.batches)


def test_empty_file_yields_one_empty_event(spool_dir: Path) -> None:
    put(spool_dir, "empty", b"")
    proc = run_source(make_source(spool_dir))
    assert proc.bodies == [b""]
    assert (spool_dir / "empty.COMPLETED").exists()


def test_line_deserializer_settings_reach_the_deserializer(spool_dir: Path) -> None:
    put(spool_dir, "a", "abcdé\n".encode("latin-1"))
    proc = run_source(make_source(spool_dir, inputCharset="ISO-8859-1",
                                  **{"deserializer.maxLineLength": 3,
                                     "deserializer.outputCharset": "UTF-16BE"}))
    assert proc.bodies == ["abc".encode("utf-16-be"), "dé".encode("utf-16-be")]


def test_buffer_max_line_length_overrides_max_line_length_when_set(spool_dir: Path) -> None:
    put(spool_dir, "a", "abcdef\n")
    proc = run_source(make_source(spool_dir, bufferMaxLineLength=4))
    assert proc.bodies == [b"abcd", b"ef"]


def test_blob_deserializer_whole_file_and_split(spool_dir: Path) -> None:
    put(spool_dir, "a", b"line1\nline2\n", mtime=1)
    put(spool_dir, "b", b"0123456789", mtime=2)
    proc = run_source(make_source(spool_dir, deserializer="BLOB",
                                  **{"deserializer.maxBlobLength": 8}))
    assert proc.bodies == [b"line1\nli", b"ne2\n", b"01234567", b"89"]


@pytest.mark.parametrize(("policy", "expected"), [
    ("REPLACE", [b"ok", "b\ufffdd".encode(), b"next"]),
    ("IGNORE", [b"ok", b"bd", b"next"]),
])
def test_decode_error_policy_replace_and_ignore(
    spool_dir: Path, policy: str, expected: list[bytes]
) -> None:
    put(spool_dir, "a", b"ok\nb\xffd\nnext\n")
    assert run_source(make_source(spool_dir, decodeErrorPolicy=policy)).bodies == expected


# -- timing: pollDelay and backoff (the runner waits; the source only says how long) --------
def test_idle_waits_are_poll_delay_and_refusals_back_off_doubling_to_max_backoff(
    spool_dir: Path,
) -> None:
    src = make_source(spool_dir, pollDelay=700, maxBackoff=600)
    policy = src.backoff_policy(BackoffPolicy(error=3.0))
    assert [policy.after_backoffs(k) for k in (1, 2, 10)] == [0.7, 0.7, 0.7]
    assert [policy.after_retries(k) for k in (1, 2, 3, 4)] == [0.25, 0.5, 0.6, 0.6]
    assert policy.error == 3.0


def test_every_call_after_a_backoff_looks_at_the_directory_again(spool_dir: Path) -> None:
    src = make_source(spool_dir, pollDelay=500)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.BACKOFF  # empty directory
        put(spool_dir, "late", "x\n")
        assert await src.process() is Status.READY  # the runner called after pollDelay
        await src.stop()

    asyncio.run(go())
    assert processor(src).bodies == [b"x"]


def test_a_wakeup_from_the_watcher_wakes_the_runner(spool_dir: Path) -> None:
    src = make_source(spool_dir, ManualClock(), pollDelay=60_000)
    woken: list[bool] = []
    src.wakeup = lambda: woken.append(True)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.BACKOFF
        put(spool_dir, "new", "x\n")
        src._on_fs_change()
        assert woken
        assert await src.process() is Status.READY
        await src.stop()

    asyncio.run(go())


def test_a_refused_batch_is_sent_again_whole_on_the_next_call_without_loss(
    spool_dir: Path,
) -> None:
    put(spool_dir, "a", "".join(f"{i}\n" for i in range(5)))
    src = make_source(spool_dir, batchSize=2)
    proc = processor(src)
    statuses: list[Status] = []

    async def go() -> None:
        await src.start()
        proc.refuse = 4
        while (status := await src.process()) is not Status.BACKOFF:
            statuses.append(status)
        await src.stop()

    asyncio.run(go())
    assert statuses[:5] == [Status.RETRY] * 4 + [Status.READY]
    assert proc.bodies == [str(i).encode() for i in range(5)]
    assert src.counters["ChannelWriteFail"] == 4
    assert src.counters["AppendBatchReceivedCount"] == 7
    assert src.counters["AppendBatchAcceptedCount"] == 3
    assert src.counters["EventReceivedCount"] == 13
    assert src.counters["EventAcceptedCount"] == 5


# -- position tracking -----------------------------------------------------------------------
def test_position_is_committed_only_after_the_channel_accepts(spool_dir: Path) -> None:
    put(spool_dir, "a", "l1\nl2\nl3\nl4\n")
    src = make_source(spool_dir, batchSize=2)
    proc = processor(src)
    pos = spool_dir / ".flumespool" / POSITION_FILE

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY  # l1, l2
        assert not pos.exists()  # a position file only once a second batch is read
        proc.refuse = 1
        assert await src.process() is Status.RETRY  # l3, l4 refused
        assert pos.read_text().splitlines()[1:] == ["6"]
        assert '"path": "a"' in pos.read_text().splitlines()[0]
        assert await src.process() is Status.READY  # sent again, accepted
        assert pos.read_text().splitlines()[1:] == ["6", "12"]
        assert await src.process() is Status.BACKOFF  # retired; nothing else waits
        assert not pos.exists()
        await src.stop()

    asyncio.run(go())


def test_a_file_read_in_one_batch_never_gets_a_position_file(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun: list[str] = []
    real_begin = PositionTracker.begin
    monkeypatch.setattr(PositionTracker, "begin",
                        lambda self, ident, offset=0: (begun.append(ident.rel_path),
                                                       real_begin(self, ident, offset)))
    put(spool_dir, "small", "1\n2\n")
    put(spool_dir, "big", "".join(f"{i}\n" for i in range(5)), mtime=99999999999)
    src = make_source(spool_dir, batchSize=2)
    proc = run_source(src)
    assert proc.bodies == [b"1", b"2", b"0", b"1", b"2", b"3", b"4"]
    assert begun == ["big"]  # once, before its second batch


def test_small_files_are_read_ahead_one_batch_per_blocking_call(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny files: one thread hop reads the next files whole, up to a batch of bodies; each
    file is still its own channel batch, and is retired only after it was delivered."""
    for i in range(7):
        put(spool_dir, f"f{i}", f"{i}a\n{i}b\n", mtime=1_000 + i)
    calls: list[int] = []
    real_advance = spool.SpoolDirectory.advance

    def counting(self: spool.SpoolDirectory, *args: object) -> spool.Step:
        step = real_advance(self, *args)  # type: ignore[arg-type]
        calls.append(1 + len(step.ahead) if step.reader is not None else 0)
        return step

    monkeypatch.setattr(spool.SpoolDirectory, "advance", counting)
    src = make_source(spool_dir, batchSize=5)
    renamed: list[set[str]] = []

    async def go() -> None:
        await src.start()
        while await src.process() is Status.READY:
            renamed.append({p.name for p in spool_dir.glob("*.COMPLETED")})
        await src.stop()

    asyncio.run(go())
    proc = processor(src)
    assert [[e.body for e in b] for b in proc.batches] == [
        [f"{i}a".encode(), f"{i}b".encode()] for i in range(7)]
    assert calls == [3, 3, 1, 0]  # files per call: 6 bodies >= batchSize 5 ends a read-ahead
    # a file is renamed by a later call, never before its batch was accepted
    assert renamed[2] == set() and renamed[3] == {"f0.COMPLETED", "f1.COMPLETED",
                                                   "f2.COMPLETED"}
    assert listing(spool_dir) == {f"f{i}.COMPLETED" for i in range(7)} | {".flumespool"}


def test_a_stop_retires_what_was_delivered_and_leaves_what_was_only_read_ahead(
    spool_dir: Path,
) -> None:
    for i in range(3):
        put(spool_dir, f"f{i}", f"{i}\n", mtime=1_000 + i)
    src = make_source(spool_dir, batchSize=10)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY  # f0 delivered; f1, f2 read ahead
        assert await src.process() is Status.READY  # f1 delivered
        await src.stop()

    asyncio.run(go())
    assert listing(spool_dir) == {"f0.COMPLETED", "f1.COMPLETED", "f2", ".flumespool"}
    assert run_source(make_source(spool_dir)).bodies == [b"2"]  # read again, nothing else


def test_a_graceful_stop_right_after_a_files_last_batch_retires_it(spool_dir: Path) -> None:
    put(spool_dir, "a", "1\n")
    src = make_source(spool_dir)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY
        await src.stop()

    asyncio.run(go())
    assert listing(spool_dir) == {"a.COMPLETED", ".flumespool"}
    assert run_source(make_source(spool_dir)).bodies == []  # not read again


def test_restart_resumes_from_the_committed_offset(spool_dir: Path) -> None:
    put(spool_dir, "a", "".join(f"{i}\n" for i in range(10)))
    first = make_source(spool_dir, batchSize=3)

    async def two_batches() -> None:
        await first.start()
        await first.process()
        await first.process()
        await first.stop()

    asyncio.run(two_batches())
    assert processor(first).bodies == [str(i).encode() for i in range(6)]
    second = run_source(make_source(spool_dir, batchSize=3))
    assert second.bodies == [str(i).encode() for i in range(6, 10)]
    assert listing(spool_dir) == {"a.COMPLETED", ".flumespool"}


def test_restart_prefers_the_tracked_file_over_an_older_newcomer(spool_dir: Path) -> None:
    put(spool_dir, "b", "b1\nb2\n", mtime=2000)
    first = make_source(spool_dir, batchSize=1)

    async def one_batch() -> None:
        await first.start()
        await first.process()
        await first.stop()

    asyncio.run(one_batch())
    put(spool_dir, "a", "a1\n", mtime=1000)
    assert run_source(make_source(spool_dir, batchSize=1)).bodies == [b"b2", b"a1"]


def test_restart_with_a_new_file_under_the_tracked_name_reads_it_whole(spool_dir: Path) -> None:
    put(spool_dir, "a", "old1\nold2\n")
    first = make_source(spool_dir, batchSize=1)

    async def one_batch() -> None:
        await first.start()
        await first.process()
        await first.stop()

    asyncio.run(one_batch())
    (spool_dir / "a").unlink()
    put(spool_dir, "keep-inode-busy", "z\n", mtime=99999999999)
    put(spool_dir, "a", "new1\nnew2\n", mtime=1)
    src = make_source(spool_dir, batchSize=1, ignorePattern="keep-inode-busy")
    assert run_source(src).bodies == [b"new1", b"new2"]


# -- surprises: logged, moved aside with a reason, never stopping the source ------------------
def failed(spool_dir: Path, name: str) -> str:
    reason = spool_dir / ".flumespool" / spool.FAILED_DIR / (name + spool.REASON_SUFFIX)
    assert (spool_dir / ".flumespool" / spool.FAILED_DIR / name).exists()
    return reason.read_text()


def test_file_modified_after_reading_began_is_moved_aside(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(spool_dir, "a", "1\n2\n3\n", mtime=1)
    put(spool_dir, "b", "b\n", mtime=2)
    src = make_source(spool_dir, batchSize=2)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.READY
        with open(spool_dir / "a", "ab") as f:
            f.write(b"4\n")
        await drain(src)
        await src.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert processor(src).bodies == [b"1", b"2", b"3", b"b"]  # read to its end at open
    reason = failed(spool_dir, "a")
    assert "problem: it grew from 6 bytes to 8 bytes while it was being read" in reason
    assert "delivered: 3 events: bytes 0 to 5 of the file, all of it as it was read" in reason
    assert "tail -c +7 " in reason  # how to deliver only the rest
    assert any("a" in r.getMessage() and "moved it to" in r.getMessage() for r in caplog.records)
    assert (spool_dir / "b.COMPLETED").exists()
    assert src.counters["GenericProcessingFail"] == 1


def test_a_file_written_in_place_in_two_halves_says_what_was_delivered_and_how_to_send_the_rest(
    spool_dir: Path, tmp_path: Path
) -> None:
    first = "".join(f"line {i}\n" for i in range(50))
    second = "".join(f"line {i}\n" for i in range(50, 100))
    with open(spool_dir / "app.log", "w") as f:  # written in place, not renamed in
        f.write(first)
        f.flush()
        src = make_source(spool_dir, batchSize=20)

        async def go() -> None:
            await src.start()
            assert await src.process() is Status.READY  # lines 0-19: the writer is not done
            f.write(second)
            f.flush()
            await drain(src)
            await src.stop()

        asyncio.run(go())
    assert processor(src).bodies == [f"line {i}".encode() for i in range(50)]
    reason = failed(spool_dir, "app.log")
    assert "grew from 390 bytes to 790 bytes while it was being read" in reason
    assert " UTC" in reason and "mtime_ns" not in reason
    assert "delivered: 50 events: bytes 0 to 389 of the file" in reason
    # the advice, followed literally, delivers the other half and nothing twice
    command = reason[reason.index("tail -c"):reason.index(" > REST")]
    rest = subprocess.run(command, shell=True, check=True, capture_output=True).stdout
    assert rest == second.encode()
    (tmp_path / "rest").write_bytes(rest)
    os.rename(tmp_path / "rest", spool_dir / "app-rest.log")
    assert run_source(make_source(spool_dir)).bodies == [
        f"line {i}".encode() for i in range(50, 100)]


def test_file_truncated_during_reading_is_moved_aside(spool_dir: Path) -> None:
    put(spool_dir, "a", "1\n2\n3\n")
    src = make_source(spool_dir, batchSize=1)

    async def go() -> None:
        await src.start()
        await src.process()
        os.truncate(spool_dir / "a", 2)
        await drain(src)
        await src.stop()

    asyncio.run(go())
    reason = failed(spool_dir, "a")
    assert "problem: it was truncated from 6 bytes to 2 bytes while it was being read" in reason
    assert "modified" not in reason.splitlines()[2].split("(")[0]  # truncation, not "modified"
    assert "It is now shorter (2 bytes) than what was delivered (6 bytes)" in reason


def test_tracked_file_modified_while_the_agent_was_down_is_moved_aside(spool_dir: Path) -> None:
    put(spool_dir, "a", "1\n2\n")
    put(spool_dir, "b", "b\n", mtime=99999999999)
    first = make_source(spool_dir, batchSize=1)

    async def one_batch() -> None:
        await first.start()
        await first.process()
        await first.stop()

    asyncio.run(one_batch())
    with open(spool_dir / "a", "ab") as f:
        f.write(b"3\n")
    second = run_source(make_source(spool_dir, batchSize=1))
    assert second.bodies == [b"b"]
    reason = failed(spool_dir, "a")
    assert "it grew from 4 bytes to 6 bytes while the agent was stopped" in reason
    assert "delivered: the events in its first 2 bytes, before a restart" in reason


def test_reused_file_name_is_moved_aside_and_the_completed_file_kept(spool_dir: Path) -> None:
    put(spool_dir, "a.COMPLETED", "first\n")
    put(spool_dir, "a", "second\n")
    proc = run_source(make_source(spool_dir))
    assert proc.bodies == [b"second"]
    assert (spool_dir / "a.COMPLETED").read_text() == "first\n"
    reason = failed(spool_dir, "a")
    assert "its name was re-used" in reason
    assert "delivered: 1 event: bytes 0 to 6 of the file, all of it as it was read" in reason
    assert "do not drop it into the spool directory again" in reason


def test_reused_name_under_tracker_dir_policy(spool_dir: Path) -> None:
    put(spool_dir, "a", "x\n")
    put(spool_dir, "b", "y\n")
    src = make_source(spool_dir, trackingPolicy="tracker_dir")
    (spool_dir / ".flumespool").mkdir()
    proc = run_source(src)
    assert sorted(proc.bodies) == [b"x", b"y"]
    (spool_dir / "a").unlink()
    put(spool_dir, "a2", "z\n")
    (spool_dir / ".flumespool" / "a2.COMPLETED").touch()  # marker already there
    again = run_source(make_source(spool_dir, trackingPolicy="tracker_dir"))
    assert again.bodies == []  # a marked name is not a candidate, as in Flume


def test_unreadable_file_is_moved_aside_and_others_flow(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(spool_dir, "locked", "x\n", mtime=1)
    put(spool_dir, "fine", "y\n", mtime=2)
    real_open = open

    def fake_open(path, *args, **kwargs):  # root ignores chmod, so refuse by hand
        if str(path).endswith("/locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    src = make_source(spool_dir)
    proc = run_source(src)
    monkeypatch.undo()
    assert proc.bodies == [b"y"]
    reason = failed(spool_dir, "locked")
    assert "Permission denied" in reason and "delivered: nothing" in reason
    assert src.counters["EventReadFail"] == 1


def test_file_vanishing_before_open_or_during_read_is_logged_and_skipped(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(spool_dir, "gone", "x\n", mtime=1)
    put(spool_dir, "during", "1\n2\n", mtime=2)
    put(spool_dir, "stays", "y\n", mtime=3)
    real_open = spool.SpoolDirectory._open

    def open_after_unlink(self, entry, offset, **kwargs):  # vanishes between list and open
        if entry.rel_path == "gone":
            os.unlink(spool_dir / "gone")
        return real_open(self, entry, offset, **kwargs)

    monkeypatch.setattr(spool.SpoolDirectory, "_open", open_after_unlink)
    src = make_source(spool_dir, batchSize=1)

    async def go() -> None:
        await src.start()
        while not processor(src).bodies:
            await src.process()
        os.unlink(spool_dir / "during")  # vanishes mid-read: the open descriptor still reads
        await drain(src)
        await src.stop()

    asyncio.run(go())
    assert processor(src).bodies == [b"1", b"2", b"y"]
    assert listing(spool_dir) == {"stays.COMPLETED", ".flumespool"}


def test_undecodable_bytes_under_fail_move_the_file_aside_after_good_lines(
    spool_dir: Path,
) -> None:
    put(spool_dir, "bad", b"good1\ngood2\nb\xffd\nlost\n", mtime=1)
    put(spool_dir, "next", b"n\n", mtime=2)
    src = make_source(spool_dir)
    proc = run_source(src)
    assert proc.bodies == [b"good1", b"good2", b"n"]
    reason = failed(spool_dir, "bad")
    assert "byte offset 13" in reason and "line 3" in reason and "FAIL" in reason
    assert "delivered: 2 events: bytes 0 to 11 of the file" in reason
    assert "tail -c +13 " in reason and "decodeErrorPolicy = REPLACE or IGNORE" in reason
    assert src.counters["EventReadFail"] == 1


def test_missing_spool_dir_is_waited_for_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    spool_dir = tmp_path / "later"
    src = make_source(spool_dir, clock)

    async def go() -> None:
        await src.start()
        for _ in range(3):
            assert await src.process() is Status.BACKOFF
            clock.advance(1)
        put(spool_dir, "a", "x\n")
        assert await src.process() is Status.READY
        await drain(src)
        await src.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert processor(src).bodies == [b"x"]
    assert sum("does not exist yet" in r.getMessage() for r in caplog.records) == 1


def test_unwritable_spool_dir_is_retried_not_fatal(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    put(spool_dir, "a", "x\n")
    verdicts = ["/spool is not writable: Permission denied"] * 2 + [None]
    monkeypatch.setattr(spool, "probe_writable", lambda d: verdicts.pop(0))
    src = make_source(spool_dir, clock)

    async def go() -> None:
        await src.start()
        assert await src.process() is Status.BACKOFF
        clock.advance(1)
        assert await src.process() is Status.BACKOFF
        clock.advance(1)
        await drain(src)
        await src.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert processor(src).bodies == [b"x"]
    assert sum("not writable" in r.getMessage() for r in caplog.records) == 1


def test_a_file_that_cannot_be_moved_aside_is_skipped_until_it_changes(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(spool_dir, "bad", b"\xff\n", mtime=1)
    put(spool_dir, "ok", b"ok\n", mtime=2)

    def refuse(*args: object) -> str:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(spool, "move_aside", refuse)
    proc = run_source(make_source(spool_dir))
    assert proc.bodies == [b"ok"]
    assert (spool_dir / "bad").exists()
    reason = spool_dir / ".flumespool" / "failed" / "bad.reason"
    assert "could not be moved" in reason.read_text()


# -- settings --------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "message"), [
    ("deletePolicy", "sometimes", "deletePolicy"),
    ("trackingPolicy", "x", "trackingPolicy"),
    ("consumeOrder", "newest", "consumeOrder"),
    ("decodeErrorPolicy", "DROP", "decodeErrorPolicy"),
    ("deserializer", "AVRO", "deserializer"),
    ("inputCharset", "no-such", "inputCharset"),
    ("inputCharset", "UTF-16", "LINE"),
    ("batchSize", 0, "batchSize"),
    ("includePattern", "(", "includePattern"),
])
def test_bad_settings_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpoolDirSettings.from_mapping({"spoolDir": "/x", key: value})


def test_spool_dir_is_required() -> None:
    with pytest.raises(ValueError, match="spoolDir"):
        SpoolDirSettings.from_mapping({})


def test_defaults_match_flume() -> None:
    s = SpoolDirSettings.from_mapping({"spoolDir": "/x"})
    assert (s.file_suffix, s.delete_immediately, s.tracker_dir, s.consume_order) == (
        ".COMPLETED", False, ".flumespool", "oldest")
    assert (s.poll_delay, s.max_backoff, s.batch_size, s.max_line_length) == (0.5, 4.0, 100, 2048)
    assert (s.file_header_key, s.basename_header_key, s.errors) == (None, None, "strict")
    assert s.deserializer == "LINE" and s.max_blob_length == 100_000_000


def test_the_shipped_configs_advice_on_in_progress_files_is_true(spool_dir: Path) -> None:
    from agent.config.loader import load_text

    root = Path(__file__).resolve().parents[2]
    text = (root / "configs" / "spooldir-avro.conf").read_text()
    assert "name.tmp" in text  # the advice...
    result = load_text(text, "a1")
    assert result.config is not None, result.issues
    keys = dict(result.config.sources["r1"].settings, spoolDir=str(spool_dir))
    put(spool_dir, "half.log.tmp", "being written\n")  # ...holds: neither is read
    put(spool_dir, ".hidden.log", "being written\n")
    put(spool_dir, "done.log", "complete\n")
    assert run_source(make_source(spool_dir, **keys)).bodies == [b"complete"]
    os.rename(spool_dir / "half.log.tmp", spool_dir / "half.log")  # complete: rename it
    assert run_source(make_source(spool_dir, **keys)).bodies == [b"being written"]


def test_from_spec_uses_the_metrics_registry() -> None:
    from agent.metrics import MetricsRegistry
    from agent.registry import BuildContext
    from tests.agent_helpers import spec

    ctx = BuildContext(clock=ManualClock(), metrics=MetricsRegistry())
    src = SpoolDirSource.from_spec(spec("source", "r1", "spooldir", {"spoolDir": "/x"}), ctx)
    assert src.counters is ctx.metrics.source("r1").counters
    assert src.counters["EventReadFail"] == 0
