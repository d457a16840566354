"""Checkpoint store: versioned, checksummed snapshots of streaming state, written atomically.

The blocking file I/O half; the format (framing, :class:`Blob` references) is the pure
:mod:`consumer.engine.checkpoint_format`. A checkpoint is the file
``checkpoint-<batch time ms>``; each :class:`Blob` in it is written once, as its own
content-addressed file ``blob-<sha256>`` (same framing), and the checkpoint refers to it by
name. So a per-batch checkpoint costs O(new batch + window keys), not O(window). Blobs no
kept checkpoint refers to are deleted.

The payload is a pickle of plain data (``BatchPipeline.snapshot()``: window partials,
updateStateByKey/mapWithState state, token-less input cut but not yet processed, receiver
positions, zero and last batch time, the graph's shape). Writes go to a temporary file in the
same directory, are fsynced, renamed over, and the directory is fsynced, so a crash leaves
either the old or the new file. The newest two are kept; if the newest does not verify, the
loader logs why and falls back to the previous one.

Unlike Spark, the graph itself is not serialised (lambdas do not pickle):
``StreamingContext.getOrCreate`` re-runs the setup function to rebuild the graph, then pours
the state back in by node id, so it needs the same setup code (a changed graph is refused
with a clear error instead of silently mis-assigning state).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from typing import Any

from consumer.engine.checkpoint_format import (
    BLOB_NAME,
    Blob,
    CheckpointCorrupt,
    decode,
    encode,
    frame,
    unframe,
)

log = logging.getLogger(__name__)

__all__ = ["CheckpointStore"]

_NAME = re.compile(r"^checkpoint-(\d+)$")
KEEP = 2


class CheckpointStore:
    """A directory of checkpoint files (blocking I/O: the runtime calls it off the loop)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._durable: set[str] = set()  # blobs known complete on disk
        self._refs: dict[str, set[str]] = {}  # checkpoint file name -> blobs it uses

    def _files(self) -> list[tuple[int, str]]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), n) for n in names if (m := _NAME.match(n))]
        return sorted(found, reverse=True)

    def _write_file(self, name: str, data: bytes) -> None:
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def _fsync_dir(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write(self, time_ms: int, payload: Any) -> str:
        os.makedirs(self.directory, exist_ok=True)
        blobs: dict[str, Blob] = {}
        data = encode(payload, blobs)
        new = [b for name, b in blobs.items() if name not in self._durable]
        for blob in new:
            # written in place: a torn blob fails its name check, and only a checkpoint
            # whose directory entry is durable (below) can refer to it
            with open(os.path.join(self.directory, blob.name), "wb") as fh:
                fh.write(frame(blob.data))
                fh.flush()
                os.fsync(fh.fileno())
        name = f"checkpoint-{time_ms}"
        self._write_file(name, data)
        self._fsync_dir()  # one directory sync makes the blobs and the checkpoint durable
        self._durable.update(b.name for b in new)
        self._refs[name] = set(blobs)
        self._collect_garbage()
        return os.path.join(self.directory, name)

    def _collect_garbage(self) -> None:
        files = self._files()
        for _, name in files[KEEP:]:
            self._remove(name)
            self._refs.pop(name, None)
        live: set[str] = set()
        for _, name in files[:KEEP]:
            refs = self._refs.get(name)
            if refs is None:
                refs = self._refs[name] = self._read_refs(name)
            live |= refs
        for name in os.listdir(self.directory):
            if BLOB_NAME.match(name) and name not in live:
                self._remove(name)
                self._durable.discard(name)

    def _read_refs(self, name: str) -> set[str]:
        refs: set[str] = set()

        def note(blob_name: str) -> Blob:
            refs.add(blob_name)
            return Blob(b"", blob_name)

        try:
            with open(os.path.join(self.directory, name), "rb") as fh:
                decode(fh.read(), name, note)
        except (CheckpointCorrupt, OSError):
            pass
        return refs

    def _remove(self, name: str) -> None:
        try:
            os.remove(os.path.join(self.directory, name))
        except FileNotFoundError:
            pass

    def _load_blob(self, name: str) -> Blob:
        if not BLOB_NAME.match(name):
            raise CheckpointCorrupt(f"invalid blob reference {name!r}")
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as fh:
                body = bytes(unframe(fh.read(), path))
        except FileNotFoundError as exc:
            raise CheckpointCorrupt(f"{path}: referenced blob is missing") from exc
        blob = Blob(body, name)
        if "blob-" + hashlib.sha256(body).hexdigest() != name:
            raise CheckpointCorrupt(f"{path}: content does not match its name")
        return blob

    def load_latest(self) -> tuple[Any, str] | None:
        """The newest checkpoint that verifies (with all its blobs), with its path; None if
        there is none. Blobs it uses count as durable for later writes."""
        for _, name in self._files():
            path = os.path.join(self.directory, name)
            used: set[str] = set()

            def load(blob_name: str, used: set[str] = used) -> Blob:
                used.add(blob_name)
                return self._load_blob(blob_name)

            try:
                with open(path, "rb") as fh:
                    payload = decode(fh.read(), path, load)
            except (CheckpointCorrupt, OSError) as exc:
                log.warning("skipping checkpoint %s: %s; trying the previous one", path, exc)
                continue
            self._durable |= used
            self._refs[name] = used
            return payload, path
        return None
