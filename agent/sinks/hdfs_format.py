"""What the hdfs sink writes, pure: serializers, compression codecs, SequenceFiles, and how
much of a file a crash left intact.

Like Flume's writers, every flush ends a compressed member (gzip member, bzip2 stream, zlib
stream): a file cut after any flush is a valid concatenation that gzip/bzip2 tools and
Hadoop's codecs read to the end. ``valid_length`` finds that end in a file a crash left
behind, so recovery can drop a torn last member (or a torn last text line).
"""

from __future__ import annotations

import bz2
import gzip
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.event import Event

# --- serializers ---------------------------------------------------------------------------

Serializer = Callable[[Event], bytes]


def serializer(name: str, append_newline: bool = True) -> Serializer:
    """Flume's ``serializer``: TEXT (the body) or HEADER_AND_TEXT (``{k=v, ...} body``)."""
    kind = name.strip().upper()
    nl = b"\n" if append_newline else b""
    if kind in ("TEXT", "ORG.APACHE.FLUME.SERIALIZATION.BODYTEXTEVENTSERIALIZER$BUILDER"):
        return (lambda e: e.body + nl) if nl else (lambda e: e.body)
    if kind in ("HEADER_AND_TEXT",
                "ORG.APACHE.FLUME.SERIALIZATION.HEADERANDBODYTEXTEVENTSERIALIZER$BUILDER"):
        return lambda e: _java_map(e.header_map).encode() + b" " + e.body + nl
    raise ValueError(f"serializer {name!r} is not supported (TEXT or HEADER_AND_TEXT)")


def _java_map(headers: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in headers.items()) + "}"


# --- codecs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    name: str
    extension: str
    compress: Callable[[bytes], bytes]
    kind: str  # gzip | bzip2 | zlib


CODECS = {
    "gzip": Codec("GzipCodec", ".gz", lambda d: gzip.compress(d, 6, mtime=0), "gzip"),
    "bzip2": Codec("BZip2Codec", ".bz2", lambda d: bz2.compress(d, 9), "bzip2"),
    "default": Codec("DefaultCodec", ".deflate", lambda d: zlib.compress(d, 6), "zlib"),
    "deflate": Codec("DeflateCodec", ".deflate", lambda d: zlib.compress(d, 6), "zlib"),
}
_UNAVAILABLE = ("lzo", "lzop", "snappy", "lz4", "zstandard", "zstd")


def codec(name: str) -> Codec | None:
    """Flume's codec lookup: the class name, its simple name, or the simple name without
    ``Codec``, any case. ``None``/"None" means no compression."""
    simple = name.strip().rsplit(".", 1)[-1].lower()
    if simple == "none":
        return None
    simple = simple.removesuffix("codec")
    found = CODECS.get(simple)
    if found is None:
        supported = "gzip, bzip2, deflate, default (DefaultCodec)"
        if simple in _UNAVAILABLE:
            raise ValueError(f"codec {name!r} is not available in flumelet; use {supported}")
        raise ValueError(f"unknown codec {name!r}; use {supported}")
    return found


# --- SequenceFile (Hadoop's format, version 6, uncompressed records) -------------------------

SEQ_MAGIC = b"SEQ\x06"
LONG_WRITABLE = "org.apache.hadoop.io.LongWritable"
BYTES_WRITABLE = "org.apache.hadoop.io.BytesWritable"
TEXT = "org.apache.hadoop.io.Text"
SYNC_ESCAPE = -1
SYNC_INTERVAL = 100 * (4 + 16)  # Hadoop's SequenceFile.SYNC_INTERVAL


def vint(value: int) -> bytes:
    """Hadoop's WritableUtils.writeVLong."""
    if -112 <= value <= 127:
        return struct.pack(">b", value)
    length = -112
    if value < 0:
        value ^= -1
        length = -120
    tmp, n = value, 0
    while tmp:
        tmp >>= 8
        n += 1
    return struct.pack(">b", length - n) + value.to_bytes(n, "big")


def _text(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return vint(len(data)) + data


class SequenceFileEncoder:
    """Key LongWritable (the event's timestamp), value BytesWritable (``writeFormat``
    Writable) or Text (``writeFormat`` Text), as Flume's HDFSSequenceFile writes them."""

    def __init__(self, write_format: str = "Writable", sync: bytes | None = None) -> None:
        fmt = write_format.strip().lower()
        if fmt not in ("writable", "text"):
            raise ValueError(f"writeFormat must be Writable or Text, not {write_format!r}")
        self.text = fmt == "text"
        self.sync = sync if sync is not None else os.urandom(16)
        self.position = 0
        self._last_sync = 0

    def header(self) -> bytes:
        data = (SEQ_MAGIC + _text(LONG_WRITABLE) + _text(TEXT if self.text else BYTES_WRITABLE)
                + b"\x00\x00" + struct.pack(">i", 0) + self.sync)
        self.position = self._last_sync = len(data)
        return data

    def records(self, events: Iterable[Event], now_ms: int) -> bytes:
        out = bytearray()
        for event in events:
            if self.position + len(out) >= self._last_sync + SYNC_INTERVAL:
                out += struct.pack(">i", SYNC_ESCAPE) + self.sync
                self._last_sync = self.position + len(out)
            key = struct.pack(">q", _timestamp(event, now_ms))
            body = event.body
            value = _text(body) if self.text else struct.pack(">i", len(body)) + body
            out += struct.pack(">ii", len(key) + len(value), len(key)) + key + value
        self.position += len(out)
        return bytes(out)


def _timestamp(event: Event, now_ms: int) -> int:
    try:
        return int(event.header_map["timestamp"])
    except (KeyError, ValueError):
        return now_ms


# --- what a crash left ---------------------------------------------------------------------


def valid_length(data: bytes, kind: str) -> int:
    """Bytes at the start of ``data`` that are complete: whole lines (``text``), whole
    members/streams (``gzip``/``bzip2``/``zlib``), whole records (``sequence``);
    ``raw``: everything."""
    if kind == "raw":
        return len(data)
    if kind == "text":
        return data.rfind(b"\n") + 1
    if kind == "sequence":
        return _sequence_length(data)
    pos = 0
    while pos < len(data):
        if kind == "bzip2":
            d: Any = bz2.BZ2Decompressor()
        else:
            d = zlib.decompressobj(31 if kind == "gzip" else 15)
        try:
            d.decompress(data[pos:])
        except (OSError, EOFError, zlib.error):
            break
        if not d.eof:
            break
        pos = len(data) - len(d.unused_data)
    return pos


def _sequence_length(data: bytes) -> int:
    try:
        pos = 4
        for _ in range(2):  # key and value class names
            n, size = _read_vint(data, pos)
            pos += size + n
        pos += 2  # compression flags (always off here)
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        for _ in range(count * 2):
            n, size = _read_vint(data, pos)
            pos += size + n
        pos += 16
    except (struct.error, IndexError):
        return 0
    good = pos if pos <= len(data) else 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        end = pos + 4 + (16 if length == SYNC_ESCAPE else 4 + length)
        if end > len(data) or (length != SYNC_ESCAPE and length < 0):
            break
        pos = good = end
    return good


def _read_vint(data: bytes, pos: int) -> tuple[int, int]:
    first = struct.unpack_from(">b", data, pos)[0]
    if first >= -112:
        return first, 1
    negative = first < -120
    n = (-119 - first) if negative else (-111 - first)
    value = int.from_bytes(data[pos + 1:pos + n], "big")
    if pos + n > len(data):
        raise IndexError("truncated vint")
    return (value ^ -1 if negative else value), n

