"""Hand-made Avro IPC frames for tests that play a hostile or careless client."""

from __future__ import annotations

import resource
import socket
from pathlib import Path

from protocol import codec
from protocol.codec import encode_event_array, write_long
from protocol.event import Event
from protocol.framing import encode_pack
from protocol.schemas import AVRO_SOURCE_PROTOCOL, HANDSHAKE_REQUEST, Protocol

_CALL = b"\x00" + codec.write_string("appendBatch")


def handshake(client: Protocol = AVRO_SOURCE_PROTOCOL, server_hash: bytes | None = None,
              with_text: bool = False) -> bytes:
    """A HandshakeRequest (what precedes the first call of a connection)."""
    return codec.encode(HANDSHAKE_REQUEST, {
        "clientHash": client.md5, "clientProtocol": client.text if with_text else None,
        "serverHash": server_hash or AVRO_SOURCE_PROTOCOL.md5, "meta": {}})


def batch_params(events: list[Event]) -> bytes:
    return encode_event_array(events)


def empty_events(count: int) -> bytes:
    """appendBatch parameters of ``count`` empty events: 2 bytes each on the wire."""
    return write_long(count) + b"\x00\x00" * count + b"\x00"


def batch_frame(serial: int, params: bytes, first: bool = False) -> bytes:
    """One appendBatch call; ``first`` puts the handshake in front (the first call)."""
    head = (handshake() if first else b"") + _CALL
    return encode_pack(serial, [head, params])


def events(n: int, start: int = 0, size: int = 100) -> list[Event]:
    return [Event({"seq": str(i)}, f"{i:08d} ".encode() + b"x" * (size - 9))
            for i in range(start, start + n)]


def rss(pid: int) -> int:
    """Resident set size of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def nofile_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
