"""Flume's ``compression-type = deflate``: one zlib stream per direction per connection.

Each outgoing pack is followed by a sync flush (what Netty 3's ZlibEncoder does, byte for
byte). Inflation is done in bounded chunks so that a zip bomb can never be expanded past
what the frame decoder downstream is willing to hold.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from protocol.errors import RemoteProtocolError

INFLATE_CHUNK = 256 * 1024


class Deflater:
    def __init__(self, level: int = 6) -> None:
        if not -1 <= level <= 9:
            raise ValueError(f"compression level must be -1..9, got {level}")
        self._z = zlib.compressobj(level)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data) + self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        """The stream's final block, which Netty writes when the channel closes."""
        return self._z.flush(zlib.Z_FINISH)


class Inflater:
    def __init__(self) -> None:
        self._z = zlib.decompressobj()

    def inflate(self, data: bytes) -> Iterator[bytes]:
        """Yield inflated chunks of at most INFLATE_CHUNK bytes; the caller consumes each
        (and may stop, raising its own limit error) before more is produced."""
        try:
            out = self._z.decompress(data, INFLATE_CHUNK)
            while True:
                if out:
                    yield out
                tail = self._z.unconsumed_tail
                if not tail:
                    break
                out = self._z.decompress(tail, INFLATE_CHUNK)
        except zlib.error as exc:
            raise RemoteProtocolError(f"corrupt deflate stream: {exc}") from exc
        if self._z.eof and self._z.unused_data:
            raise RemoteProtocolError("data after the end of the deflate stream")
