"""The golden Avro IPC captures recorded between Apache Avro's own Java peers."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "avro-ipc"
NAMES = [
    "flume-appendbatch-hash-match",
    "flume-append-hash-match",
    "flume-appendbatch-hash-mismatch",
    "flume-failed-then-ok",
    "flume-appendbatch-deflate",
    "spark-poll-ack-nack",
]


@dataclass(frozen=True)
class Capture:
    name: str
    client_to_server: bytes
    server_to_client: bytes

    @property
    def deflate(self) -> bool:
        return self.name.endswith("deflate")


def load(name: str) -> Capture:
    conn = json.loads((FIXTURES / f"{name}.json").read_text())["connections"][0]
    return Capture(name, bytes.fromhex(conn["client_to_server"]),
                   bytes.fromhex(conn["server_to_client"]))


def bodies() -> list[bytes]:
    return (FIXTURES / "bodies.txt").read_bytes().split(b"\n")[:-1]


def split_packs(stream: bytes) -> list[tuple[int, list[bytes]]]:
    """A deliberately naive reader used to cross-check the real decoder."""
    out, i = [], 0
    while i < len(stream):
        serial, n = struct.unpack_from(">ii", stream, i)
        i += 8
        bufs = []
        for _ in range(n):
            (length,) = struct.unpack_from(">i", stream, i)
            bufs.append(stream[i + 4 : i + 4 + length])
            i += 4 + length
        out.append((serial, bufs))
    return out
