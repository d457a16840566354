"""Flume's deflate option: Netty-identical bytes, bounded inflation."""

from __future__ import annotations

import zlib

import pytest

from protocol.compression import INFLATE_CHUNK, Deflater, Inflater
from protocol.errors import RemoteProtocolError
from protocol.framing import encode_pack
from protocol.rpc import ServerSession
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from tests.vectors import load


def test_sync_flushed_stream_matches_the_java_capture() -> None:
    cap = load("flume-appendbatch-deflate")
    plain = b"".join(Inflater().inflate(cap.server_to_client))
    assert Deflater(6).compress(plain) == cap.server_to_client


def test_every_pack_is_decodable_before_the_stream_ends() -> None:
    d, i = Deflater(), Inflater()
    for n in range(5):
        pack = encode_pack(n, [b"x" * n * 100])
        assert b"".join(i.inflate(d.compress(pack))) == pack


def test_zip_bomb_is_inflated_in_bounded_chunks_and_rejected_by_the_frame_limit() -> None:
    # A pack header promising one 1 GiB buffer, then 1 GiB of zeros, compressed to ~1 MB.
    # A full flush resets the compressor, so every 1 MiB of zeros compresses to the same
    # bytes: compressing one and repeating it makes the same stream as compressing all 1024
    # (which took 40 s on a loaded 2-core machine), and inflates to exactly 1 GiB + header.
    z = zlib.compressobj(9)
    head = z.compress(encode_pack(1, [b"\0"])[:8] + (2**30).to_bytes(4, "big"))
    head += z.flush(zlib.Z_FULL_FLUSH)
    chunk = b"\0" * (1 << 20)
    mib = z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH)
    assert z.compress(chunk) + z.flush(zlib.Z_FULL_FLUSH) == mib
    bomb = head + mib * 1024
    assert len(bomb) < 2 * 2**20
    session = ServerSession(AVRO_SOURCE_PROTOCOL, deflate=True, max_frame_bytes=8 * 2**20)
    with pytest.raises(RemoteProtocolError, match="frame limit"):
        session.feed(bomb)


def test_inflater_yields_at_most_one_chunk_at_a_time() -> None:
    data = zlib.compress(b"a" * (INFLATE_CHUNK * 3 + 5))
    sizes = [len(c) for c in Inflater().inflate(data)]
    assert max(sizes) <= INFLATE_CHUNK and sum(sizes) == INFLATE_CHUNK * 3 + 5


def test_corrupt_stream_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError, match="corrupt deflate"):
        list(Inflater().inflate(b"\x78\x9c\xff\xff\xff\xff"))
