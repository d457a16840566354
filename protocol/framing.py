"""Avro's Netty transport framing ("data packs").

``pack := serial:int32 | count:int32 | count x (length:int32 | bytes)``, all big-endian, no
terminator. A pack's buffers are one message cut at arbitrary points, so the decoder joins
them; zero-length buffers are legal. Limits are checked before anything is allocated.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError

DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BUFFERS = 65536

_HEADER = struct.Struct(">ii")
_LENGTH = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class Pack:
    serial: int
    payload: bytes


def encode_pack(serial: int, buffers: Sequence[bytes]) -> bytes:
    """Frame ``buffers`` (kept as separate Netty buffers, as Java splits them)."""
    if not buffers:
        raise LocalProtocolError("a pack needs at least one buffer (count 0 desyncs Java peers)")
    parts = [_HEADER.pack(serial, len(buffers))]
    for buf in buffers:
        parts.append(_LENGTH.pack(len(buf)))
        parts.append(buf)
    return b"".join(parts)


class PackDecoder:
    """Incremental decoder: ``feed(bytes)`` returns every pack completed by those bytes."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffers: int = DEFAULT_MAX_BUFFERS,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_buffers = max_buffers
        self._buf = bytearray()  # bytes of an unfinished buffer or header, held between feeds
        # State of the pack being read.
        self._serial: int | None = None
        self._remaining_buffers = 0
        self._parts: list[bytes] = []
        self._frame_bytes = 0
        self._need: int | None = None  # length of the buffer being read, once known

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a complete pack."""
        return len(self._buf) + self._frame_bytes

    def feed(self, data: bytes) -> list[Pack]:
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
            view = memoryview(self._buf)
        else:  # nothing held (the usual case): read ``data`` in place, keep only its rest
            buf = data
            view = memoryview(data)
        pos = 0
        packs: list[Pack] = []
        try:
            while True:
                avail = len(buf) - pos
                if self._serial is None:
                    if avail < 8:
                        break
                    serial, count = _HEADER.unpack_from(buf, pos)
                    pos += 8
                    if count <= 0 or count > self.max_buffers:
                        raise RemoteProtocolError(
                            f"pack {serial} declares {count} buffers "
                            f"(allowed 1..{self.max_buffers})"
                        )
                    self._serial = serial
                    self._remaining_buffers = count
                    self._parts = []
                    self._frame_bytes = 0
                    continue
                if self._need is None:
                    if avail < 4:
                        break
                    (length,) = _LENGTH.unpack_from(buf, pos)
                    pos += 4
                    if length < 0:
                        raise RemoteProtocolError(f"pack {self._serial}: negative buffer length")
                    if self._frame_bytes + length > self.max_frame_bytes:
                        raise LimitExceeded(
                            "max-frame-bytes",
                            f"pack {self._serial} exceeds the frame limit of "
                            f"{self.max_frame_bytes} bytes (max-frame-bytes)",
                        )
                    self._need = length
                    continue
                if avail < self._need:
                    break
                end = pos + self._need
                self._parts.append(view[pos:end].tobytes())  # one copy, from either source
                self._frame_bytes += self._need
                pos = end
                self._need = None
                self._remaining_buffers -= 1
                if self._remaining_buffers == 0:
                    parts = self._parts
                    payload = parts[0] if len(parts) == 1 else b"".join(parts)
                    packs.append(Pack(self._serial, payload))
                    self._serial = None
                    self._parts = []
                    self._frame_bytes = 0
        finally:
            view.release()  # a bytearray with an export cannot be resized
            if buf is data:
                self._buf = bytearray(data[pos:]) if pos < len(data) else bytearray()
            elif pos:
                del self._buf[:pos]
        return packs
