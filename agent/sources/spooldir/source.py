"""The spooling-directory source: read complete files dropped into a directory, line by line.

Flume's SpoolDirectorySource semantics (reference §5.1), with deliberate differences (the
README's table lists them all). Flume stops dead (its scan task dies until a restart) on any
surprise: a file modified or truncated after reading began, a reused name, undecodable bytes
under decodeErrorPolicy=FAIL. Here such a file is moved aside to ``<trackerDir>/failed/
<relative path>`` next to a ``<name>.reason`` text file saying what happened and what was
delivered; every other file keeps flowing. An entry that cannot be read at all (FIFO, symlink
loop...) is skipped with one log line. A missing spool directory is waited for (logged once),
an unwritable one is logged and re-checked at every poll. Flume lists the directory again for
every file; here it is listed once and then kept current from the watcher's events.

Layers: pure ``deserializers`` (bytes -> bodies with byte marks), ``selection`` (the sorted
candidate index) and ``decisions`` (what a stat result means, what to say); blocking
``listing`` (scan, examine one path), ``spool`` (the directory: pick, open, retire, set
aside), ``reader`` (one file, a batch per call) and ``tracker`` (durable position), all run
through ``asyncio.to_thread``, one hop per small file; ``watcher`` (changed paths, from
watchdog's thread). This module only sequences them on the event loop. It never sleeps and
keeps no timers: ``process()`` answers READY, BACKOFF (nothing to read: the runner waits
``pollDelay`` or until the watcher wakes it) or RETRY (the channel refused a batch: the
runner waits 250 ms, doubling up to ``maxBackoff``, see ``backoff_policy``).

Delivery: a batch (at most ``batchSize`` events, never spanning two files) is handed to the
channel processor on the event loop; its end offset is written to the position file only
after the channel committed (a file's position file is started before its second batch is
read, so a one-batch file never needs one). After a crash, reading resumes from the last
committed offset, so at most one batch is repeated and nothing is skipped; a graceful stop
repeats nothing. A refused batch is kept in memory and sent again on the next call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.channels.durability import fsync_later
from agent.components import (
    BackoffPolicy,
    ChannelException,
    ChannelFullException,
    Clock,
    PollableSource,
    Status,
    SystemClock,
)
from agent.sources.spooldir import spool
from agent.sources.spooldir.decisions import shown
from agent.sources.spooldir.reader import BLOCK_SIZE, FileReader
from agent.sources.spooldir.reasons import FileFailure
from agent.sources.spooldir.settings import SCHEMA, SpoolDirSettings
from agent.sources.spooldir.watcher import ChangeInbox, DirectoryWatcher
from common.outage import Throttle
from protocol.event import events_with

if TYPE_CHECKING:
    from agent.config.model import SourceSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

FIRST_RETRY = 0.25  # seconds before re-sending a refused batch (Flume's 250 ms), then doubling
REFUSAL_REPORT_S = 30.0  # at most one line about refused batches this often
COUNTER_KEYS = (
    "EventReceivedCount",
    "EventAcceptedCount",
    "AppendBatchReceivedCount",
    "AppendBatchAcceptedCount",
    "ChannelWriteFail",
    "EventReadFail",
    "GenericProcessingFail",
)


class SpoolDirSource(PollableSource):
    """Flume's ``spooldir`` source (see the module docstring for how it differs on errors)."""

    SCHEMA = SCHEMA  # its keys, defaults and rules: agent/sources/spooldir/settings.py

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
        drain_state: Callable[[str], tuple[str, bool]] | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings
        self.clock = clock or SystemClock()
        self.counters = counters if counters is not None else {}
        for key in COUNTER_KEYS:
            self.counters.setdefault(key, 0)
        self.spool = spool.SpoolDirectory(name, settings, rng=rng, block_size=block_size,
                                          now=self.clock.time)
        self.spool_dir = settings.spool_dir
        self._watch = watch
        self._current: FileReader | None = None
        # small files the last advance read whole behind the current one, not yet delivered;
        # and files read whole and delivered, retired by the next blocking call
        self._ahead: collections.deque[tuple[FileReader, list[bytes]]] = collections.deque()
        self._delivered: list[FileReader] = []
        self._pending: list[bytes] | None = None  # a batch the channel refused, to re-send
        self._dir_problem: str | None = None  # the last logged directory problem
        self._watcher: DirectoryWatcher | None = None
        self._inbox = ChangeInbox()  # paths the watcher saw change since the last pick
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self._refusals = Throttle(REFUSAL_REPORT_S)
        # what the sinks of a full channel are doing, and whether they fail (the Agent knows)
        self._drain_state = drain_state or (lambda channel: ("its sinks are slower", False))

    @classmethod
    def from_spec(cls, spec: SourceSpec, ctx: BuildContext) -> SpoolDirSource:
        settings = SpoolDirSettings.from_settings(spec.settings)
        counters = ctx.metrics.source(spec.name).counters
        return cls(spec.name, settings, clock=ctx.clock, counters=counters,
                   drain_state=lambda channel: ctx.drain_state(channel))

    def backoff_policy(self, default: BackoffPolicy) -> BackoffPolicy:
        """Idle: rescan every ``pollDelay``; refused batch: 250 ms doubling to ``maxBackoff``."""
        s = self.settings
        return BackoffPolicy(step=s.poll_delay, maximum=s.poll_delay, error=default.error,
                             retry=FIRST_RETRY, retry_maximum=s.max_backoff)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.to_thread(watcher.stop)
        current, self._current = self._current, None
        delivered, self._delivered = self._delivered, []
        for reader, _ in self._ahead:  # nothing of these was delivered: read again next time
            reader.close()
        self._ahead.clear()
        if current is not None and current.finished and self._pending is None:
            delivered.append(current)  # fully delivered: retire it now, or a restart would
            current = None  # read it again
        if delivered:
            step = await asyncio.to_thread(self.spool.finish_all, delivered)
            self._count(step.counts)
        if current is not None:
            if not current.tracked and self._pending is None and current.mark > current.start:
                # its first batch was delivered: record that, or a restart repeats it
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(self.spool.track, current)
            current.close()
        self._pending = None
        self.spool.close()

    # -- the work ------------------------------------------------------------------------
    async def process(self) -> Status:
        """Move at most one batch into the channel; READY means call again at once."""
        if self._stopped:
            return Status.BACKOFF
        if self._pending is not None:
            return await self._deliver(self._pending)
        current = self._current
        if current is not None and not current.finished:
            n = self.settings.batch_size
            failure: FileFailure | None = None
            if current.tracked and current.buffered(n) and not self._delivered:
                try:
                    bodies = current.read_batch(n)  # decoded already: no I/O, no thread hop
                except FileFailure as failed:
                    failure = failed
            else:
                delivered, self._delivered = self._delivered, []
                bodies, counts, failure = await asyncio.to_thread(
                    self._retire_then_read, delivered, current, n)
                self._count(counts)
            if failure is not None:
                return await self._advance(failure)
            if bodies:
                return await self._deliver(bodies)
        if current is not None and current.finished and self._ahead:
            self._delivered.append(current)  # read whole and delivered: the next was read
            self._current, bodies = self._ahead.popleft()  # ahead, no thread hop
            return await self._deliver(bodies)
        return await self._advance()

    def _retire_then_read(self, delivered: list[FileReader], current: FileReader, n: int,
                          ) -> tuple[list[bytes], Counter[str], FileFailure | None]:
        """(In a worker thread: one hop.) Retire ``delivered``, then read ``current``'s next
        batch."""
        counts = self.spool.finish_all(delivered).counts
        try:
            return self.spool.read_more(current, n), counts, None
        except FileFailure as failure:
            return [], counts, failure

    def _count(self, counts: Counter[str]) -> None:
        for counter, count in counts.items():
            self.counters[counter] += count

    async def _advance(self, failure: FileFailure | None = None) -> Status:
        """Finish the current file (retire it, or set it aside for ``failure``) and deliver
        the first batch of the next: one thread hop per file."""
        finishing, self._current = self._current, None
        delivered, self._delivered = self._delivered, []
        changed, rescan = self._inbox.take()
        step = await asyncio.to_thread(self.spool.advance, finishing, failure, changed, rescan,
                                       self.settings.batch_size, delivered)
        self._count(step.counts)
        if step.problem is not None:
            self._report_dir_problem(step.problem)
            return Status.BACKOFF
        if self._dir_problem is not None:
            log.info("source %s: spool directory %s is usable now", self.name, self.spool_dir)
            self._dir_problem = None
        if self._watch and self._watcher is None and await self._start_watcher():
            self._inbox.add(None)  # one more full scan: files that landed before it watched
            self.wakeup()
        self._current = step.reader
        self._ahead.extend(step.ahead)
        if step.reader is None:
            return Status.BACKOFF
        return await self._deliver(step.bodies) if step.bodies else Status.READY

    async def _deliver(self, bodies: list[bytes]) -> Status:
        current = self._current
        events = events_with(current.headers if current is not None else {}, bodies)
        counters = self.counters
        counters["EventReceivedCount"] += len(events)
        counters["AppendBatchReceivedCount"] += 1
        try:
            with fsync_later():  # one fsync for this and whatever else commits meanwhile
                self.channel_processor.process_event_batch(events)
            await self.channel_processor.synced()  # durable before the position moves
        except Exception as exc:
            is_channel = isinstance(exc, ChannelException)
            counters["ChannelWriteFail" if is_channel else "GenericProcessingFail"] += 1
            self._pending = bodies
            self._report_refusal(exc, len(events), shown(current.abs_path) if current else "?")
            return Status.RETRY
        self._pending = None
        if current is not None:
            current.commit(len(events))
        if current is not None and current.tracked:
            try:
                self.spool.tracker.commit(current.mark)  # a few-byte append: kept inline
            except OSError as exc:
                log.error("source %s: cannot record position in %s: %s",
                          self.name, self.spool.tracker.path, exc)
        counters["EventAcceptedCount"] += len(events)
        counters["AppendBatchAcceptedCount"] += 1
        return Status.READY

    def _report_refusal(self, exc: Exception, count: int, where: str) -> None:
        """A refused batch, said at most every REFUSAL_REPORT_S: a full channel names what
        its sinks are doing (INFO while they deliver: that is back-pressure working; WARNING
        when they fail); any other refusal says what the channel said."""
        held = self._refusals.due(self.clock.monotonic())
        if held is None:
            return
        more = f" ({held} more refusal(s) since the last such line)" if held else ""
        retry = f"retrying within {self.settings.max_backoff:g} s"
        if isinstance(exc, ChannelFullException) and exc.channel is not None:
            state, failing = self._drain_state(exc.channel)
            log.log(logging.WARNING if failing else logging.INFO,
                    "source %s: channel %s is full: %s; reading %s waits, %s%s", self.name,
                    exc.channel, state, where, retry, more)
            return
        log.warning("source %s: channel refused %d events from %s (%s); %s%s", self.name, count,
                    where, exc if isinstance(exc, ChannelException) else repr(exc), retry, more)

    # -- directory trouble and wake-ups --------------------------------------------------
    def _report_dir_problem(self, problem: str) -> None:
        if problem != self._dir_problem:
            log.warning("source %s: %s; retrying every %.0f ms", self.name, problem,
                        self.settings.poll_delay * 1000)
            self._dir_problem = problem

    async def _start_watcher(self) -> bool:
        watcher = DirectoryWatcher(
            self.spool_dir, self._on_fs_change_threadsafe, recursive=self.settings.recursive,
            ignore_under=os.path.abspath(self.spool.tracker_dir),
            poll_interval=self.settings.poll_delay,
        )
        try:
            await asyncio.to_thread(watcher.start)
        except OSError as exc:
            log.warning("source %s: cannot watch %s (%s); polling every %.0f ms", self.name,
                        self.spool_dir, exc, self.settings.poll_delay * 1000)
            return False
        self._watcher = watcher
        return True

    def _on_fs_change_threadsafe(self, rel_path: str | None) -> None:
        """From the watcher's thread: note the path; wake the runner when news arrive."""
        if not self._inbox.add(rel_path):
            return  # not the first news since the source last looked: it is awake already
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self._on_fs_change)

    def _on_fs_change(self) -> None:
        self.wakeup()
