"""The taildir source: tails every file matching its file groups and remembers positions in
Flume's JSON position file.

Settings are Flume's (``filegroups``, ``filegroups.<g>``, ``headers.<g>.<key>``,
``positionFile``, ``batchSize``, ``maxBatchCount``, ``skipToEnd``, ``byteOffsetHeader``,
``fileHeader``/``fileHeaderKey``, ``idleTimeout``, ``writePosInterval``). The decisions live
in ``taildir_plan`` (rotation, truncation, retirement), ``taildir_lines`` (line splitting) and
``taildir_position`` (the file format); this module does the file I/O, in worker threads.

Delivery is at-least-once, as in Flume: a batch's position advances only once the channels
accepted it, and the position file is written every ``writePosInterval`` ms and at stop
(atomically: a temporary file renamed over it, where Flume truncates it in place). After a
crash, at most the lines of the last ``writePosInterval`` are read again. Files are read as
soon as watchdog reports a change in their directory; ``backoffSleepIncrement`` and
``maxBackoffSleep`` pace the polls between changes; ``cachePatternMatching`` is accepted for
compatibility.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from agent.components import (
    BackoffPolicy,
    ChannelException,
    Clock,
    PollableSource,
    Status,
    SystemClock,
)
from agent.config.converters import integer, to_bool, to_words
from agent.config.issues import IssueCode
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.sources.taildir_lines import LineBuffer
from agent.sources.taildir_match import (
    DEFAULT_POSITION_FILE,
    JAVA_LONG_MAX,
    TaildirSettings,
    settings_from,
)
from agent.sources.taildir_plan import Observed, TailTable
from agent.sources.taildir_position import (
    Position,
    PositionFileError,
    format_positions,
    parse_positions,
)
from protocol.event import Event, events_with

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
BYTE_OFFSET_HEADER = "byteoffset"


@dataclass
class _Open:
    """An open file we read: its descriptor and the bytes read past the committed position."""

    fd: int
    buffer: LineBuffer = field(default_factory=LineBuffer)


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    problems = []
    if settings["maxBatchCount"] <= 0:
        problems.append(Problem(IssueCode.BAD_VALUE, "maxBatchCount must be > 0; using the "
                                "default (no limit) as Flume does", "maxBatchCount",
                                warning=True))
    try:
        settings_from(settings)
    except ValueError as exc:
        problems.append(Problem(IssueCode.BAD_VALUE, str(exc), "filegroups"))
    return problems


class TaildirSource(PollableSource):
    SCHEMA = Schema(
        keys=(
            Key("filegroups", to_words, required=True),
            Key("positionFile", default=DEFAULT_POSITION_FILE),
            Key("batchSize", integer(1), 100),
            Key("maxBatchCount", integer(bits=64), JAVA_LONG_MAX),
            Key("skipToEnd", to_bool, False),
            Key("byteOffsetHeader", to_bool, False),
            Key("fileHeader", to_bool, False),
            Key("fileHeaderKey", default="file"),
            Key("idleTimeout", integer(0), 120_000),
            Key("writePosInterval", integer(1), 3000),
            Key("cachePatternMatching", to_bool, True,
                ignored="directories are listed on every change watchdog reports"),
            Key("backoffSleepIncrement", integer(1, bits=64), 1000),
            Key("maxBackoffSleep", integer(1, bits=64), 5000),
        ),
        families=(KeyFamily("filegroups"), KeyFamily("headers")),
        rules=_rules,
        batch_key="batchSize",
    )

    def __init__(self, name: str, settings: TaildirSettings, *, clock: Clock | None = None,
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        if settings.batch_size < 1:
            raise ValueError(f"source {name}: batchSize must be >= 1")
        self.settings = settings
        self.clock = clock or SystemClock()
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.table = TailTable()
        self._open: dict[int, _Open] = {}
        self._watchers: list[_DirectoryWake] = []
        self._next_position_write = 0.0
        self._started = False

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> TaildirSource:
        return cls(spec.name, settings_from(spec.settings), clock=ctx.clock,
                   counter=ctx.metrics.source(spec.name))

    def backoff_policy(self, default: BackoffPolicy) -> BackoffPolicy:
        """Flume's PollableSource waits: ``backoffSleepIncrement`` more per idle poll up to
        ``maxBackoffSleep`` (watchdog wakes it at once on a change). A refused batch is
        retried after 100 ms doubling to 1 s: Flume's taildir sleeps 1 s doubling to 5 s,
        which leaves a fast sink idle for seconds once the channel has room again."""
        s = self.settings
        return BackoffPolicy(step=s.backoff_increment, maximum=s.max_backoff,
                             error=default.error, retry=0.1, retry_maximum=1.0)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        missing = [g.directory for g in self.settings.groups if not os.path.isdir(g.directory)]
        if missing:
            raise FileNotFoundError(f"source {self.name}: directory does not exist: "
                                    f"{', '.join(missing)}")
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._restore)
        self._next_position_write = self.clock.monotonic() + self.settings.write_pos_interval
        await asyncio.to_thread(self._watch)
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            await asyncio.to_thread(watcher.stop)
        await asyncio.to_thread(self._write_positions)
        for inode in list(self._open):
            self._close(inode)

    def _watch(self) -> None:
        loop = self._loop

        def wake() -> None:
            loop.call_soon_threadsafe(self.wakeup)

        for directory in sorted({g.directory for g in self.settings.groups}):
            watcher = _DirectoryWake(directory, wake)
            watcher.start()
            self._watchers.append(watcher)

    # --- the poll ----------------------------------------------------------------------------

    async def process(self) -> Status:
        now = self.clock.monotonic()
        scan = await asyncio.to_thread(self._scan)
        gone = self.table.observe(scan, now)
        if gone:
            await asyncio.to_thread(self._find_retired, gone)
        if self.table.changed:  # a new or retired file is recorded at once, not in 3 s
            self.table.changed = False
            self._next_position_write = now
            await self._positions_if_due()
        more = False
        for inode in self.table.order():
            tracked = self.table.files.get(inode)
            if tracked is None:
                continue
            try:
                status = await self._tail(inode)
            except OSError as exc:
                self.counter.counters["EventReadFail"] += 1
                log.warning("source %s: cannot read %s: %s", self.name, tracked.path, exc)
                self._close(inode)
                continue
            if status is None:
                return Status.RETRY  # the channels refused: the runner waits, doubling
            more = more or status
        await self._close_idle()
        await self._positions_if_due()
        return Status.READY if more else Status.BACKOFF

    async def _positions_if_due(self) -> None:
        """Every ``writePosInterval``, even in the middle of a long catch-up (Flume writes
        them from a timer thread)."""
        if self.clock.monotonic() >= self._next_position_write:
            await asyncio.to_thread(self._write_positions)
            self._next_position_write = self.clock.monotonic() + self.settings.write_pos_interval

    async def _tail(self, inode: int, final: bool = False) -> bool | None:
        """Deliver batches from one file. True: batches remain (maxBatchCount reached);
        False: caught up; None: the channels refused a batch."""
        settings = self.settings
        table = self.table
        tracked = table.files[inode]
        handle = self._open.get(inode)
        if handle is None:
            if tracked.size <= tracked.pos and not final:
                return False
            handle = await asyncio.to_thread(self._reopen, inode)
            if handle is None:
                return False
        size = await asyncio.to_thread(_fstat_size, handle.fd)
        now = self.clock.monotonic()
        if table.saw_size(inode, size, now) or size < handle.buffer.end:
            log.info("source %s: %s was truncated; reading it again from the start",
                     self.name, tracked.path)
            table.files[inode].pos = 0
            handle.buffer.reset(0)
        if handle.buffer.start != tracked.pos:
            handle.buffer.reset(tracked.pos)
        headers = settings.groups[tracked.group].headers
        for _ in range(min(settings.max_batch_count, 1 << 62)):
            buffer = handle.buffer
            while not _has_lines(buffer, settings.batch_size) and buffer.end < size:
                chunk = await asyncio.to_thread(os.pread, handle.fd, READ_SIZE, buffer.end)
                if not chunk:
                    break
                buffer.append(chunk)
            bodies, offsets = buffer.take(settings.batch_size, final,
                                          offsets=settings.byte_offset_header)
            if not bodies:
                return False
            events = self._events(bodies, offsets, tracked.path, headers)
            counters = self.counter.counters
            counters["EventReceivedCount"] += len(events)
            counters["AppendBatchReceivedCount"] += 1
            try:
                self.channel_processor.process_event_batch(events)
            except ChannelException as exc:
                counters["ChannelWriteFail"] += 1
                log.warning("source %s: the channels refused %d line(s) of %s: %s", self.name,
                            len(events), tracked.path, exc)
                buffer.reset(tracked.pos)
                return None
            table.commit(inode, buffer.start, self.clock.monotonic())
            counters["EventAcceptedCount"] += len(events)
            counters["AppendBatchAcceptedCount"] += 1
            await self._positions_if_due()
            if len(events) < settings.batch_size:
                return False
        return True

    def _events(self, bodies: list[bytes], offsets: list[int], path: str,
                headers: Mapping[str, str]) -> list[Event]:
        settings = self.settings
        base = dict(headers)
        if settings.file_header:
            base[settings.file_header_key] = path
        if settings.byte_offset_header:
            return [Event({**base, BYTE_OFFSET_HEADER: str(offset)}, body)
                    for offset, body in zip(offsets, bodies, strict=True)]
        return events_with(base, bodies)

    async def _close_idle(self) -> None:
        """Files idle for ``idleTimeout``: a last line without newline is delivered, the file
        closed; retired files are then forgotten."""
        now = self.clock.monotonic()
        timeout = self.settings.idle_timeout
        for inode in list(self.table.files):
            tracked = self.table.files[inode]
            if not self.table.idle(inode, now, timeout):
                continue
            if inode in self._open or tracked.retired:
                try:
                    if await self._tail(inode, final=True) is None:
                        continue
                except OSError as exc:
                    log.warning("source %s: cannot read %s: %s", self.name, tracked.path, exc)
                self._close(inode)
                if tracked.retired:
                    log.info("source %s: done with %s (no longer matched), pos %d",
                             self.name, tracked.path, tracked.pos)
                    self.table.drop(inode)

    # --- blocking helpers (worker threads) -----------------------------------------------

    def _restore(self) -> None:
        positions = self._read_positions()
        scan = self._scan()
        now = self.clock.monotonic()
        unmatched = self.table.restore(positions, scan, self.settings.skip_to_end, now)
        for entry in unmatched:
            found = _find_inode(os.path.dirname(entry.file), entry.inode, 0)
            if found is not None:
                log.info("source %s: %s no longer matches (now %s); finishing it from pos %d",
                         self.name, entry.file, found.path, entry.pos)
                self.table.retire_found(entry, found, now)
            else:
                log.info("source %s: %s (inode %d) is gone; forgetting its position",
                         self.name, entry.file, entry.inode)
        for p in self.table.positions():
            log.info("source %s: tailing %s from pos %d", self.name, p.file, p.pos)

    def _read_positions(self) -> list[Position]:
        path = self.settings.position_file
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        try:
            return parse_positions(text)
        except PositionFileError as exc:
            aside = f"{path}.broken"
            os.replace(path, aside)
            log.error("source %s: position file %s is unreadable (%s); moved to %s, starting "
                      "without positions", self.name, path, exc, aside)
            return []

    def _write_positions(self) -> None:
        path = self.settings.position_file
        text = format_positions(self.table.positions())
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self.counter.counters["GenericProcessingFail"] += 1
            log.error("source %s: cannot write position file %s: %s", self.name, path, exc)

    def _scan(self) -> list[Observed]:
        found: list[Observed] = []
        seen: set[int] = set()
        for index, group in enumerate(self.settings.groups):
            try:
                entries = list(os.scandir(group.directory))
            except OSError as exc:
                log.warning("source %s: cannot list %s: %s", self.name, group.directory, exc)
                continue
            for entry in entries:
                if not group.matches(entry.name):
                    continue
                try:
                    st = entry.stat()
                except OSError:
                    continue  # deleted in the meantime
                if not _is_file(st.st_mode) or st.st_ino in seen:
                    continue
                seen.add(st.st_ino)
                found.append(Observed(entry.path, index, st.st_ino, st.st_size, st.st_mtime_ns))
        return found

    def _find_retired(self, inodes: Sequence[int]) -> None:
        """Files that stopped matching and are not open: find them by inode in their
        directory (a rotation to another name) and open them, so they can be finished."""
        for inode in inodes:
            tracked = self.table.files[inode]
            handle = self._open.get(inode)
            if handle is not None:  # still open: learn its new name, for the position file
                tracked.path = _current_name(handle.fd) or tracked.path
                continue
            found = _find_inode(os.path.dirname(tracked.path), inode, tracked.group)
            if found is None:
                log.info("source %s: %s is gone (pos %d)", self.name, tracked.path,
                         tracked.pos)
                self.table.drop(inode)
                continue
            tracked.path = found.path
            self._reopen(inode)

    def _reopen(self, inode: int) -> _Open | None:
        tracked = self.table.files[inode]
        try:
            fd = os.open(tracked.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        if os.fstat(fd).st_ino != inode:  # replaced in between: not our file any more
            os.close(fd)
            return None
        handle = self._open[inode] = _Open(fd, LineBuffer(tracked.pos))
        return handle

    def _close(self, inode: int) -> None:
        handle = self._open.pop(inode, None)
        if handle is not None:
            with contextlib.suppress(OSError):
                os.close(handle.fd)

    _loop: asyncio.AbstractEventLoop


class _DirectoryWake(FileSystemEventHandler):
    """Wake the source on any change in one directory (watchdog's thread calls ``wake``).
    Our own opens and reads raise no event that wakes it, so reading never loops."""

    WAKING = frozenset({"created", "modified", "moved", "deleted", "closed"})

    def __init__(self, directory: str, wake: Callable[[], None]) -> None:
        self.directory = directory
        self.wake = wake
        self._observer: BaseObserver | None = None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in self.WAKING:
            self.wake()

    def start(self) -> None:
        try:
            observer: BaseObserver = Observer()
            observer.schedule(self, self.directory, recursive=False)
            observer.start()
        except OSError as exc:
            log.info("inotify unavailable for %s (%s): polling instead", self.directory, exc)
            observer = PollingObserver(timeout=1.0)
            observer.schedule(self, self.directory, recursive=False)
            observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)


def _has_lines(buffer: LineBuffer, wanted: int) -> bool:
    return buffer.data.count(b"\n") >= wanted


def _current_name(fd: int) -> str | None:
    """The path an open file has now (Linux ``/proc``); None if deleted or unknown."""
    try:
        name = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return None if name.endswith(" (deleted)") or not name.startswith("/") else name


def _fstat_size(fd: int) -> int:
    return os.fstat(fd).st_size


def _is_file(mode: int) -> bool:
    return stat.S_ISREG(mode)


def _find_inode(directory: str, inode: int, group: int) -> Observed | None:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return None
    for entry in entries:
        try:
            st = entry.stat()
        except OSError:
            continue
        if st.st_ino == inode and _is_file(st.st_mode):
            return Observed(entry.path, group, inode, st.st_size, st.st_mtime_ns)
    return None
