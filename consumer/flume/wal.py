"""A write-ahead log for the push receiver: answer ``OK`` only once events are on disk.

Entries are appended to segment files named by their starting offset; positions are global
byte offsets, so an entry's end offset is its acknowledgement token. ``acknowledge(pos)``
lets whole segments below ``pos`` be deleted, and notes ``pos`` in a small ``acked`` file so
that a later run that does not resume from the checkpoint (``open_fresh``) can say what it
skips. Appends from concurrent connections share one fsync (group commit). A torn tail left
by a crash is cut off on open, with a warning.

An entry is one :mod:`common.records` record (``length:u32 | crc32:u32 | pickle``, the format
the agent's file channel writes too) holding a list of ``(headers, body)``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
from pathlib import Path
from typing import Any

from common import records

log = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024 * 1024
ACKED_FILE = "acked"

Records = list[tuple[dict[str, str], bytes]]


class WriteAheadLog:
    def __init__(self, directory: str | os.PathLike[str],
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.segment_bytes = segment_bytes
        self.acked = 0
        self._file: Any = None
        self._segment_start = 0
        self._end = 0
        self._pending: list[tuple[bytes, asyncio.Future[int]]] = []
        self.broken: str | None = None
        self._flusher: asyncio.Task[None] | None = None

    # ---- opening and replay (blocking: call through asyncio.to_thread) ---------------
    def open(self, acked: int = 0) -> list[tuple[int, Records]]:
        """Open the log and return ``(end_offset, records)`` for every entry after ``acked``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.acked = acked
        entries: list[tuple[int, Records]] = []
        segments = self._segments()
        end = 0
        for i, (start, path) in enumerate(segments):
            last = i == len(segments) - 1
            valid_end, seg_entries = self._scan(start, path, last)
            entries.extend((e, r) for e, r in seg_entries if e > acked)
            end = valid_end
        if not segments:
            end = acked
        self._segment_start = segments[-1][0] if segments else end
        self._end = end
        path = self._path(self._segment_start)
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the log's lifetime
        self._trim()
        return entries

    def open_fresh(self) -> list[tuple[int, Records]]:
        """Open the log for a run that does not resume from a checkpoint: every entry is
        skipped (acknowledged). Returns the entries no earlier run acknowledged, to report."""
        try:
            noted = int((self.dir / ACKED_FILE).read_text())
        except (OSError, ValueError):
            noted = 0
        left = self.open(noted)
        self.acknowledge(self._end)
        return left

    def _segments(self) -> list[tuple[int, Path]]:
        segs = []
        for p in self.dir.glob("wal-*.log"):
            try:
                segs.append((int(p.stem[4:]), p))
            except ValueError:
                continue
        return sorted(segs)

    def _path(self, start: int) -> Path:
        return self.dir / f"wal-{start:020d}.log"

    def _scan(self, start: int, path: Path, last: bool
              ) -> tuple[int, list[tuple[int, Records]]]:
        data = path.read_bytes()
        logged, pos = records.scan(data)
        entries = [(start + end, recs) for end, recs in logged]
        if pos != len(data):
            log.warning("write-ahead log %s: cutting %d bytes of torn or corrupt tail",
                        path, len(data) - pos)
            with open(path, "r+b") as f:
                f.truncate(pos)
            if not last:
                log.warning("write-ahead log %s: corruption before the last segment", path)
        return start + pos, entries

    # ---- appending (async, group commit) ---------------------------------------------
    async def append(self, records: Records) -> int:
        """Make ``records`` durable; returns the entry's end offset (its token)."""
        payload = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((payload, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return await fut

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                ends = await asyncio.to_thread(self._write, [p for p, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), end in zip(batch, ends, strict=True):
                if not fut.done():
                    fut.set_result(end)

    def _write(self, payloads: list[bytes]) -> list[int]:
        """Append a group of entries with one fsync. A failure (disk full) cuts the segment
        back to its last good end, so later entries never sit behind a torn one."""
        if self.broken:
            raise OSError(f"write-ahead log {self.dir} is unusable: {self.broken}")
        if self._end - self._segment_start >= self.segment_bytes:
            self._roll()  # only between groups: a group never spans two segments
        good_end = self._end
        ends = []
        try:
            for payload in payloads:
                self._file.write(records.header(payload))
                self._file.write(payload)
                self._end += records.HEADER.size + len(payload)
                ends.append(self._end)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError:
            self._end = good_end
            try:
                self._file.truncate(good_end - self._segment_start)
                self._file.seek(0, os.SEEK_END)
            except OSError as exc:
                self.broken = f"cannot cut a failed append back: {exc}"
            raise
        return ends

    def _roll(self) -> None:
        self._file.close()
        self._segment_start = self._end
        self._file = open(self._path(self._segment_start), "ab")  # noqa: SIM115
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._trim()

    # ---- acknowledging -----------------------------------------------------------------
    def acknowledge(self, position: int) -> None:
        """Everything up to ``position`` is covered by a durable checkpoint (blocking: notes
        it in the ``acked`` file; no fsync, a lost note only makes ``open_fresh`` report
        more)."""
        if position > self.acked:
            self.acked = position
            tmp = self.dir / (ACKED_FILE + ".tmp")
            tmp.write_text(str(position))
            os.replace(tmp, self.dir / ACKED_FILE)

    def _trim(self) -> None:
        segs = self._segments()
        for (_start, path), (next_start, _) in itertools.pairwise(segs):
            if next_start <= self.acked and next_start <= self._segment_start:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
