"""What a hostile or careless client does to an Avro listener, over real sockets.

Each attack returns how many of its connections the server closed (or refused), so a case
can check that the server did close them rather than wait forever.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import struct
import time

from protocol import codec
from protocol.codec import write_long
from protocol.compression import Deflater
from protocol.framing import encode_pack
from protocol.schemas import (
    AVRO_SOURCE_PROTOCOL,
    HANDSHAKE_REQUEST,
    SPARK_FLUME_PROTOCOL,
    Protocol,
)
from tests.wire import batch_frame, batch_params, connect, empty_events, events, handshake

MiB = 2**20
CALL = b"\x00" + codec.write_string("appendBatch")


def _closed(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (replies are read and dropped)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def _send(sock: socket.socket, data: bytes) -> None:
    """Send what the server will take; it may close the connection part way."""
    with contextlib.suppress(ConnectionResetError, BrokenPipeError, TimeoutError):
        sock.sendall(data)


def _each(port: int, payloads: list[bytes], rst: bool = False) -> int:
    closed = 0
    for data in payloads:
        sock = connect(port)
        _send(sock, data)
        if rst:  # vanish mid-frame: RST, no FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            closed += 1
            continue
        closed += _closed(sock)
        sock.close()
    return closed


def random_bytes(port: int, conns: int = 20, size: int = 64 * 1024, seed: int = 7) -> int:
    rng = random.Random(seed)
    return _each(port, [rng.randbytes(size) for _ in range(conns)])


def frame_announcing_2gib(port: int) -> int:
    """A pack whose one buffer claims 2 GiB - 1, followed by 1 MiB of it."""
    return _each(port, [struct.pack(">iii", 1, 1, 2**31 - 1) + b"\x00" * MiB])


def buffer_count_2_31(port: int) -> int:
    """A pack announcing 2^31 - 1 buffers."""
    return _each(port, [struct.pack(">ii", 1, 2**31 - 1) + struct.pack(">i", 4) + b"abcd"])


def event_count_2_31(port: int) -> int:
    """An appendBatch whose event array announces 2^31 events (and holds a few)."""
    return _each(port, [batch_frame(1, write_long(2**31) + b"\x00\x00" * 1000, first=True)])


def tiny_events_frame(port: int, mib: int = 8) -> int:
    """An appendBatch of 2-byte empty events filling ``mib`` MiB: millions of events."""
    count = mib * MiB // 2 - 64
    return _each(port, [batch_frame(1, empty_events(count), first=True)])


def deflate_bomb(port: int, mib: int = 8) -> int:
    """The same frame sent compressed: about 8 KB on the wire."""
    count = mib * MiB // 2 - 64
    wire = Deflater(9).compress(batch_frame(1, empty_events(count), first=True))
    assert len(wire) < 20_000
    return _each(port, [wire])


def truncated_frames(port: int, conns: int = 20) -> int:
    """Half of a real call, then a clean close (FIN): the server must drop the half."""
    frame = batch_frame(1, batch_params(events(50)), first=True)
    payloads = [frame[: len(frame) // 2]] * conns
    closed = 0
    for data in payloads:
        sock = connect(port)
        _send(sock, data)
        sock.shutdown(socket.SHUT_WR)
        closed += _closed(sock)
        sock.close()
    return closed


def closed_mid_batch(port: int, conns: int = 20) -> int:
    """A whole call, then half of the next one, then gone (RST)."""
    first = batch_frame(1, batch_params(events(10)), first=True)
    second = batch_frame(2, batch_params(events(1000)))
    return _each(port, [first + second[: len(second) // 2]] * conns, rst=True)


def wrong_protocol_hash(port: int, conns: int = 10) -> int:
    """A handshake whose protocol text is not what its hash says (a cache-poisoning try),
    and one with an unknown hash and no text (answered NONE, as Avro does)."""
    doc = json.loads(AVRO_SOURCE_PROTOCOL.text)
    doc["doc"] = "not the protocol the hash names"
    liar = Protocol(json.dumps(doc))
    poisoned = codec.encode(HANDSHAKE_REQUEST, {
        "clientHash": AVRO_SOURCE_PROTOCOL.md5[::-1], "clientProtocol": liar.text,
        "serverHash": AVRO_SOURCE_PROTOCOL.md5, "meta": {}})
    bad = encode_pack(1, [poisoned + CALL, batch_params(events(3))])
    closed = _each(port, [bad] * conns)
    # unknown hash without the text: a NONE reply, and the connection stays usable
    sock = connect(port)
    unknown = codec.encode(HANDSHAKE_REQUEST, {
        "clientHash": b"\x00" * 16, "clientProtocol": None,
        "serverHash": b"\x00" * 16, "meta": {}})
    _send(sock, encode_pack(1, [unknown + CALL, batch_params(events(3))]))
    sock.settimeout(5)
    reply = sock.recv(65536)
    sock.close()
    assert reply and b"NONE" not in reply  # an enum index, not text: just "an answer came"
    return closed


def idle_connections(port: int, conns: int = 500, hold: float = 1.0) -> int:
    """Open ``conns`` connections, say nothing, hold them; returns how many were refused."""
    socks = []
    for _ in range(conns):
        try:
            socks.append(connect(port))
        except OSError:
            break
    time.sleep(hold)
    refused = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                refused += 1
        except BlockingIOError:
            pass
        except OSError:
            refused += 1
        s.close()
    return refused


def unfinished_frames(port: int, conns: int = 16, each: int = 63 * MiB,
                      deflate: bool = False) -> int:
    """``conns`` connections each holding an unfinished frame of ``each`` bytes."""
    head = batch_frame(1, batch_params(events(1)), first=True)
    data = head + struct.pack(">iii", 2, 1, each + 1000) + b"\x00" * each
    if deflate:  # the same bytes for every connection: each is a fresh zlib stream
        data = Deflater(9).compress(data)
    socks = []
    for _ in range(conns):
        sock = connect(port, timeout=10)
        _send(sock, data)
        socks.append(sock)
    closed = sum(_closed(s, timeout=0.5) for s in socks)
    for s in socks:
        s.close()
    return closed


def new_protocols(port: int, count: int = 500, size: int = 60_000) -> int:
    """``count`` handshakes, each with a new valid protocol of about ``size`` bytes."""
    base = json.loads(AVRO_SOURCE_PROTOCOL.text)
    refused = 0
    for i in range(count):
        text = json.dumps(dict(base, doc=f"{i:08d}" + "p" * size))
        hs = codec.encode(HANDSHAKE_REQUEST, {
            "clientHash": hashlib.md5(text.encode()).digest(), "clientProtocol": text,
            "serverHash": AVRO_SOURCE_PROTOCOL.md5, "meta": {}})
        sock = connect(port)
        _send(sock, encode_pack(1, [hs + CALL, b"\x00"]))
        sock.settimeout(5)
        try:
            if not sock.recv(65536):
                refused += 1
        except OSError:
            refused += 1
        sock.close()
    return refused


def pipelining_never_reading(port: int, seconds: float = 3.0, batch: int = 1000) -> int:
    """appendBatch after appendBatch without ever reading a reply; returns bytes sent."""
    sock = connect(port)
    body = batch_params(events(batch))
    sent = 0
    sock.setblocking(False)
    deadline = time.monotonic() + seconds
    serial = 2
    pending = batch_frame(1, body, first=True)
    while time.monotonic() < deadline:
        if not pending:
            pending = batch_frame(serial, body)
            serial += 1
        try:
            n = sock.send(pending)
            sent += n
            pending = pending[n:]
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    sock.close()
    return sent



# ---- the SparkSink's protocol ------------------------------------------------------------

def spark_poll(serial: int, n: int = 1000, first: bool = False) -> bytes:
    """A getEventBatch(n) call (SparkFlumeProtocol), with the handshake when ``first``."""
    head = (handshake(SPARK_FLUME_PROTOCOL, server_hash=SPARK_FLUME_PROTOCOL.md5)
            if first else b"")
    return encode_pack(serial, [head + b"\x00" + codec.write_string("getEventBatch"),
                                write_long(n)])


def spark_truncated_polls(port: int, conns: int = 20) -> int:
    frame = spark_poll(1, first=True)
    closed = 0
    for _ in range(conns):
        sock = connect(port)
        _send(sock, frame[: len(frame) - 3])
        sock.shutdown(socket.SHUT_WR)
        closed += _closed(sock)
        sock.close()
    return closed


def spark_poll_and_vanish(port: int, conns: int = 5) -> int:
    """Take a batch (events really leave the channel) and vanish without an ack (RST):
    the sink must roll it back so the good poller gets it."""
    taken = 0
    for _ in range(conns):
        sock = connect(port)
        _send(sock, spark_poll(1, 50, first=True))
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            taken += len(sock.recv(65536)) > 0
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return taken


def spark_wrong_hash(port: int, conns: int = 10) -> int:
    doc = json.loads(SPARK_FLUME_PROTOCOL.text)
    doc["doc"] = "not what the hash says"
    liar = Protocol(json.dumps(doc))
    poisoned = codec.encode(HANDSHAKE_REQUEST, {
        "clientHash": SPARK_FLUME_PROTOCOL.md5[::-1], "clientProtocol": liar.text,
        "serverHash": SPARK_FLUME_PROTOCOL.md5, "meta": {}})
    frame = encode_pack(1, [poisoned + b"\x00" + codec.write_string("getEventBatch"),
                            write_long(10)])
    return _each(port, [frame] * conns)


# ---- HTTP (/metrics) -----------------------------------------------------------------------

def http_garbage(port: int, conns: int = 20, seed: int = 3) -> int:
    """Random bytes ending like a request head, and request lines that are not HTTP:
    each is answered 400 (or closed), never a crash."""
    rng = random.Random(seed)
    payloads = [rng.randbytes(2000) + b"\r\n\r\n" for _ in range(conns // 2)]
    payloads += [b"GET\r\n\r\n", b"GET / HTTP/1.1 extra\r\n\r\n", b"\xff\xfe / HTTP/1.1\r\n\r\n",
                 b"GET  HTTP/1.1\r\n\r\n", b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
                 b"GET /metrics FTP/1.0\r\n\r\n", b" \r\n\r\n", b"\r\n\r\n", b"GET / \r\n\r\n",
                 b"TRACE / HTTP/1.1\r\n\r\n"][: conns - conns // 2]
    answered = 0
    for data in payloads:
        sock = connect(port)
        _send(sock, data)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            reply = sock.recv(65536)
            answered += reply.startswith(b"HTTP/1.1 4") or reply == b""
        sock.close()
    return answered


def http_huge_headers(port: int, conns: int = 5, size: int = MiB) -> int:
    """A request head of ``size`` bytes of headers: 431, and the rest is never read."""
    answered = 0
    head = b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"a" * size + b"\r\n\r\n"
    for _ in range(conns):
        sock = connect(port)
        _send(sock, head)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            answered += sock.recv(65536).startswith(b"HTTP/1.1 431")
        sock.close()
    return answered


def http_resets(port: int, conns: int = 50) -> int:
    """Ask for /metrics and reset the connection before reading the answer (issue 21 item 9:
    this logged a traceback per client)."""
    for _ in range(conns):
        sock = connect(port)
        _send(sock, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    return conns
