"""Avro binary encoding: the only module that imports fastavro.

Schemas are parsed once; decoding never raises anything but RemoteProtocolError, because
every byte it sees comes from a peer.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.types import Schema

from protocol.errors import RemoteProtocolError

__all__ = ["Schema", "decode", "encode", "encode_event_array", "parse", "read_long",
           "read_string", "write_long", "write_string"]


def parse(schema: Any, named: dict[str, Any] | None = None) -> Schema:
    """Parse a schema once; ``named`` collects named types so later schemas can refer to them."""
    return parse_schema(schema, named_schemas=named if named is not None else {})


def encode(schema: Schema, value: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, value)
    return out.getvalue()


def decode(
    schema: Schema, data: bytes, pos: int = 0, writer: Schema | None = None
) -> tuple[Any, int]:
    """Decode one value at ``pos``; ``writer`` is the peer's schema when it differs from ours."""
    stream = io.BytesIO(data)
    stream.seek(pos)
    try:
        if writer is None:
            value = schemaless_reader(stream, schema, None)
        else:
            value = schemaless_reader(stream, writer, schema)
    except RemoteProtocolError:
        raise
    except Exception as exc:  # fastavro raises EOFError, IndexError, ValueError, ...
        raise RemoteProtocolError(f"undecodable Avro value: {type(exc).__name__}: {exc}") from exc
    return value, stream.tell()


def write_long(n: int) -> bytes:
    """Zig-zag varint, as Avro encodes int and long."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [bytes([(n << 1)]) if n < 64 else bytes([((n << 1) & 0x7F) | 0x80, (n << 1) >> 7])
          for n in range(8192)]
_NO_HEADERS = [b"\x00" + length for length in _SMALL]  # an empty header map, then a length


class _EventLike(Protocol):
    @property
    def header_map(self) -> Mapping[str, str]: ...
    body: bytes


def encode_event_array(events: Sequence[_EventLike]) -> bytes:
    """``array<AvroFlumeEvent>`` (same layout as ``array<SparkSinkEvent>``) straight from
    Event objects: the one hot path where a hand-written encoder beats fastavro (~1.5x,
    measured by bench/rpc_throughput.py) and saves building a dict per event. Tested
    byte-for-byte against fastavro."""
    small = _SMALL
    no_headers = _NO_HEADERS
    out: list[bytes] = [write_long(len(events))] if events else []
    add = out.extend  # one call per event or header, with a tuple of its pieces
    for e in events:
        headers = e.header_map  # read only: a shared map is not copied
        body = e.body
        n = len(body)
        if not headers:
            add((no_headers[n] if n < 8192 else b"\x00" + write_long(n), body))
            continue
        out.append(small[len(headers)] if len(headers) < 8192 else write_long(len(headers)))
        for k, v in headers.items():
            # "replace": a lone surrogate (e.g. an undecodable file name in a header)
            # becomes "?" instead of a poison event no retry can ever send
            kb = k.encode("utf-8", "replace")
            vb = v.encode("utf-8", "replace")
            add((small[len(kb)] if len(kb) < 8192 else write_long(len(kb)), kb,
                 small[len(vb)] if len(vb) < 8192 else write_long(len(vb)), vb))
        add((b"\x00", small[n] if n < 8192 else write_long(n), body))
    out.append(b"\x00")
    return b"".join(out)


def write_string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return write_long(len(raw)) + raw


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    z = 0
    while True:
        if pos >= len(data):
            raise RemoteProtocolError("truncated varint")
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
        if shift > 63:
            raise RemoteProtocolError("varint longer than 10 bytes")


def read_string(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = read_long(data, pos)
    if n < 0 or pos + n > len(data):
        raise RemoteProtocolError(f"string length {n} out of bounds")
    try:
        return data[pos : pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"string is not UTF-8: {exc}") from exc
