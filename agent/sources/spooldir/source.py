"""The spooling-directory source: read complete files dropped into a directory, line by line.

Flume's SpoolDirectorySource semantics (reference §5.1), with one deliberate difference:
Flume stops dead (its scan task dies until a restart) on any surprise: a file modified or
truncated after reading began, a reused name, undecodable bytes under decodeErrorPolicy=FAIL.
Here such a file is moved aside to ``<trackerDir>/failed/<relative path>`` next to a
``<name>.reason`` text file saying what happened; the events already committed stay
delivered and every other file keeps flowing. A missing spool directory is waited for (logged
once), an unwritable one is logged and re-checked at every poll.

Layers: ``deserializers`` (pure bytes -> bodies with byte marks), ``selection`` (pure choice
of the next file), ``tracker`` (durable position), ``spool`` (blocking directory work, run in
threads), ``watcher`` (watchdog wake-ups). This module only sequences them on the event loop.

Delivery: a batch (at most ``batchSize`` events, never spanning two files) is handed to the
channel processor on the event loop; its end offset is written to the position file only
after the channel committed. After a crash, reading resumes from the last committed offset,
so at most one batch is repeated and nothing is skipped. Channel failures keep the batch in
memory and retry it after 250 ms, doubling up to ``maxBackoff``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from agent.components import ChannelException, Clock, PollableSource, Status, SystemClock
from agent.sources.spooldir import spool
from agent.sources.spooldir.deserializers import BlobDeserializer, DecodeFailure, LineDeserializer
from agent.sources.spooldir.selection import CandidateRules, Listing, candidates, choose
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.tracker import FileIdentity, PositionTracker
from agent.sources.spooldir.watcher import DirectoryWatcher
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import SourceSpec

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20
INITIAL_BACKOFF = 0.25
COUNTER_KEYS = (
    "EventReceivedCount",
    "EventAcceptedCount",
    "AppendBatchReceivedCount",
    "AppendBatchAcceptedCount",
    "ChannelWriteFail",
    "EventReadFail",
    "GenericProcessingFail",
)


def java_absolute(path: str) -> str:
    """``File.getAbsolutePath``: prefix the working directory, keep ``.`` parts, drop ``//``."""
    if not os.path.isabs(path):
        path = os.getcwd().rstrip("/") + "/" + path
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


@dataclass
class _OpenFile:
    """The file being read: its descriptor, deserializer and the identity captured at open."""

    rel_path: str
    abs_path: str
    identity: FileIdentity
    handle: BinaryIO
    deserializer: LineDeserializer | BlobDeserializer
    headers: dict[str, str]
    start: int
    first_read: bool = True
    lines_taken: int = 0
    pending_mark: int = field(default=0)


class _Failure(Exception):
    """A file-level surprise: move the file aside for ``reason``; ``counter`` to increment."""

    def __init__(self, rel_path: str, reason: str, counter: str = "GenericProcessingFail"):
        super().__init__(reason)
        self.rel_path = rel_path
        self.reason = reason
        self.counter = counter


class SpoolDirSource(PollableSource):
    """Flume's ``spooldir`` source (see the module docstring for how it differs on errors)."""

    def __init__(
        self,
        name: str,
        settings: SpoolDirSettings,
        *,
        clock: Clock | None = None,
        counters: dict[str, int] | None = None,
        rng: random.Random | None = None,
        watch: bool = True,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        super().__init__(name)
        self.settings = s = settings
        self.clock = clock or SystemClock()
        self.counters = counters if counters is not None else {}
        for key in COUNTER_KEYS:
            self.counters.setdefault(key, 0)
        self._rng = rng or random.Random()
        self._watch = watch
        self._block_size = block_size
        self.spool_dir = s.spool_dir
        self.tracker_dir = (
            s.tracker_dir if os.path.isabs(s.tracker_dir)
            else os.path.join(s.spool_dir, s.tracker_dir)
        )
        self.failed_dir = os.path.join(self.tracker_dir, spool.FAILED_DIR)
        self._rules = CandidateRules(s.include, s.ignore, s.file_suffix)
        self._tracker = PositionTracker(self.tracker_dir)
        self._abs_spool = java_absolute(s.spool_dir)
        self._current: _OpenFile | None = None
        self._pending: list[bytes] | None = None  # a batch the channel refused, to retry
        self._retry_at = 0.0
        self._backoff = INITIAL_BACKOFF
        self._next_scan = 0.0
        self._dirty = True  # something may have arrived: scan now, not at the next pollDelay
        self._skip: set[tuple[str, int, int]] = set()
        self._dir_problem: str | None = None  # the last logged directory problem
        self._tracker_ready = False
        self._watcher: DirectoryWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    @classmethod
    def from_spec(cls, spec: SourceSpec, ctx: Any) -> SpoolDirSource:
        settings = SpoolDirSettings.from_mapping(spec.settings)
        metrics: Any = getattr(ctx, "metrics", None)
        counters = metrics.source(spec.name).counters if hasattr(metrics, "source") else None
        return cls(spec.name, settings, clock=getattr(ctx, "clock", None), counters=counters)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._dirty = True

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)
        current, self._current = self._current, None
        if current is not None:
            current.handle.close()
        self._pending = None
        self._tracker.close()  # keep the position file: the next start resumes from it

    # -- the work ------------------------------------------------------------------------
    async def process(self) -> Status:
        """Move at most one batch into the channel; READY means call again at once."""
        if self._stopped:
            return Status.BACKOFF
        now = self.clock.monotonic()
        if self._pending is not None:
            if now < self._retry_at:
                return Status.BACKOFF
            return self._deliver(self._pending)
        if self._current is None:
            if not self._dirty and now < self._next_scan:
                return Status.BACKOFF
            opened = await self._open_next()
            if opened is None:
                return Status.READY  # a file was moved aside: go on with the next at once
            if not opened:
                self._next_scan = self.clock.monotonic() + self.settings.poll_delay
                self._wake_after(self.settings.poll_delay)
                return Status.BACKOFF
        current = self._current
        assert current is not None
        try:
            bodies = await self._read(current, self.settings.batch_size)
        except _Failure as failure:
            await self._fail_current(failure)
            return Status.READY
        if not bodies:
            await self._finish_current()
            return Status.READY
        return self._deliver(bodies)

    async def _read(self, current: _OpenFile, n: int) -> list[bytes]:
        des = current.deserializer
        try:
            while des.ready() < n and not des.input_ended and not des.exhausted:
                data = await asyncio.to_thread(current.handle.read, self._block_size)
                if data:
                    des.feed(data)
                else:
                    des.end_input()
            bodies = des.take(n)
        except DecodeFailure as exc:
            raise _Failure(
                current.rel_path,
                f"{exc} (line {current.lines_taken + 1} counting from offset {current.start}, "
                f"decodeErrorPolicy=FAIL, inputCharset={self.settings.input_charset})",
                "EventReadFail",
            ) from exc
        except OSError as exc:
            raise _Failure(current.rel_path, f"read failed: {exc}", "EventReadFail") from exc
        if current.first_read:
            current.first_read = False
            if not bodies and current.start == 0:
                bodies = [b""]  # Flume: an empty file still yields one (empty) event
        current.lines_taken += len(bodies)
        current.pending_mark = des.mark
        return bodies

    def _deliver(self, bodies: list[bytes]) -> Status:
        current = self._current
        headers = current.headers if current is not None else {}
        if headers:
            events = [Event(dict(headers), body) for body in bodies]
        else:
            events = [Event({}, body) for body in bodies]
        counters = self.counters
        counters["EventReceivedCount"] += len(events)
        counters["AppendBatchReceivedCount"] += 1
        try:
            self.channel_processor.process_event_batch(events)
        except Exception as exc:
            is_channel = isinstance(exc, ChannelException)
            counters["ChannelWriteFail" if is_channel else "GenericProcessingFail"] += 1
            delay = self._backoff
            self._backoff = min(delay * 2, self.settings.max_backoff)
            self._pending = bodies
            self._retry_at = self.clock.monotonic() + delay
            self._wake_after(delay)
            log.warning(
                "source %s: channel refused %d events from %s (%s); retrying in %.0f ms",
                self.name, len(events), current.abs_path if current else "?",
                exc if is_channel else repr(exc), delay * 1000,
            )
            return Status.BACKOFF
        self._pending = None
        self._backoff = INITIAL_BACKOFF
        if current is not None:
            try:
                self._tracker.commit(current.pending_mark)  # a few-byte append: kept inline
            except OSError as exc:
                log.error("source %s: cannot record position in %s: %s",
                          self.name, self._tracker.path, exc)
        counters["EventAcceptedCount"] += len(events)
        counters["AppendBatchAcceptedCount"] += 1
        return Status.READY

    # -- choosing and opening files ------------------------------------------------------
    async def _open_next(self) -> bool | None:
        """True: a file is open; False: nothing to read now; None: a file was moved aside."""
        self._dirty = False
        try:
            opened = await asyncio.to_thread(self._scan_and_open)
        except _Failure as failure:
            await self._move_aside(failure)
            self._dirty = True
            return None
        except FileNotFoundError:
            self._report_dir_problem(f"spool directory {self.spool_dir} does not exist yet")
            return False
        except spool.DirectoryProblem as exc:
            self._report_dir_problem(str(exc))
            return False
        except OSError as exc:
            self._report_dir_problem(f"cannot scan {self.spool_dir}: {exc}")
            return False
        if self._dir_problem is not None:
            log.info("source %s: spool directory %s is usable now", self.name, self.spool_dir)
            self._dir_problem = None
        if self._watch and self._watcher is None:
            await self._start_watcher()
        if opened is None:
            return False
        self._current = opened
        return True

    def _scan_and_open(self) -> _OpenFile | None:
        """Blocking: list, pick (the tracked file first), open and start tracking."""
        s = self.settings
        listing = spool.list_files(
            self.spool_dir, self._rules, recursive=s.recursive,
            exclude_dirs=frozenset({os.path.abspath(self.tracker_dir)}),
        )
        if not self._tracker_ready:
            problem = spool.probe_writable(self.spool_dir)
            if problem is not None:
                raise spool.DirectoryProblem(problem)
            os.makedirs(self.tracker_dir, exist_ok=True)
            self._tracker_ready = True
        markers: frozenset[str] = frozenset()
        if s.tracker_dir_policy:
            markers = spool.completed_markers(
                self.tracker_dir, s.file_suffix, [e.rel_path for e in listing]
            )
        eligible = candidates(listing, self._rules, completed_markers=markers,
                              skip=frozenset(self._skip))
        chosen, offset = self._resume_choice(eligible)
        while True:
            if chosen is None:
                chosen = choose(eligible, s.consume_order, self._rng)
                offset = 0
            if chosen is None:
                return None
            opened = self._open(chosen, offset)
            if opened is not None:
                return opened
            eligible.remove(chosen)  # vanished since the listing: try the next one
            chosen = None

    def _resume_choice(self, eligible: list[Listing]) -> tuple[Listing | None, int]:
        tracked = self._tracker.load()
        if tracked is None:
            return None, 0
        ident = tracked.identity
        entry = next((e for e in eligible if e.rel_path == ident.rel_path), None)
        if entry is None:
            self._tracker.clear()  # finished or gone: nothing to resume
            return None, 0
        try:
            st = os.stat(os.path.join(self.spool_dir, entry.rel_path))
        except FileNotFoundError:
            self._tracker.clear()
            return None, 0
        if ident.unchanged(st):
            log.info("source %s: resuming %s at byte %d", self.name, entry.rel_path,
                     tracked.offset)
            return entry, tracked.offset
        if ident.same_file(st):
            self._tracker.clear()
            raise _Failure(
                entry.rel_path,
                f"file was modified after reading began (size {ident.size} -> {st.st_size}, "
                f"mtime_ns {ident.mtime_ns} -> {st.st_mtime_ns}); {tracked.offset} bytes had "
                "been delivered",
            )
        log.warning("source %s: %s is a new file under a name being read before a restart; "
                    "reading it from the start", self.name, entry.rel_path)
        self._tracker.clear()
        return entry, 0

    def _open(self, entry: Listing, offset: int) -> _OpenFile | None:
        s = self.settings
        abs_path = os.path.join(self.spool_dir, entry.rel_path)
        try:
            handle: BinaryIO = open(abs_path, "rb", buffering=0)  # noqa: SIM115 (kept open)
        except FileNotFoundError:
            log.warning("source %s: %s vanished before it could be opened", self.name, abs_path)
            return None
        except OSError as exc:
            raise _Failure(entry.rel_path, f"cannot open: {exc}", "EventReadFail") from exc
        try:
            st = os.fstat(handle.fileno())
            identity = FileIdentity.of(entry.rel_path, st)
            if offset > st.st_size:
                raise _Failure(entry.rel_path,
                               f"file shrank to {st.st_size} bytes below the committed offset "
                               f"{offset} (truncated after reading began)")
            if offset:
                handle.seek(offset)
            self._tracker.begin(identity, offset)
        except BaseException:
            handle.close()
            raise
        des: LineDeserializer | BlobDeserializer
        if s.deserializer == "BLOB":
            des = BlobDeserializer(max_blob_length=s.max_blob_length, start=offset)
        else:
            des = LineDeserializer(
                max_line_length=s.max_line_length, input_charset=s.input_charset,
                output_charset=s.output_charset, errors=s.errors, start=offset,
            )
        headers: dict[str, str] = {}
        if s.file_header_key is not None:
            headers[s.file_header_key] = self._abs_spool + "/" + entry.rel_path
        if s.basename_header_key is not None:
            headers[s.basename_header_key] = entry.name
        log.info("source %s: reading %s from byte %d", self.name, abs_path, offset)
        return _OpenFile(entry.rel_path, abs_path, identity, handle, des, headers, offset,
                         pending_mark=offset)

    # -- finishing files -----------------------------------------------------------------
    async def _finish_current(self) -> None:
        current = self._current
        assert current is not None
        self._current = None
        current.handle.close()
        try:
            done = await asyncio.to_thread(self._retire, current)
        except _Failure as failure:
            await self._move_aside(failure)
            return
        except FileNotFoundError:
            log.warning("source %s: %s vanished before it could be retired; its events "
                        "were delivered", self.name, current.abs_path)
            self._tracker.clear()
            return
        except OSError as exc:
            await self._move_aside(_Failure(current.rel_path, f"cannot retire: {exc}"))
            return
        log.info("source %s: finished %s (%s)", self.name, current.abs_path, done)

    def _retire(self, current: _OpenFile) -> str:
        s = self.settings
        st = os.stat(current.abs_path)
        ident = current.identity
        if not ident.same_file(st):
            raise _Failure(current.rel_path,
                           "file was replaced by another file while it was being read")
        if st.st_mtime_ns != ident.mtime_ns:
            raise _Failure(current.rel_path, "file has been modified since being read "
                           f"(mtime_ns {ident.mtime_ns} -> {st.st_mtime_ns})")
        if st.st_size != ident.size:
            raise _Failure(current.rel_path, "file has changed size since being read "
                           f"({ident.size} -> {st.st_size} bytes)")
        marker = None
        if s.tracker_dir_policy:
            marker = os.path.join(self.tracker_dir, current.rel_path + s.file_suffix)
        try:
            done = spool.retire(current.abs_path, delete=s.delete_immediately,
                                file_suffix=s.file_suffix, marker_path=marker)
        except spool.RetireError as exc:
            raise _Failure(current.rel_path, str(exc)) from exc
        self._tracker.clear()
        return done

    async def _fail_current(self, failure: _Failure) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.handle.close()
        self._pending = None
        await self._move_aside(failure)

    async def _move_aside(self, failure: _Failure) -> None:
        self.counters[failure.counter] += 1
        self._tracker.clear()
        rel = failure.rel_path
        try:
            target = await asyncio.to_thread(
                spool.move_aside, self.spool_dir, self.failed_dir, rel, failure.reason,
                self.clock.time,
            )
        except OSError as exc:
            log.error("source %s: problem with %s: %s; it could not be moved aside either "
                      "(%s), so it is skipped until it changes", self.name,
                      os.path.join(self.spool_dir, rel), failure.reason, exc)
            await asyncio.to_thread(spool.write_reason_only, self.failed_dir, rel,
                                    failure.reason)
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(self.spool_dir, rel))
                self._skip.add((rel, st.st_ino, st.st_mtime_ns))
            return
        log.error("source %s: problem with %s: %s; moved it to %s (see %s%s)", self.name,
                  os.path.join(self.spool_dir, rel), failure.reason, target, target,
                  spool.REASON_SUFFIX)

    # -- waking up -----------------------------------------------------------------------
    def _report_dir_problem(self, problem: str) -> None:
        if problem != self._dir_problem:
            log.warning("source %s: %s; retrying every %.0f ms", self.name, problem,
                        self.settings.poll_delay * 1000)
            self._dir_problem = problem

    async def _start_watcher(self) -> None:
        watcher = DirectoryWatcher(
            self.spool_dir, self._on_fs_change_threadsafe, recursive=self.settings.recursive,
            ignore_under=os.path.abspath(self.tracker_dir),
            poll_interval=self.settings.poll_delay,
        )
        try:
            await asyncio.to_thread(watcher.start)
        except OSError as exc:
            log.warning("source %s: cannot watch %s (%s); polling every %.0f ms", self.name,
                        self.spool_dir, exc, self.settings.poll_delay * 1000)
            return
        self._watcher = watcher

    def _on_fs_change_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self._on_fs_change)

    def _on_fs_change(self) -> None:
        self._dirty = True
        self.wakeup()

    def _wake_after(self, delay: float) -> None:
        """Make sure the runner calls us again after ``delay`` even if its own backoff is longer."""
        loop = self._loop
        if loop is None or self._stopped:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self.wakeup()
