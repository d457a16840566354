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

Unlike Flume, the directory is not listed again for every file: the candidates live in a
sorted ``CandidateIndex`` that the blocking layer fills from one scan and then updates path by
path as the watcher reports changes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sortedcontainers import SortedKeyList


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


def _oldest_first(entry: Listing) -> tuple[int, str]:
    return (entry.mtime_ns // 1_000_000, entry.rel_path)


def _youngest_first(entry: Listing) -> tuple[int, str]:
    return (-(entry.mtime_ns // 1_000_000), entry.rel_path)


class CandidateIndex:
    """The files waiting to be read, kept sorted for ``consumeOrder`` (oldest | youngest |
    random): a pick, an insert and a removal each cost O(log n), so reading n files costs
    O(n log n) instead of one scan of the directory per file (Flume's way, O(n^2)).
    """

    def __init__(self, order: str, rng: random.Random | None = None) -> None:
        if order not in ("oldest", "youngest", "random"):
            raise ValueError(f"unknown consumeOrder {order!r}")
        self.order = order
        self.rng = rng or random.Random()
        key = _youngest_first if order == "youngest" else _oldest_first
        self._sorted: SortedKeyList = SortedKeyList(key=key)
        self._by_path: dict[str, Listing] = {}

    def __len__(self) -> int:
        return len(self._by_path)

    def __contains__(self, rel_path: object) -> bool:
        return rel_path in self._by_path

    def get(self, rel_path: str) -> Listing | None:
        return self._by_path.get(rel_path)

    def put(self, entry: Listing) -> None:
        """Add a file, or update it (a new modification time moves it)."""
        old = self._by_path.get(entry.rel_path)
        if old == entry:
            return
        if old is not None:
            self._sorted.remove(old)
        self._by_path[entry.rel_path] = entry
        self._sorted.add(entry)

    def discard(self, rel_path: str) -> None:
        old = self._by_path.pop(rel_path, None)
        if old is not None:
            self._sorted.remove(old)

    def replace(self, entries: Iterable[Listing]) -> None:
        """Forget everything and hold ``entries`` (after a full scan)."""
        self._by_path = {entry.rel_path: entry for entry in entries}
        self._sorted.clear()
        self._sorted.update(self._by_path.values())

    def first(self) -> Listing | None:
        """The next file to read, left in the index."""
        if not self._sorted:
            return None
        chosen: Listing
        if self.order == "random":
            chosen = self._sorted[self.rng.randrange(len(self._sorted))]
        else:
            chosen = self._sorted[0]
        return chosen
