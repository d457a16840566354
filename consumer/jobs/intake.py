"""The push receiver of a declarative job in a process of its own: the receive path on the
second core.

Why: turning an ``appendBatch`` call into Python objects costs about as much as everything
the vectorised job then does with the events, and in one process the two also share one GIL,
so each call waits for the batch in progress and the agent's avro sink (one batch in flight)
slows down with it. Here a child process runs the ordinary ``FlumePushReceiver`` (the same
protocol code, limits, body decoder and answers) and hands each call's events to the parent
as one chunk (the bodies, plus the headers the job reads) *before* it answers: ``OK`` still
means what it means in one process, "in the consumer's memory". The parent's reader thread
stores each chunk as one record of the receiver block; batches are cut as usual, and when a
batch is done the parent passes its tokens back, so the receiver's own backpressure (answered
events waiting for their batch) works as in one process.

Used by push jobs without a checkpoint: with one, the write-ahead log, its replay and its acks
stay in the consumer process (``FlumeUtils.createStream``).

Parent <-> child: a socket pair each way, messages ``kind (1 byte) | length (4 bytes,
big-endian) | payload``. Child -> parent: ``L`` (listening; the port), ``E`` (could not start;
why), ``C`` (a chunk: store token, the bodies as one buffer and their offsets, header
values; pickled), ``T`` (the receiver's ``status()`` for monitors, pickled, sent when it
changes, at most once a second). Parent -> child: ``P`` (the settings, first), ``D`` (a
batch is done: its tokens) and ``S`` (stop: close the listener and exit). The child also
stops when the parent goes away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from consumer.flume.receivers import FlumePushReceiver
from consumer.jobs.chunks import EventChunk, pack_bodies, text_column

log = logging.getLogger(__name__)

__all__ = ["ProcessPushReceiver"]

_HEAD = struct.Struct(">cI")
QUEUED_CHUNKS = 64  # calls answered ahead of what the parent has read (about 16 MB of W1)
STATUS_EVERY_S = 1.0  # how often the child looks whether its status changed


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    parts = []
    while n:
        part = sock.recv(min(n, 1 << 20))
        if not part:
            return None
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _recv(sock: socket.socket) -> tuple[bytes, bytes] | None:
    head = _recv_exactly(sock, _HEAD.size)
    if head is None:
        return None
    kind, length = _HEAD.unpack(head)
    payload = _recv_exactly(sock, length)
    return None if payload is None else (kind, payload)


# ---- the parent's side -------------------------------------------------------------------
class ProcessPushReceiver:
    """A receiver (see ``consumer.engine.receiver``) whose avro server runs in a child
    process; what it stores are :class:`EventChunk` records."""

    reliable = False

    def __init__(self, hostname: str, port: int, deflate: bool = False,
                 headers: Sequence[str] = (), settings: dict[str, Any] | None = None) -> None:
        self.hostname = hostname
        self.port = port
        self.deflate = deflate
        self.headers = tuple(headers)
        self.settings = dict(settings or {})  # more FlumePushReceiver keyword arguments
        self._proc: subprocess.Popen[bytes] | None = None
        self._data: socket.socket | None = None
        self._control: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._stopping = False
        self._status: dict[str, Any] = {}

    def status(self) -> dict[str, Any]:
        """What a monitor shows: the child's receiver status, as it last reported it."""
        return {"kind": "push", "address": f"{self.hostname}:{self.port}", "peers": [],
                **self._status}

    async def start(self, ctx: Any) -> None:
        data, data_child = socket.socketpair()
        control, control_child = socket.socketpair()
        fds = (data_child.fileno(), control_child.fileno())
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "consumer.jobs.intake", *map(str, fds)], pass_fds=fds)
        data_child.close()
        control_child.close()
        self._data, self._control = data, control
        config = {"host": self.hostname, "port": self.port, "deflate": self.deflate,
                  "headers": self.headers, "settings": self.settings,
                  "log_level": logging.getLogger().getEffectiveLevel()}
        control.sendall(_frame(b"P", pickle.dumps(config)))
        first = await asyncio.to_thread(_recv, data)
        if first is None or first[0] != b"L":
            await self._reap()
            data.close()
            self._data = None
            code, _, why = (first[1].decode(errors="replace").partition(" ") if first
                            else ("0", "", "it exited"))
            where = f"push receiver on {self.hostname}:{self.port}"
            if code.isdigit() and int(code):
                raise OSError(int(code), f"{where}: {why}")
            raise OSError(f"{where}: {why}")
        self.port = int(first[1])
        self._reader = threading.Thread(target=self._read_chunks, args=(ctx,),
                                        name="flumelet-intake", daemon=True)
        self._reader.start()

    def _read_chunks(self, ctx: Any) -> None:
        data = self._data
        assert data is not None
        try:
            while (message := _recv(data)) is not None:
                kind, payload = message
                if kind == b"T":
                    self._status = pickle.loads(payload)
                if kind != b"C":
                    continue
                token, buffer, offsets, headers = pickle.loads(payload)
                ctx.store([EventChunk(text_column(buffer, offsets), headers)], token=token)
        finally:
            data.close()
            self._data = None
        if not self._stopping:
            ctx.stop_context("the push receiver's process ended unexpectedly", None)

    def on_batch_done(self, tokens: list[Any]) -> None:
        if self._control is not None and tokens and not self._stopping:
            try:
                self._control.sendall(_frame(b"D", pickle.dumps(list(tokens))))
            except OSError:
                pass  # the child is gone: the reader thread reports it

    async def stop(self) -> None:
        """Stop listening; returns once every chunk the child sent is stored (the child
        sends what it answered before it exits; one that hangs is killed after 30 s)."""
        self._stopping = True
        if self._control is not None:
            try:
                self._control.sendall(_frame(b"S", b""))
            except OSError:
                pass
        await self._reap()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join)

    async def _reap(self) -> None:
        """Wait for the child to exit (killing it after 30 s); the reader thread sees the
        data socket's end and stops."""
        if self._proc is not None:
            try:
                await asyncio.to_thread(self._proc.wait, 30)
            except subprocess.TimeoutExpired:
                log.error("push receiver process did not stop within 30 s: killed")
                self._proc.kill()
                await asyncio.to_thread(self._proc.wait)
            self._proc = None
        if self._control is not None:
            self._control.close()
            self._control = None


def _frame(kind: bytes, payload: bytes) -> bytes:
    return _HEAD.pack(kind, len(payload)) + payload


# ---- the child's side --------------------------------------------------------------------
def _raw_body(body: bytes) -> bytes:
    """The child's body decoder: none (the parent decodes a whole chunk at once)."""
    return body


class _NoCheckpoint:
    """What FlumePushReceiver asks of its context: no checkpoint directory here."""

    _checkpoint_dir = None


class _ChunkContext:
    """The child's receiver context: each ``store`` becomes a chunk for the parent, queued for
    a sender thread (the parent may be busy with a batch for a moment: calls go on being
    answered meanwhile). A full queue blocks the store, and so the answer: backpressure."""

    def __init__(self, data: socket.socket, headers: tuple[str, ...]) -> None:
        self.data = data
        self.headers = headers
        self.errors: list[tuple[str, BaseException | None]] = []
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self.sender = threading.Thread(target=self._send_all, name="intake-send", daemon=True)
        self.sender.start()

    def store(self, records: Any, token: Any = None) -> None:
        records = records if isinstance(records, list) else list(records)
        headers = {name: [h.get(name) if h else None for h, _ in records]
                   for name in self.headers}
        chunk = (token, *pack_bodies([b for _, b in records]), headers)
        self.queue.put(_frame(b"C", pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)))

    def send(self, kind: bytes, payload: bytes) -> None:
        self.queue.put(_frame(kind, payload))

    def offer(self, kind: bytes, payload: bytes) -> bool:
        """Queue a message unless the queue is full (never blocks the loop)."""
        try:
            self.queue.put_nowait(_frame(kind, payload))
        except queue.Full:
            return False
        return True

    def close(self) -> None:
        """Send what is queued, then end."""
        self.queue.put(None)
        self.sender.join()

    def _send_all(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                self.data.sendall(message)
            except OSError:
                return  # the parent is gone; the control socket tells the loop

    def report_error(self, message: str, error: BaseException | None = None) -> None:
        self.errors.append((message, error))
        log.error("push receiver: %s", message, exc_info=error)

    def stop_context(self, message: str, error: BaseException | None = None) -> None:
        self.report_error(message, error)


async def _serve(data: socket.socket, control: socket.socket) -> None:
    reader, _ = await asyncio.open_connection(sock=control)

    async def message() -> tuple[bytes, bytes] | None:
        try:
            kind, length = _HEAD.unpack(await reader.readexactly(_HEAD.size))
            return kind, await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None  # the parent is gone

    first = await message()
    if first is None:
        return
    config = pickle.loads(first[1])
    logging.basicConfig(level=config["log_level"], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    receiver = FlumePushReceiver(_NoCheckpoint(), config["host"], config["port"],
                                 config["deflate"], _raw_body, **config["settings"])
    ctx = _ChunkContext(data, tuple(config["headers"]))
    try:
        try:
            await receiver.start(ctx)  # type: ignore[arg-type]
        except OSError as exc:
            # errno travels too: the parent's error names the cause and hints at the fix
            ctx.send(b"E", f"{exc.errno or 0} {exc.strerror or exc}".encode())
            return
        ctx.send(b"L", str(receiver.port).encode())
        reporter = asyncio.create_task(_report_status(receiver, ctx))
        try:
            while (msg := await message()) is not None and msg[0] != b"S":
                if msg[0] == b"D":
                    done = receiver.on_batch_done(pickle.loads(msg[1]))
                    if asyncio.iscoroutine(done):
                        await done
        finally:
            reporter.cancel()
            await receiver.stop()
    finally:
        await asyncio.to_thread(ctx.close)


async def _report_status(receiver: FlumePushReceiver, ctx: _ChunkContext) -> None:
    """Send the receiver's status to the parent whenever it changed (peers, backlog, last
    error): the parent's monitors (web UI, /metrics) read it from there."""
    last: dict[str, Any] | None = None
    while True:
        status = receiver.status()
        if status != last and ctx.offer(b"T", pickle.dumps(status)):
            last = status
        await asyncio.sleep(STATUS_EVERY_S)


def main(argv: Sequence[str]) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # the parent stops us (Ctrl-C reaches both);
        signal.signal(sig, signal.SIG_IGN)         # we also stop when the parent goes away
    data = socket.socket(fileno=int(argv[0]))
    control = socket.socket(fileno=int(argv[1]))
    data.setblocking(True)
    try:
        asyncio.run(_serve(data, control))
    finally:
        data.close()
        os._exit(0)  # no lingering threads (to_thread workers) keep the child alive


if __name__ == "__main__":
    main(sys.argv[1:])
