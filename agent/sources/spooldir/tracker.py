"""Durable read position of the file being consumed, kept in the tracker directory.

Format of ``<trackerDir>/.flumelet-position`` (text, UTF-8)::

    {"version": 1, "path": "logs/a.log", "dev": 2049, "inode": 1234, "size": 5120, "mtime_ns": ...}
    0
    4096
    8211

The first line identifies the file (path relative to spoolDir, device, inode, size and
modification time captured when reading began); every following line is a byte offset
committed *after* the channel accepted the events before it. The last complete line wins; a
torn last line (a crash during the append) is ignored, which can only move the position back
by one batch, never forward.

Why an append log and not a rewritten file per commit: a commit is one ``write()`` of a few
bytes to an ``O_APPEND`` descriptor, cheap enough to do for every batch inline. The header is
replaced atomically (write a temp file, then rename) and the log is compacted the same way
after ``COMPACT_EVERY`` commits. There is no fsync per commit: the page cache survives a
killed process; an OS crash could lose recent marks, which only repeats events.

(Flume keeps an Avro container ``.flumespool-main.meta`` instead; we neither read nor write it.)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

POSITION_FILE = ".flumelet-position"
COMPACT_EVERY = 10_000


@dataclass(frozen=True)
class FileIdentity:
    rel_path: str
    dev: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, rel_path: str, st: os.stat_result) -> FileIdentity:
        return cls(rel_path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def same_file(self, st: os.stat_result) -> bool:
        return (self.dev, self.inode) == (st.st_dev, st.st_ino)

    def unchanged(self, st: os.stat_result) -> bool:
        return self.same_file(st) and (self.size, self.mtime_ns) == (st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class TrackedPosition:
    identity: FileIdentity
    offset: int


class PositionTracker:
    """Reads and writes the position file; blocking calls, each a few syscalls at most."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, POSITION_FILE)
        self._fd: int | None = None
        self._identity: FileIdentity | None = None
        self._appends = 0

    def load(self) -> TrackedPosition | None:
        """The last committed position, or None when there is none or it is unreadable."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        lines = data.split(b"\n")
        complete = lines[:-1]  # after the last "\n" is a torn or empty tail
        try:
            header = json.loads(complete[0])
            identity = FileIdentity(
                str(header["path"]), int(header["dev"]), int(header["inode"]),
                int(header["size"]), int(header["mtime_ns"]),
            )
            offsets = [int(line) for line in complete[1:] if line.strip()]
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable position file %s: %r", self.path, exc)
            return None
        return TrackedPosition(identity, offsets[-1] if offsets else 0)

    def begin(self, identity: FileIdentity, offset: int = 0) -> None:
        """Start tracking a file (atomically replaces whatever was tracked before)."""
        self.close()
        header = {"version": 1, "path": identity.rel_path}
        header.update({k: v for k, v in asdict(identity).items() if k != "rel_path"})
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(json.dumps(header).encode() + b"\n" + b"%d\n" % offset)
        os.replace(tmp, self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._identity = identity
        self._appends = 0

    def commit(self, offset: int) -> None:
        if self._fd is None or self._identity is None:
            raise RuntimeError("commit() without begin()")
        self._appends += 1
        if self._appends >= COMPACT_EVERY:
            self.begin(self._identity, offset)
            return
        os.write(self._fd, b"%d\n" % offset)

    def clear(self) -> None:
        """The tracked file is finished: forget it."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._identity = None
