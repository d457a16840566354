"""A decoder specialised to Flume's event schema, with the listener's limits checked while
it decodes.

``array<{headers: map<string, string>, body: bytes}>`` is AvroFlumeEvent's and SparkSinkEvent's
layout. A generic decoder (fastavro) materialises the whole array before anyone can count it:
an 8 MiB frame of 2-byte empty events decodes into 4 million objects (+1.3 GiB). Here every
block count and length is checked against what the call may still hold *before* anything is
allocated, so the first event past ``max_events`` or ``max_bytes`` ends the call.

It is also faster than fastavro on this schema (no per-field dispatch; the one-byte lengths
that short strings and small counts use take a fast path): bench/event_decoder.py measures
both. The values are the same dicts fastavro returns, so callers need not care which decoded.

Decoded bytes are what a call costs in memory, not on the wire: bodies and header text, plus
a fixed charge per event and per header for the objects that hold them (what CPython spends,
roughly), so a flood of empty events is as expensive as it really is.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import LimitExceeded, RemoteProtocolError
from protocol.event import EMPTY_HEADERS, Event, SharedHeaders

EVENT_OVERHEAD = 256  # the event's dict, its headers dict, the body's bytes object, a list slot
HEADER_OVERHEAD = 128  # two str objects and a dict slot


class DecodeBudget:
    """What one call may still hold: events and decoded bytes. Spent as decoding goes."""

    __slots__ = ("bytes_left", "events_left", "max_bytes", "max_events")

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events_left = max_events
        self.bytes_left = max_bytes

    @property
    def used_bytes(self) -> int:
        return self.max_bytes - self.bytes_left

    def too_many_events(self, count: int) -> LimitExceeded:
        return LimitExceeded("max-events-per-call",
                             f"a call of more than {self.max_events} events "
                             f"(max-events-per-call; a block announced {count})")

    def too_many_bytes(self) -> LimitExceeded:
        return LimitExceeded("max-call-bytes",
                             f"a call decoding to more than {self.max_bytes} bytes "
                             f"(max-call-bytes)")


def _truncated(pos: int) -> RemoteProtocolError:
    return RemoteProtocolError(f"event data truncated at byte {pos}")


def _not_utf8(exc: UnicodeDecodeError) -> RemoteProtocolError:
    return RemoteProtocolError(f"a header is not UTF-8: {exc}")


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint (the slow path: several bytes, or negative)."""
    shift = z = 0
    n = len(data)
    while True:
        if pos >= n:
            raise _truncated(pos)
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
        if shift > 63:
            raise RemoteProtocolError(f"varint longer than 10 bytes at byte {pos}")


def _length(data: bytes, pos: int) -> tuple[int, int]:
    length, pos = _long(data, pos)
    if length < 0:
        raise RemoteProtocolError(f"negative length {length} before byte {pos}")
    return length, pos


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """An array or map block count; a negative count is followed by the block's byte size."""
    count, pos = _long(data, pos)
    if count < 0:
        count = -count
        _, pos = _long(data, pos)
    return count, pos


def decode_events(data: bytes, pos: int, budget: DecodeBudget, *, as_events: bool = False
                  ) -> tuple[list[Any], int]:
    """``array<event>`` at ``pos``: (records, position after the array). ``as_events``:
    :class:`~protocol.event.Event` objects instead of record dicts (what a source puts in
    its channel), consecutive events sent with the same header map sharing one read-only
    copy of it (copy-on-write, see protocol.event)."""
    n = len(data)
    out: list[Any] = []
    try:
        while True:
            b = data[pos]
            if b & 0x81:  # several bytes, or a negative count (a block with its byte size)
                count, pos = _block(data, pos)
            else:
                count = b >> 1
                pos += 1
            if not count:
                return out, pos
            pos = _events(data, pos, n, count, budget, out, as_events)
    except IndexError:
        raise _truncated(n) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc


def decode_event(data: bytes, pos: int, budget: DecodeBudget, *, as_events: bool = False
                 ) -> tuple[Any, int]:
    """One event record at ``pos`` (``append``'s parameter)."""
    out: list[Any] = []
    try:
        pos = _events(data, pos, len(data), 1, budget, out, as_events)
    except IndexError:
        raise _truncated(len(data)) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from exc
    return out[0], pos


def _events(
    data: bytes, pos: int, n: int, count: int, budget: DecodeBudget, out: list[Any],
    as_events: bool,
) -> int:
    """Decode ``count`` events at ``pos`` into ``out``; returns the position after them.
    One loop with the header map inline: a call per event or per map costs ~30 %.
    A header map whose bytes repeat the previous event's (Flume clients send the same
    headers on most events of a batch) is recognised with one comparison instead of being
    decoded again: Avro's encoding is unambiguous, so the same bytes are the same map.
    Raises IndexError when the data ends inside an event."""
    if count > budget.events_left:
        raise budget.too_many_events(count)
    if count > (n - pos) >> 1:  # every event takes at least two bytes
        raise _truncated(n)
    budget.events_left -= count
    left = budget.bytes_left - count * EVENT_OVERHEAD
    if left < 0:
        raise budget.too_many_bytes()
    append = out.append
    new_event = object.__new__
    # the previous event's header map as sent; b"\x00" (no headers, handled first) at the
    # start, so nothing matches it
    prev_raw = b"\x00"
    prev_len = 1
    prev_headers: dict[str, str] = {}
    prev_charge = 0
    shared = False  # prev_headers already a SharedHeaders
    owner = 0
    for _ in range(count):
        start = pos
        if data[pos] == 0:  # no headers
            pos += 1
            headers = EMPTY_HEADERS if as_events else {}
        elif data[pos : pos + prev_len] == prev_raw:  # a slice beats startswith's arguments
            pos += prev_len
            left -= prev_charge
            if left < 0:
                raise budget.too_many_bytes()
            if as_events:
                if not shared:  # the map's first event and this one now share it
                    prev_headers = SharedHeaders(prev_headers)
                    out[owner]._headers = prev_headers
                    shared = True
                headers = prev_headers
            else:
                headers = dict(prev_headers)
        else:
            headers = {}
            charge = 0
            while True:  # the header map's blocks
                b = data[pos]
                if b & 0x81:
                    entries, pos = _block(data, pos)
                else:
                    entries = b >> 1
                    pos += 1
                if not entries:
                    break
                if entries > (n - pos) >> 1:  # every entry takes at least two bytes
                    raise _truncated(n)
                left -= entries * HEADER_OVERHEAD
                charge += entries * HEADER_OVERHEAD
                if left < 0:
                    raise budget.too_many_bytes()
                for _ in range(entries):
                    # A slice past the end is caught by the next read (IndexError): every
                    # string here is followed by at least one more byte in a whole array.
                    b = data[pos]
                    if not b & 0x81:
                        size = b >> 1
                        pos += 1
                    else:
                        size, pos = _length(data, pos)
                    raw_key = data[pos : pos + size]
                    pos += size
                    b = data[pos]
                    if not b & 0x81:
                        size = b >> 1
                        pos += 1
                    else:
                        size, pos = _length(data, pos)
                    end = pos + size
                    headers[raw_key.decode()] = data[pos:end].decode()
                    pos = end
            prev_raw = data[start:pos]
            owner = len(out)  # the event about to get this map
            prev_len = pos - start
            prev_headers = headers
            prev_charge = charge
            shared = False
        b = data[pos]
        if not b & 0x81:
            size = b >> 1
            pos += 1
        elif b & 0x81 == 0x80 and data[pos + 1] < 0x80:  # two bytes: 64 to 8191
            size = ((b & 0x7F) | (data[pos + 1] << 7)) >> 1
            pos += 2
        else:
            size, pos = _length(data, pos)
        end = pos + size
        if end > n:
            raise _truncated(n)
        left -= end - start  # header text and body, as sent (checked before the body is cut)
        if left < 0:
            raise budget.too_many_bytes()
        if as_events:  # Event's slots set here: a call to __init__ costs ~30 % more
            event = new_event(Event)
            event._headers = headers
            event.body = data[pos:end]
            append(event)
        else:
            append({"headers": headers, "body": data[pos:end]})
        pos = end
    budget.bytes_left = left
    return pos
