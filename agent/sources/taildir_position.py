"""Flume's taildir position file, pure: ``[{"inode":..,"pos":..,"file":".."}, ...]``.

The same format in both directions, so a position file written by Flume resumes here and one
written here resumes in Flume (which rejects any extra key, so none is added).
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    inode: int
    pos: int
    file: str


class PositionFileError(ValueError):
    """The text is not a position file; the message says where it is wrong."""


def _whole(value: object, what: str, index: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PositionFileError(f"entry {index}: {what} must be a whole number >= 0, "
                                f"got {value!r}")
    return value


def parse_positions(text: str) -> list[Position]:
    """Entries in file order. Empty text (Flume writes nothing when it tails no file) is []."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PositionFileError(f"not JSON: {exc}") from None
    if not isinstance(data, list):
        raise PositionFileError("not a JSON array")
    out = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise PositionFileError(f"entry {i} is not an object")
        missing = [key for key in ("inode", "pos", "file") if entry.get(key) is None]
        if missing:
            raise PositionFileError(f"entry {i} lacks {', '.join(missing)}")
        if not isinstance(entry["file"], str):
            raise PositionFileError(f"entry {i}: file must be a string")
        out.append(Position(_whole(entry["inode"], "inode", i), _whole(entry["pos"], "pos", i),
                            entry["file"]))
    return out


def format_positions(positions: list[Position]) -> str:
    """Compact JSON, keys in Flume's order."""
    return json.dumps([{"inode": p.inode, "pos": p.pos, "file": p.file} for p in positions],
                      separators=(",", ":"), ensure_ascii=False)
