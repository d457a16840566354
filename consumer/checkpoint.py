"""Checkpoints: versioned, checksummed snapshots of streaming state, written atomically.

Layout of one file (``checkpoint-<batch time ms>``)::

    b"FLCKPT" | version: u16 BE | payload length: u64 BE | SHA-256 of payload (32 bytes) | payload

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
import pickle
import re
import struct
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["CheckpointCorrupt", "CheckpointStore", "decode", "encode"]

MAGIC = b"FLCKPT"
VERSION = 1
_HEADER = struct.Struct(">6sHQ32s")
_NAME = re.compile(r"^checkpoint-(\d+)$")
KEEP = 2


class CheckpointCorrupt(ValueError):
    """A checkpoint file that cannot be trusted (names the file and the reason)."""


def encode(payload: Any) -> bytes:
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(MAGIC, VERSION, len(body), hashlib.sha256(body).digest()) + body


def decode(data: bytes, source: str = "<bytes>") -> Any:
    if len(data) < _HEADER.size:
        raise CheckpointCorrupt(f"{source}: truncated header ({len(data)} bytes)")
    magic, version, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CheckpointCorrupt(f"{source}: not a flumelet checkpoint (bad magic)")
    if version != VERSION:
        raise CheckpointCorrupt(f"{source}: unsupported checkpoint version {version}")
    body = memoryview(data)[_HEADER.size:]
    if len(body) != length:
        raise CheckpointCorrupt(f"{source}: payload is {len(body)} bytes, header says {length}")
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointCorrupt(f"{source}: checksum mismatch")
    try:
        return pickle.loads(body)
    except Exception as exc:  # a verified payload that still fails is a version skew
        raise CheckpointCorrupt(f"{source}: payload does not unpickle: {exc}") from exc


class CheckpointStore:
    """A directory of checkpoint files (blocking I/O: the runtime calls it off the loop)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _files(self) -> list[tuple[int, str]]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), n) for n in names if (m := _NAME.match(n))]
        return sorted(found, reverse=True)

    def write(self, time_ms: int, payload: Any) -> str:
        os.makedirs(self.directory, exist_ok=True)
        data = encode(payload)
        final = os.path.join(self.directory, f"checkpoint-{time_ms}")
        tmp = os.path.join(self.directory, f".checkpoint-{time_ms}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        for _, name in self._files()[KEEP:]:
            try:
                os.remove(os.path.join(self.directory, name))
            except FileNotFoundError:
                pass
        return final

    def load_latest(self) -> tuple[Any, str] | None:
        """The newest checkpoint that verifies, with its path; None if there is none."""
        for _, name in self._files():
            path = os.path.join(self.directory, name)
            try:
                with open(path, "rb") as fh:
                    return decode(fh.read(), path), path
            except (CheckpointCorrupt, OSError) as exc:
                log.warning("skipping checkpoint %s: %s; trying the previous one", path, exc)
        return None
