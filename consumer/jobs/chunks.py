"""PURE: a receiver's events by column (``EventChunk``), as the receiver process
(``consumer.jobs.intake``) hands them over: one chunk per call, the bodies as text (decoded as
the push receiver's default decoder does) and the values of the headers the job reads.

The child sends a call's bodies as one buffer plus offsets, and :func:`text_column` makes them
a polars string column without a Python object per body: at W1's rate, a list of ``str``
pickled, unpickled and turned into a column again cost about 0.8 µs a line on the two
processes' critical paths."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import polars as pl
import pyarrow as pa

__all__ = ["EventChunk", "chunk_columns", "chunk_records", "pack_bodies", "text_column"]


def pack_bodies(bodies: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Bodies as one buffer and their int64 offsets (``len(bodies) + 1`` of them)."""
    offsets = array("q", accumulate(map(len, bodies), initial=0))
    return b"".join(bodies), offsets.tobytes()


def text_column(data: bytes, offsets: bytes) -> pl.Series:
    """``pack_bodies``'s bodies as a string column, each decoded as the push receiver's
    default decoder (``utf8_decoder``) does: UTF-8, undecodable bytes as U+FFFD. Arrow wraps
    the buffers without copying them and checks the whole chunk's UTF-8 at once (nothing is
    allocated in Arrow's own memory pool, which would keep freed memory); only a chunk
    holding a body that is not UTF-8 is decoded body by body."""
    n = len(offsets) // 8 - 1
    text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        ends = array("q", offsets)
        return pl.Series("line", [data[ends[i]:ends[i + 1]].decode("utf-8", errors="replace")
                                  for i in range(n)], dtype=pl.String)
    return pl.Series("line", text)


@dataclass
class EventChunk:
    """One call's events, by column: the bodies (text, as the push receiver's default
    decoder makes it: a string column, or a list of ``str``) and, for each header the job
    reads, its values (None where an event lacks it)."""

    bodies: pl.Series | list[Any]
    headers: dict[str, list[str | None]]

    @property
    def size(self) -> int:
        return len(self.bodies)


def chunk_columns(chunks: Sequence[EventChunk], headers: Sequence[str],
                  ) -> tuple[pl.Series | list[Any], dict[str, pl.Series]]:
    """A batch of chunks as its bodies and one column per header read."""
    bodies: pl.Series | list[Any]
    columns = [chunk.bodies for chunk in chunks if isinstance(chunk.bodies, pl.Series)]
    if columns and len(columns) == len(chunks):
        bodies = pl.concat(columns, rechunk=False)
    else:
        bodies = []
        for chunk in chunks:
            bodies.extend(chunk.bodies)
    by_header = {}
    for name in headers:
        values: list[str | None] = []
        for chunk in chunks:
            values.extend(chunk.headers[name])
        by_header[name] = pl.Series(name, values, dtype=pl.String)
    return bodies, by_header


def chunk_records(chunks: Sequence[EventChunk]) -> list[tuple[dict[str, Any], Any]]:
    """The chunks as ``(headers, body)`` records (with the headers the job reads)."""
    out: list[tuple[dict[str, Any], Any]] = []
    for chunk in chunks:
        names = list(chunk.headers)
        bodies = (chunk.bodies.to_list() if isinstance(chunk.bodies, pl.Series)
                  else chunk.bodies)
        if not names:
            out.extend(({}, b) for b in bodies)
            continue
        columns = [chunk.headers[n] for n in names]
        for i, body in enumerate(bodies):
            out.append(({n: c[i] for n, c in zip(names, columns, strict=True)
                         if c[i] is not None}, body))
    return out
