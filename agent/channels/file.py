"""A durable channel (``type = file``): the memory channel plus a write-ahead log.

Every commit appends one record to a log in the first of ``dataDirs`` and, by default
(Flume's ``fsyncPerTransaction = true``), fsyncs it before the commit returns: the events a
transaction put, and the ids of the events it took. A
restart replays the log: what was put and never taken comes back, in order. So a source that
commits its read position after the channel commit (spooldir) loses nothing when the agent
is killed, and a sink repeats at most the batch it was delivering.

Flume's file channel keeps a checkpoint plus data files; flumelet keeps one log that it
rewrites with only the live events when it grows past ``maxFileSize`` (and at start). Keys
it reads: ``dataDirs`` (the log's directory; default ``~/.flume/file-channel/data``),
``capacity`` (1000000), ``transactionCapacity`` (10000), ``maxFileSize``, ``keep-alive``,
``fsyncPerTransaction`` (true), ``fsyncInterval`` (5);
``checkpointDir``, ``checkpointInterval``, ``useDualCheckpoints``, ``backupCheckpointDir``,
``checkpointOnClose`` and ``minimumRequiredSpace`` are accepted for compatibility.
A failed log write makes the channel refuse further commits (ChannelException) rather than
pretend durability.

fsync policy, Flume's keys: ``fsyncPerTransaction = false`` writes each commit to the log (so
a killed process loses nothing: the bytes are in the kernel's page cache) but fsyncs at most
every ``fsyncInterval`` seconds (default 5), on a timer while idle, and when the channel
stops; an OS crash or power cut can then lose (or, for takes, redeliver) the last
interval's commits. One fsync covers every commit written since the previous one.

Group commit at the default policy: a source or sink that commits inside
``durability.fsync_later()`` and then awaits ``synced()`` (spooldir, avro source, avro sink)
has its commit written at once and fsynced by a worker thread; one fsync covers every
commit written before it started, and the commits written while it runs share the next.

Like Flume's, the channel locks its directory (``in_use.lock``, an exclusive ``flock``) for
as long as it runs: a second file channel on the same directory, in this agent or another
process, is refused with "the directory is already locked" instead of sharing the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from agent.channels.durability import fsync_deferred
from agent.channels.memory import (
    KEEP_ALIVE,
    MemoryChannel,
    MemoryTransaction,
    transaction_within_capacity,
)
from agent.components import ChannelException, Clock, SystemClock
from agent.config.converters import integer, to_bool, to_list
from agent.config.schema import Key, Schema
from common import records
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

LOG_NAME = "flumelet-channel.log"
LOCK_NAME = "in_use.lock"  # Flume's name
DEFAULT_MAX_FILE_SIZE = 2_146_435_071


_COMPAT = "flumelet's single log needs no checkpoint"


class FileChannel(MemoryChannel):
    durable = True  # what it holds at a stop is kept (the agent's shutdown report says so)
    SCHEMA = Schema(
        keys=(
            Key("dataDirs", to_list, ["~/.flume/file-channel/data"]),
            Key("checkpointDir", default="~/.flume/file-channel/checkpoint", ignored=_COMPAT),
            Key("capacity", integer(1, fallback=1_000_000), 1_000_000),
            Key("transactionCapacity", integer(1, fallback=10_000), 10_000),
            Key("maxFileSize", integer(1, bits=64), DEFAULT_MAX_FILE_SIZE),
            KEEP_ALIVE,
            Key("checkpointInterval", integer(0, bits=64), 30_000, ignored=_COMPAT),
            Key("minimumRequiredSpace", integer(0, bits=64), 524_288_000,
                ignored="not checked before writes"),
            Key("useDualCheckpoints", to_bool, False, ignored=_COMPAT),
            Key("backupCheckpointDir", ignored=_COMPAT),
            Key("checkpointOnClose", to_bool, True, ignored=_COMPAT),
            Key("fsyncPerTransaction", to_bool, True),
            Key("fsyncInterval", integer(1), 5),
        ),
        rules=transaction_within_capacity,
        exclusive_dir="dataDirs",
    )

    def __init__(self, name: str, data_dir: str | os.PathLike[str], *,
                 max_file_size: int = DEFAULT_MAX_FILE_SIZE, fsync_per_transaction: bool = True,
                 fsync_interval: float = 5.0, clock: Clock | None = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.dir = Path(data_dir).expanduser()
        self.max_file_size = max_file_size
        self.fsync_per_transaction = fsync_per_transaction
        self.fsync_interval = fsync_interval
        self.clock = clock or SystemClock()
        self.syncs = 0  # fsyncs of the log after a commit (tests and benchmarks read it)
        self._unsynced = False  # commits written since the last fsync
        self._written = 0  # log writes so far ...
        self._synced = 0  # ... and how many of them an fsync has covered
        self._syncing: asyncio.Future[None] | None = None  # the group fsync running
        self._synced_at = self.clock.monotonic()
        self._timer: asyncio.Task[None] | None = None
        self._live: dict[int, Event] = {}  # seq -> event, every event put and not yet taken
        self._seq_of: dict[int, int] = {}  # id(event) -> seq
        self._next_seq = 0
        self._file: Any = None
        self._size = 0
        self.broken: str | None = None
        self._lock: IO[bytes] | None = None
        self._open()

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> FileChannel:
        s = spec.settings
        return cls(
            spec.name, s["dataDirs"][0],
            max_file_size=s["maxFileSize"],
            fsync_per_transaction=s["fsyncPerTransaction"],
            fsync_interval=float(s["fsyncInterval"]),
            clock=ctx.clock,
            capacity=s["capacity"],
            transaction_capacity=s["transactionCapacity"],
            counter=ctx.metrics.channel(spec.name),
        )

    # ---- the log ------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.dir / LOG_NAME

    def _open(self) -> None:
        """Lock the directory, replay the log into the queue, then rewrite it with the live
        events only."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = lock_directory(self.dir, self.name)
        try:
            self._load()
        except BaseException:
            self._unlock()
            raise

    def _load(self) -> None:
        if self.path.exists():
            self._replay(self.path.read_bytes())
        recovered = [self._live[seq] for seq in sorted(self._live)]
        for seq in sorted(self._live):
            self._seq_of[id(self._live[seq])] = seq
        self.queue.extend_owned(recovered)
        self.slots_used = len(self.queue)
        if self.queue:
            log.info("channel %s: recovered %d events from %s", self.name, len(self.queue),
                     self.path)
        self._rewrite()

    def _replay(self, data: bytes) -> None:
        logged, pos = records.scan(data)
        for _end, (kind, items) in logged:
            if kind == "P":
                for seq, headers, payload in items:
                    self._live[seq] = Event(headers, payload)
                    self._next_seq = max(self._next_seq, seq + 1)
            else:
                for seq in items:
                    self._live.pop(seq, None)
        if pos != len(data):
            log.warning("channel %s: cut %d bytes of torn log tail in %s", self.name,
                        len(data) - pos, self.path)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            items = [(seq, e.header_map, e.body) for seq, e in sorted(self._live.items())]
            f.write(records.encode(("P", items)) if items else b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.dir)
        self._synced = self._written  # the new log holds every live event, on disk
        self._unsynced = False
        if self._file is not None:
            self._file.close()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held for the channel's lifetime
        self._size = self.path.stat().st_size

    def _append(self, puts: list[Event], takes: list[Event]) -> None:
        """Log one commit durably, then record it in memory; a failure changes nothing."""
        first = self._next_seq
        put_items = [(first + i, e.header_map, e.body) for i, e in enumerate(puts)]
        take_seqs = [self._seq_of[id(e)] for e in takes if id(e) in self._seq_of]
        data = (records.encode(("P", put_items)) if put_items else b"") + \
            (records.encode(("T", take_seqs)) if take_seqs else b"")
        if data:
            good = self._size
            try:
                self._file.write(data)
                self._file.flush()
                self._written += 1
                self._unsynced = True
                if self.fsync_per_transaction:
                    if not fsync_deferred():
                        self._fsync()
                elif self._sync_due():
                    self._fsync()
            except OSError as exc:
                self.broken = f"log write to {self.path} failed: {exc}"
                log.error("channel %s: %s; refusing further commits and takes", self.name,
                          self.broken)
                with contextlib.suppress(OSError):
                    self._file.truncate(good)
                raise ChannelException(f"channel {self.name}: {self.broken}") from exc
            self._size += len(data)
        self._next_seq += len(puts)
        for (seq, _, _), e in zip(put_items, puts, strict=True):
            self._seq_of[id(e)] = seq
            self._live[seq] = e
        for seq in take_seqs:
            self._live.pop(seq, None)
        for e in takes:
            self._seq_of.pop(id(e), 0)
        if self._size > self.max_file_size and self._syncing is None:  # not under an fsync
            try:
                self._rewrite()
            except OSError as exc:  # the commit itself is durable; compaction can wait
                log.warning("channel %s: compacting %s failed: %s", self.name, self.path, exc)

    def _sync_due(self) -> bool:
        return self.clock.monotonic() - self._synced_at >= self.fsync_interval

    def _fsync(self) -> None:
        os.fsync(self._file.fileno())
        self._synced = self._written
        self._unsynced = False
        self._synced_at = self.clock.monotonic()
        self.syncs += 1

    def sync_if_due(self) -> None:
        """fsync the commits written since the last fsync once ``fsyncInterval`` has passed
        (``fsyncPerTransaction = false``); a failure breaks the channel, as a failed write
        does."""
        if not self._unsynced or self._file is None or not self._sync_due():
            return
        try:
            self._fsync()
        except OSError as exc:
            self.broken = f"fsync of {self.path} failed: {exc}"
            log.error("channel %s: %s; refusing further commits and takes", self.name,
                      self.broken)

    async def synced(self) -> None:
        """Return once every commit written so far is on disk (group commit, see above);
        at once with ``fsyncPerTransaction = false``."""
        if not self.fsync_per_transaction:
            return
        target = self._written
        while self._synced < target:
            if self.broken:
                raise ChannelException(f"channel {self.name}: {self.broken}")
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync_round())
            await asyncio.shield(self._syncing)

    async def _sync_round(self) -> None:
        """One fsync in a worker thread, covering every write before it started."""
        upto = self._written
        try:
            if self._file is None:
                raise ChannelException(f"channel {self.name} is stopped")
            await asyncio.to_thread(os.fsync, self._file.fileno())
        except OSError as exc:
            self.broken = f"fsync of {self.path} failed: {exc}"
            log.error("channel %s: %s; refusing further commits and takes", self.name,
                      self.broken)
            raise ChannelException(f"channel {self.name}: {self.broken}") from exc
        finally:
            self._syncing = None
        self._synced = max(self._synced, upto)
        self._unsynced = self._synced < self._written
        self.syncs += 1

    def transaction(self) -> FileTransaction:
        return FileTransaction(self)

    async def start(self) -> None:
        if not self.fsync_per_transaction and self._timer is None:
            self._timer = asyncio.create_task(self._sync_while_idle(),
                                              name=f"channel {self.name} fsync")

    async def _sync_while_idle(self) -> None:
        while True:
            await asyncio.sleep(self.fsync_interval)
            self.sync_if_due()

    async def stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if self._syncing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._syncing)
        if self._file is not None:
            if self._unsynced:
                try:
                    self._fsync()
                except OSError as exc:
                    log.error("channel %s: fsync of %s at stop failed: %s", self.name,
                              self.path, exc)
            self._file.close()
            self._file = None
        self._unlock()

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the descriptor releases the flock


class DirectoryLockedError(OSError):
    """Another file channel, here or in another process, holds the directory's lock."""


def lock_directory(directory: Path, channel: str) -> IO[bytes]:
    """Flume's ``in_use.lock``: an exclusive lock held while the returned file is open."""
    handle = open(directory / LOCK_NAME, "ab")  # noqa: SIM115 - held until the channel stops
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DirectoryLockedError(
            f"cannot lock {directory}: the directory is already locked (by another file "
            f"channel or process) [channel={channel}]"
        ) from None
    except BaseException:
        handle.close()
        raise
    return handle


class FileTransaction(MemoryTransaction):
    __slots__ = ()

    def _healthy(self) -> FileChannel:
        channel = self._channel
        assert isinstance(channel, FileChannel)
        if channel.broken:
            raise ChannelException(f"channel {channel.name}: {channel.broken}")
        return channel

    def _do_take(self) -> Event | None:
        self._healthy()  # a broken log could not record the take: deliver nothing
        return super()._do_take()

    def take_batch(self, limit: int) -> list[Event]:
        self._healthy()
        return super().take_batch(limit)

    def _do_commit(self) -> None:
        channel = self._healthy()
        self._check_room()  # a refused commit writes nothing
        channel._append(self._puts, self._takes)  # durable first ...
        self._apply_commit()  # ... then visible


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
