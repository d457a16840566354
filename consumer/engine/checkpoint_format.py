"""PURE checkpoint file format: framing, pickling, and :class:`Blob` references (no I/O).

One framed file::

    b"FLCKPT" | version: u16 BE | payload length: u64 BE | SHA-256 of payload (32 bytes) | payload

Large immutable parts of a payload (each batch a window retains) are :class:`Blob` s: inside
:func:`encode` they pickle as references to their content-addressed names and are collected
aside, so the store (:mod:`consumer.engine.checkpoint`) writes each blob once as its own
framed file. Window state (:mod:`consumer.engine.windows`) makes Blobs without knowing where
they go.
"""

from __future__ import annotations

import contextvars
import hashlib
import pickle
import re
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["BLOB_NAME", "Blob", "CheckpointCorrupt", "decode", "encode", "frame", "unframe"]

MAGIC = b"FLCKPT"
VERSION = 1
_HEADER = struct.Struct(">6sHQ32s")
BLOB_NAME = re.compile(r"^blob-[0-9a-f]{64}$")


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


def frame(body: bytes | memoryview) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, len(body), hashlib.sha256(body).digest()) + body


def unframe(data: bytes, source: str) -> memoryview:
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
    return frame(body)


def decode(data: bytes, source: str = "<bytes>",
           load_blob: Callable[[str], Blob] | None = None) -> Any:
    body = unframe(data, source)
    token = _BLOB_LOADER.set(load_blob)
    try:
        return pickle.loads(body)
    except CheckpointCorrupt:
        raise
    except Exception as exc:  # a verified payload that still fails is a version skew
        raise CheckpointCorrupt(f"{source}: payload does not unpickle: {exc}") from exc
    finally:
        _BLOB_LOADER.reset(token)
