"""Which files taildir tails and from where, pure: the decisions on rotation and truncation.

Files are known by inode (as in Flume's position file), and the table is updated from scans
of the file groups' directories. The cases Flume gets wrong are the reason this exists:

- renamed, and the new name still matches (``app.log`` -> ``app.log.1`` with ``app.log.*``):
  the same file at its committed position, not a new file read again from 0 (Flume
  duplicates it);
- renamed to a name that does not match, or deleted: the file is *retired*, not forgotten;
  the source finishes reading it through its open handle (or finds it by inode in its
  directory) until it has been idle for ``idleTimeout``, so the lines written just before
  the rotation are not lost (Flume loses them);
- truncated (size below the committed position): read again from 0;
- at start, a position-file entry whose inode now has another name resumes there when the old
  name now belongs to another file or is gone (rotation while the agent was down), and one
  whose inode only survives under a non-matching name in the same directory is retired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.sources.taildir_position import Position


@dataclass(frozen=True)
class Observed:
    """One matching file as a scan saw it (``group``: index of its file group)."""

    path: str
    group: int
    inode: int
    size: int
    mtime_ns: int = 0


@dataclass
class Tracked:
    path: str
    group: int
    inode: int
    pos: int  # committed offset: everything before it is in the channels
    size: int  # last size seen
    mtime_ns: int = 0
    retired: bool = False  # no longer matches: drained, then dropped
    last_active: float = 0.0  # monotonic time of the last growth or read


class TailTable:
    def __init__(self) -> None:
        self.files: dict[int, Tracked] = {}
        self._order: list[int] = []
        self.changed = False  # files were added, retired or dropped since the caller reset it

    # --- start -----------------------------------------------------------------------------

    def restore(self, positions: Iterable[Position], scan: list[Observed], skip_to_end: bool,
                now: float) -> list[Position]:
        """Take the position file into account; returns the entries matching no scanned file
        (the caller looks for them by inode and hands them to ``retire_found``)."""
        by_inode: dict[int, Position] = {}
        for p in positions:
            by_inode[p.inode] = p  # a later entry for the same inode wins
        by_path = {o.path: o for o in scan}
        used: set[int] = set()
        for o in scan:
            entry = by_inode.get(o.inode)
            start = o.size if skip_to_end else 0
            if entry is not None:
                if entry.file == o.path:
                    start = entry.pos if entry.pos <= o.size else 0
                    used.add(o.inode)
                else:
                    holder = by_path.get(entry.file)
                    if (holder is None or holder.inode != o.inode) and entry.pos <= o.size:
                        start = entry.pos  # renamed while we were away
                        used.add(o.inode)
            self._track(o, start, now)
        self._reorder(scan)
        return [p for inode, p in by_inode.items() if inode not in used
                and inode not in self.files]

    def retire_found(self, entry: Position, found: Observed, now: float) -> None:
        """A position-file entry found by inode under a non-matching name: drain it."""
        if found.inode in self.files or entry.pos > found.size:
            return
        tracked = self._track(found, entry.pos, now)
        tracked.retired = True

    # --- scans -----------------------------------------------------------------------------

    def observe(self, scan: list[Observed], now: float) -> list[int]:
        """Update from a scan; returns the inodes that stopped matching just now (the caller
        keeps reading them through an open handle, or looks for them by inode)."""
        seen = set()
        for o in scan:
            seen.add(o.inode)
            tracked = self.files.get(o.inode)
            if tracked is None:
                self._track(o, 0, now)  # a new file is read from its start
                continue
            tracked.path, tracked.group, tracked.retired = o.path, o.group, False
            self.saw_size(o.inode, o.size, now, o.mtime_ns)
        gone = [inode for inode, t in self.files.items() if inode not in seen and not t.retired]
        for inode in gone:
            self.files[inode].retired = True
        self.changed = self.changed or bool(gone)
        self._reorder(scan)
        return gone

    def saw_size(self, inode: int, size: int, now: float, mtime_ns: int | None = None) -> bool:
        """Record a size (from a scan or an open handle). True if the file was truncated:
        the position goes back to 0."""
        tracked = self.files[inode]
        truncated = size < tracked.pos
        if truncated:
            tracked.pos = 0
        if size != tracked.size or truncated or (mtime_ns is not None
                                                 and mtime_ns != tracked.mtime_ns):
            tracked.last_active = now
        tracked.size = size
        if mtime_ns is not None:
            tracked.mtime_ns = mtime_ns
        return truncated

    def commit(self, inode: int, pos: int, now: float) -> None:
        tracked = self.files[inode]
        tracked.pos = pos
        tracked.last_active = now

    def drop(self, inode: int) -> None:
        self.changed = True
        self.files.pop(inode, None)
        self._order = [i for i in self._order if i != inode]

    def idle(self, inode: int, now: float, timeout: float) -> bool:
        return now - self.files[inode].last_active >= timeout

    # --- views -----------------------------------------------------------------------------

    def order(self) -> list[int]:
        """Retired files first (older data), then groups in order, oldest file first."""
        retired = [i for i in self._order if self.files[i].retired]
        return retired + [i for i in self._order if not self.files[i].retired]

    def positions(self) -> list[Position]:
        return [Position(t.inode, t.pos, t.path) for t in (self.files[i] for i in self.order())]

    def _track(self, o: Observed, pos: int, now: float) -> Tracked:
        tracked = Tracked(o.path, o.group, o.inode, pos, o.size, o.mtime_ns, last_active=now)
        self.files[o.inode] = tracked
        self.changed = True
        if o.inode not in self._order:
            self._order.append(o.inode)
        return tracked

    def _reorder(self, scan: list[Observed]) -> None:
        ranked = sorted(scan, key=lambda o: (o.group, o.mtime_ns))
        scanned = [o.inode for o in ranked]
        rest = [i for i in self._order if i not in set(scanned)]
        self._order = rest + [i for i in scanned if i in self.files]
