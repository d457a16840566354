"""The spooldir source's pure decisions, fed made-up stat results."""

from __future__ import annotations

import os

from agent.sources.spooldir.decisions import (
    Headers,
    Resume,
    modified_while_down,
    resume_verdict,
    retire_problem,
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
    assert "40 bytes had been delivered" in modified_while_down(OPENED, stat(size=120), 40)


def test_retire_problem_names_what_changed() -> None:
    assert retire_problem(OPENED, stat()) is None
    assert "replaced" in str(retire_problem(OPENED, stat(inode=9)))
    assert "modified" in str(retire_problem(OPENED, stat(mtime_ns=6_000_000_000)))
    assert "changed size" in str(retire_problem(OPENED, stat(size=50)))


def test_headers_carry_the_absolute_path_and_the_base_name() -> None:
    both = Headers("file", "basename").for_file("/spool", "sub/a.log")
    assert both == {"file": "/spool/sub/a.log", "basename": "a.log"}
    assert Headers(None, None).for_file("/spool", "a.log") == {}
