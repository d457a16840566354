"""PURE: a receiver's events by column (``EventChunk``), as the receiver process
(``consumer.jobs.intake``) hands them over: one chunk per call, the bodies as text (decoded as
the push receiver's default decoder does) and the values of the headers the job reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

__all__ = ["EventChunk", "chunk_columns", "chunk_records"]


@dataclass
class EventChunk:
    """One call's events, by column: the bodies (text, as the push receiver's default
    decoder makes it) and, for each header the job reads, its values (None where an event
    lacks it)."""

    bodies: list[Any]
    headers: dict[str, list[str | None]]

    @property
    def size(self) -> int:
        return len(self.bodies)


def chunk_columns(chunks: Sequence[EventChunk], headers: Sequence[str],
                  ) -> tuple[list[Any], dict[str, pl.Series]]:
    """A batch of chunks as its bodies and one column per header read."""
    bodies: list[Any] = []
    for chunk in chunks:
        bodies.extend(chunk.bodies)
    columns = {}
    for name in headers:
        values: list[str | None] = []
        for chunk in chunks:
            values.extend(chunk.headers[name])
        columns[name] = pl.Series(name, values, dtype=pl.String)
    return bodies, columns


def chunk_records(chunks: Sequence[EventChunk]) -> list[tuple[dict[str, Any], Any]]:
    """The chunks as ``(headers, body)`` records (with the headers the job reads)."""
    out: list[tuple[dict[str, Any], Any]] = []
    for chunk in chunks:
        names = list(chunk.headers)
        if not names:
            out.extend(({}, b) for b in chunk.bodies)
            continue
        columns = [chunk.headers[n] for n in names]
        for i, body in enumerate(chunk.bodies):
            out.append(({n: c[i] for n, c in zip(names, columns, strict=True)
                         if c[i] is not None}, body))
    return out
