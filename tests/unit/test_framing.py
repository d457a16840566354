"""Netty pack framing: whole, byte by byte, trailing bytes, limits, properties."""

from __future__ import annotations

import struct
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.framing import Pack, PackDecoder, encode_pack

JAVA_REPLY = bytes.fromhex("00000002" "00000003" "00000000" "00000001" "00" "00000002" "0000")


def test_java_reply_with_leading_empty_buffer_decodes() -> None:
    assert PackDecoder().feed(JAVA_REPLY) == [Pack(2, b"\x00\x00\x00")]


def test_byte_by_byte_equals_whole() -> None:
    stream = encode_pack(1, [b"ab", b"", b"cde"]) + encode_pack(2, [b"x"])
    dec = PackDecoder()
    packs = [p for i in range(len(stream)) for p in dec.feed(stream[i : i + 1])]
    assert packs == PackDecoder().feed(stream) == [Pack(1, b"abcde"), Pack(2, b"x")]


def test_trailing_partial_pack_is_kept_for_later() -> None:
    stream = encode_pack(1, [b"abc"]) + encode_pack(2, [b"defg"])
    dec = PackDecoder()
    assert dec.feed(stream[:-2]) == [Pack(1, b"abc")]
    assert dec.buffered > 0
    assert dec.feed(stream[-2:]) == [Pack(2, b"defg")]
    assert dec.buffered == 0


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (struct.pack(">ii", 1, 0), "declares 0 buffers"),
        (struct.pack(">ii", 1, -1), "declares -1 buffers"),
        (struct.pack(">ii", 1, 10**6), "declares 1000000 buffers"),
        (struct.pack(">iii", 1, 1, -3), "negative buffer length"),
        (struct.pack(">iii", 1, 1, 2000), "exceeds the frame limit"),
        (struct.pack(">iiii", 1, 2, 600, 0) + b"x" * 600 + struct.pack(">i", 600),
         "exceeds the frame limit"),
    ],
)
def test_limits_are_checked_before_allocating(header: bytes, match: str) -> None:
    dec = PackDecoder(max_frame_bytes=1024, max_buffers=100)
    with pytest.raises(RemoteProtocolError, match=match):
        dec.feed(header)


def test_encoding_an_empty_pack_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        encode_pack(1, [])


@given(st.lists(st.tuples(st.integers(-(2**31), 2**31 - 1),
                          st.lists(st.binary(max_size=40), min_size=1, max_size=5)),
                max_size=6),
       st.integers(1, 17))
def test_roundtrip_any_split(packs: list[tuple[int, list[bytes]]], step: int) -> None:
    stream = b"".join(encode_pack(s, bufs) for s, bufs in packs)
    dec = PackDecoder()
    got = [p for i in range(0, len(stream), step) for p in dec.feed(stream[i : i + step])]
    assert got == [Pack(s, b"".join(bufs)) for s, bufs in packs]


@given(st.lists(st.lists(st.binary(max_size=30), min_size=1, max_size=4), max_size=5),
       st.lists(st.integers(0, 400), max_size=8))
def test_roundtrip_any_cut_points(packs: list[list[bytes]], cuts: list[int]) -> None:
    """Whole reads (parsed in place) and partial ones (held, then joined) mixed freely."""
    stream = b"".join(encode_pack(i, bufs) for i, bufs in enumerate(packs))
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = PackDecoder()
    got = [p for a, b in pairwise(points) for p in dec.feed(stream[a:b])]
    assert got == [Pack(i, b"".join(bufs)) for i, bufs in enumerate(packs)]
    assert all(type(p.payload) is bytes for p in got)
    assert dec.buffered == 0


def test_a_read_holding_a_pack_and_a_half_keeps_only_the_half() -> None:
    """The complete pack is cut from the read itself; only the unfinished rest is held."""
    first, second = encode_pack(1, [b"a" * 100, b"b" * 50]), encode_pack(2, [b"c" * 80])
    read = bytearray(first + second[:30])
    dec = PackDecoder()
    assert dec.feed(read) == [Pack(1, b"a" * 100 + b"b" * 50)]
    read[:] = b"\xff" * len(read)  # the caller's buffer is not referenced afterwards
    assert dec.buffered == 30 - 12  # the 12 bytes of header and length are parsed already
    assert dec.feed(second[30:]) == [Pack(2, b"c" * 80)]
