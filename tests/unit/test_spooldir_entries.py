"""Entries in the spool directory that are not plain files: each is skipped with one log line
naming it and saying why, and every other file keeps flowing."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from agent.sources.spooldir import spool
from agent.sources.spooldir.decisions import as_unicode, shown
from tests.unit.test_spooldir_support import make_source, put, run_source


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    return d


def control(spool_dir: Path, lines: int = 1000) -> list[bytes]:
    put(spool_dir, "control.log", "".join(f"c{i}\n" for i in range(lines)))
    return [f"c{i}".encode() for i in range(lines)]


def skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]


def test_a_self_referencing_symlink_is_skipped_and_the_rest_flows(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.symlink("loop", spool_dir / "loop")
    expected = control(spool_dir)
    src = make_source(spool_dir)
    with caplog.at_level(logging.WARNING):
        assert run_source(src).bodies == expected
        put(spool_dir, "later.log", "x\n")
        assert run_source(make_source(spool_dir)).bodies == [b"x"]
    lines = skip_lines(caplog)
    assert len([m for m in lines if "/loop:" in m]) == 2  # once per source run, not per scan
    assert "a symbolic link that loops (Too many levels of symbolic links)" in lines[0]
    assert os.path.islink(spool_dir / "loop")  # left alone


def test_a_symlink_loop_is_logged_once_per_run_however_often_the_directory_is_scanned(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.symlink("loop", spool_dir / "loop")
    src = make_source(spool_dir)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            src.spool.open_next()
    assert len(skip_lines(caplog)) == 1


def test_a_fifo_is_skipped_with_a_log_line(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(spool_dir / "pipe")
    expected = control(spool_dir, 10)
    with caplog.at_level(logging.WARNING):
        assert run_source(make_source(spool_dir)).bodies == expected
    (line,) = skip_lines(caplog)
    assert "/pipe: a FIFO (named pipe)" in line and "only regular files are read" in line


def test_a_dangling_symlink_is_skipped_until_its_target_appears(
    spool_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "elsewhere.log"
    os.symlink(target, spool_dir / "link.log")
    with caplog.at_level(logging.WARNING):
        assert run_source(make_source(spool_dir)).bodies == []
    (line,) = skip_lines(caplog)
    assert "/link.log: a dangling symbolic link" in line and str(target) in line
    target.write_text("late\n")
    assert run_source(make_source(spool_dir)).bodies == [b"late"]
    assert os.path.islink(spool_dir / "link.log.COMPLETED")  # the link is renamed, as Flume
    assert target.read_text() == "late\n"


def test_a_name_with_a_line_break_is_skipped_with_a_log_line_saying_why(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(spool_dir, "two\nlines.log", "hidden\n")
    put(spool_dir, "x.txt", "not included\n")
    expected = control(spool_dir, 10)
    with caplog.at_level(logging.WARNING):
        src = make_source(spool_dir, includePattern=r"^.*\.log$")
        assert run_source(src).bodies == expected
    (line,) = skip_lines(caplog)  # x.txt is an ordinary mismatch: no line
    assert "two\\nlines.log: its name contains a line break" in line
    assert "includePattern ^.*\\.log$" in line


def test_a_name_that_is_not_utf8_is_read_and_shown_escaped(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.makedirs(spool_dir, exist_ok=True)
    with open(os.path.join(os.fsencode(spool_dir), b"caf\xe9.log"), "wb") as f:
        f.write(b"one\n")
    with caplog.at_level(logging.INFO):
        proc = run_source(make_source(spool_dir, basenameHeader=True))
    assert proc.bodies == [b"one"]
    assert proc.batches[0][0].headers == {"basename": "caf\ufffd.log"}  # as Java shows it
    assert any("caf\\xe9.log from byte 0" in r.getMessage() for r in caplog.records)
    assert os.path.exists(os.path.join(os.fsencode(spool_dir), b"caf\xe9.log.COMPLETED"))


def test_symlinks_to_files_are_followed_by_default_and_skipped_when_told(
    spool_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside.log"
    outside.write_text("o\n")
    os.symlink(outside, spool_dir / "in.log")
    with caplog.at_level(logging.INFO):
        assert run_source(make_source(spool_dir)).bodies == [b"o"]
    assert any(f"a symbolic link to {outside}" in r.getMessage() for r in caplog.records)
    caplog.clear()
    os.symlink(outside, spool_dir / "again.log")
    with caplog.at_level(logging.WARNING):
        assert run_source(make_source(spool_dir, followSymlinks="false")).bodies == []
    (line,) = skip_lines(caplog)
    assert "/again.log: a symbolic link, and followSymlinks = false" in line


def test_recursive_search_never_enters_linked_directories(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(spool_dir, "sub/a.log", "a\n")
    os.symlink("..", spool_dir / "sub" / "up")  # a cycle, if it were followed
    with caplog.at_level(logging.WARNING):
        assert run_source(make_source(spool_dir, recursiveDirectorySearch=True)).bodies == [b"a"]
    (line,) = skip_lines(caplog)
    assert "sub/up: a symbolic link to a directory" in line


def test_a_subdirectory_that_cannot_be_listed_is_skipped_not_fatal(
    spool_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    put(spool_dir, "locked/a.log", "no\n")
    expected = control(spool_dir, 3)
    real_scandir = os.scandir

    def scandir(path):  # root ignores chmod 000, so refuse by hand
        if str(path).endswith("/locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(spool.os, "scandir", scandir)
    with caplog.at_level(logging.WARNING):
        src = make_source(spool_dir, recursiveDirectorySearch=True)
        assert run_source(src).bodies == expected
    (line,) = skip_lines(caplog)
    assert "/locked: a directory that cannot be listed (Permission denied)" in line


def test_shown_escapes_line_breaks_controls_and_undecodable_bytes() -> None:
    assert shown("/spool/plain é.log") == "/spool/plain é.log"
    assert shown("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"
    assert shown(os.fsdecode(b"caf\xe9")) == "caf\\xe9"
    assert as_unicode(os.fsdecode(b"caf\xe9.log")) == "caf\ufffd.log"
    assert as_unicode("ok.log") == "ok.log"
