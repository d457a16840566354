"""Pure file selection: which listed files are candidates, and which one to read next.

The I/O layer lists the spool directory into ``Listing`` entries; everything deciding what
is eligible lives here so it can be tested without a filesystem.

Flume's rules, kept as they are:
- a file is a candidate when its name does not start with ``.`` (hidden: in-progress
  copies), does not end with ``fileSuffix``, fully matches ``includePattern`` and does not
  fully match ``ignorePattern`` (ignore wins), and, under trackingPolicy=tracker_dir, has no
  completion marker yet;
- with recursiveDirectorySearch, subdirectories are entered unless hidden or matching
  ``ignorePattern``;
- ``oldest`` picks the smallest modification time, ``youngest`` the largest, ties going to the
  lexicographically smaller path; times are compared in whole milliseconds as Java's
  ``File.lastModified`` reports them; ``random`` picks uniformly.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Listing:
    """One regular file seen in the spool directory (``link``: through a symbolic link)."""

    rel_path: str  # relative to spoolDir, "/"-separated
    mtime_ns: int
    size: int
    inode: int = 0
    link: bool = False

    @property
    def name(self) -> str:
        return self.rel_path.rpartition("/")[2]


@dataclass(frozen=True)
class Skipped:
    """An entry whose name passes the rules but that cannot be read, and why."""

    rel_path: str
    why: str


@dataclass(frozen=True)
class CandidateRules:
    include: re.Pattern[str]
    ignore: re.Pattern[str]
    file_suffix: str

    def accepts_name(self, name: str) -> bool:
        if name.startswith(".") or name.endswith(self.file_suffix):
            return False
        if self.ignore.fullmatch(name) is not None:
            return False
        return self.include.fullmatch(name) is not None

    def enters_directory(self, name: str) -> bool:
        return not name.startswith(".") and self.ignore.fullmatch(name) is None


def candidates(
    listing: Iterable[Listing],
    rules: CandidateRules,
    *,
    completed_markers: frozenset[str] = frozenset(),
    skip: frozenset[tuple[str, int, int]] = frozenset(),
) -> list[Listing]:
    """Files eligible for reading.

    ``completed_markers``: rel paths already marked done (trackingPolicy=tracker_dir).
    ``skip``: (rel_path, inode, mtime_ns) of files that failed and could not be moved aside;
    they become eligible again once they change.
    """
    return [
        entry
        for entry in listing
        if rules.accepts_name(entry.name)
        and entry.rel_path not in completed_markers
        and (entry.rel_path, entry.inode, entry.mtime_ns) not in skip
    ]


def _age_key(entry: Listing) -> tuple[int, str]:
    return (entry.mtime_ns // 1_000_000, entry.rel_path)


def choose(
    eligible: list[Listing], order: str, rng: random.Random | None = None
) -> Listing | None:
    """The next file to read under ``consumeOrder`` (oldest | youngest | random)."""
    if not eligible:
        return None
    if order == "oldest":
        return min(eligible, key=_age_key)
    if order == "youngest":
        return min(eligible, key=lambda e: (-(e.mtime_ns // 1_000_000), e.rel_path))
    if order == "random":
        return (rng or random.Random()).choice(eligible)
    raise ValueError(f"unknown consumeOrder {order!r}")
