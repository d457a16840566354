"""PURE durable-record format, shared by the agent's file channel and the consumer's
write-ahead log.

A record is ``length:u32 | crc32:u32 | payload`` (big-endian), the payload a pickle. A log is
records back to back, appended and fsynced by its owner; a crash can leave a torn or corrupt
tail (torn, corrupt, or zeros some file systems leave after a crash), so :func:`scan` stops
at the first record that is short, fails its checksum or does not unpickle, and says where
the intact part ends, for the owner to cut there. Pickle is safe here: a log is only
ever read by the program that wrote it.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from typing import Any

__all__ = ["HEADER", "encode", "header", "scan"]

HEADER = struct.Struct(">II")


def header(payload: bytes) -> bytes:
    """The 8 bytes that go before ``payload`` (an already pickled object)."""
    return HEADER.pack(len(payload), zlib.crc32(payload))


def encode(obj: Any) -> bytes:
    """One whole record holding ``obj``."""
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return header(payload) + payload


def scan(data: bytes) -> tuple[list[tuple[int, Any]], int]:
    """The intact records at the start of ``data`` as ``(end offset, object)``, and the
    length of that intact part (``len(data)`` unless the tail is torn or corrupt)."""
    pos, records = 0, []
    while pos + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, pos)
        body = data[pos + HEADER.size: pos + HEADER.size + length]
        if len(body) < length or zlib.crc32(body) != crc:
            break
        try:
            obj = pickle.loads(body)
        except Exception:  # e.g. a zero-filled tail: length 0 and crc32(b"") == 0 both check
            break
        pos += HEADER.size + length
        records.append((pos, obj))
    return records, pos
