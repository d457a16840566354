"""Checkpoints: versioned, checksummed snapshots of streaming state, written atomically.

Layout of one file (``checkpoint-<batch time ms>``)::

    b"FLCKPT" | version: u16 BE | payload length: u64 BE | SHA-256 of payload (32 bytes) | payload

Large immutable parts (each batch a window retains) are :class:`Blob` s: they are written
once, as their own content-addressed files ``blob-<sha256>`` (same header), and a checkpoint
refers to them by name (pickle persistent ids). So a per-batch checkpoint costs
O(new batch + window keys), not O(window). Blobs no kept checkpoint refers to are deleted.

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

import contextvars
import hashlib
import logging
import os
import pickle
import re
import struct
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["Blob", "CheckpointCorrupt", "CheckpointStore", "decode", "encode"]

MAGIC = b"FLCKPT"
VERSION = 1
_HEADER = struct.Struct(">6sHQ32s")
_NAME = re.compile(r"^checkpoint-(\d+)$")
_BLOB = re.compile(r"^blob-[0-9a-f]{64}$")
KEEP = 2


class CheckpointCorrupt(ValueError):
    """A checkpoint file that cannot be trusted (names the file and the reason)."""


_BLOB_SINK: contextvars.ContextVar[dict[str, Blob] | None] = contextvars.ContextVar(
    "blob_sink", default=None)
_BLOB_LOADER: contextvars.ContextVar[Callable[[str], Blob] | None] = contextvars.ContextVar(
    "blob_loader", default=None)


class Blob:
    """Bytes that never change once made (a retained batch, already pickled).

    Inside :func:`encode` a Blob pickles as a reference to its name (via ``__reduce__``, so
    every other object is pickled at C speed with no per-object hook)."""

    __slots__ = ("_name", "data")

    def __init__(self, data: bytes, name: str | None = None) -> None:
        self.data = data
        self._name = name

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = "blob-" + hashlib.sha256(self.data).hexdigest()
        return self._name

    def __reduce__(self) -> tuple[Any, ...]:
        sink = _BLOB_SINK.get()
        if sink is None:
            return (Blob, (self.data, self._name))
        sink[self.name] = self
        return (_blob_ref, (self.name,))


def _blob_ref(name: str) -> Blob:
    loader = _BLOB_LOADER.get()
    if loader is None:
        raise CheckpointCorrupt(f"refers to blob {name} but no blob store is available")
    return loader(name)


def _frame(body: bytes | memoryview) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, len(body), hashlib.sha256(body).digest()) + body


def _unframe(data: bytes, source: str) -> memoryview:
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
    return body


def encode(payload: Any, blobs: dict[str, Blob] | None = None) -> bytes:
    """Frame the pickled payload; Blobs inside it are collected into ``blobs`` by name."""
    token = _BLOB_SINK.set({} if blobs is None else blobs)
    try:
        body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        _BLOB_SINK.reset(token)
    return _frame(body)


def decode(data: bytes, source: str = "<bytes>",
           load_blob: Callable[[str], Blob] | None = None) -> Any:
    body = _unframe(data, source)
    token = _BLOB_LOADER.set(load_blob)
    try:
        return pickle.loads(body)
    except CheckpointCorrupt:
        raise
    except Exception as exc:  # a verified payload that still fails is a version skew
        raise CheckpointCorrupt(f"{source}: payload does not unpickle: {exc}") from exc
    finally:
        _BLOB_LOADER.reset(token)


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
                fh.write(_frame(blob.data))
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
            if _BLOB.match(name) and name not in live:
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
        if not _BLOB.match(name):
            raise CheckpointCorrupt(f"invalid blob reference {name!r}")
        path = os.path.join(self.directory, name)
        try:
            with open(path, "rb") as fh:
                body = bytes(_unframe(fh.read(), path))
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
