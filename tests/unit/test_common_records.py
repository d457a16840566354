"""The durable record format the file channel and the write-ahead log share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common import records

OBJECTS = [("P", [(0, {"h": "v"}, b"body")]), ("T", [0, 1]), [], {"x": b"\x00" * 300}]


def test_records_round_trip_with_their_end_offsets():
    data = b"".join(records.encode(o) for o in OBJECTS)
    found, valid = records.scan(data)
    assert [o for _, o in found] == OBJECTS
    assert valid == len(data) == found[-1][0]
    assert [end for end, _ in found] == sorted({end for end, _ in found})


def test_header_then_payload_is_a_record():
    payload = b"\x80\x05K\x07."  # pickle of 7
    assert records.header(payload) + payload == records.encode(7)
    assert records.scan(records.header(payload) + payload) == ([(len(payload) + 8, 7)],
                                                                len(payload) + 8)


def test_a_torn_tail_at_any_byte_keeps_the_whole_records_before_it():
    data = records.encode(OBJECTS[0]) + records.encode(OBJECTS[1])
    first_end = len(records.encode(OBJECTS[0]))
    for cut in range(len(data)):
        found, valid = records.scan(data[:cut])
        whole = 1 if cut >= first_end else 0
        assert [o for _, o in found] == OBJECTS[:whole]
        assert valid == (first_end if whole else 0)


def test_a_corrupt_record_ends_the_scan():
    first, second, third = (records.encode(o) for o in OBJECTS[:3])
    bad = bytearray(second)
    bad[-1] ^= 0xFF  # the payload no longer matches its crc32
    found, valid = records.scan(first + bytes(bad) + third)
    assert [o for _, o in found] == OBJECTS[:1]
    assert valid == len(first)


def test_a_zero_filled_tail_is_cut_like_a_torn_one():
    """Found while sharing the format: eight zero bytes pass the length and crc32 checks
    (crc32(b"") == 0); the file channel and the write-ahead log used to fail to open."""
    data = records.encode(OBJECTS[0])
    assert records.scan(data + bytes(4096)) == ([(len(data), OBJECTS[0])], len(data))


@given(st.lists(st.binary(max_size=64), max_size=8), st.binary(max_size=7))
def test_whole_records_survive_any_short_garbage_after_them(objs, garbage):
    data = b"".join(records.encode(o) for o in objs)
    found, valid = records.scan(data + garbage)
    assert [o for _, o in found] == objs
    assert valid == len(data)
