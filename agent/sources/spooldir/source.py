"""The spooling-directory source: read complete files dropped into a directory, line by line.

Flume's SpoolDirectorySource semantics (reference §5.1), with one deliberate difference:
Flume stops dead (its scan task dies until a restart) on any surprise: a file modified or
truncated after reading began, a reused name, undecodable bytes under decodeErrorPolicy=FAIL.
Here such a file is moved aside to ``<trackerDir>/failed/<relative path>`` next to a
``<name>.reason`` text file saying what happened; the events already committed stay
delivered and every other file keeps flowing. A missing spool directory is waited for (logged
once), an unwritable one is logged and re-checked at every poll.

Layers: pure ``deserializers`` (bytes -> bodies with byte marks), ``selection`` (which file
next) and ``decisions`` (what a stat result means, what to say); blocking ``spool`` (the
directory: list, open, retire, set aside), ``reader`` (one file, a batch per call) and
``tracker`` (durable position), all run through ``asyncio.to_thread``; ``watcher``
(watchdog wake-ups). This module only sequences them on the event loop. It never sleeps and
keeps no timers: ``process()`` answers READY, BACKOFF (nothing to read: the runner waits
``pollDelay`` or until the watcher wakes it) or RETRY (the channel refused a batch: the
runner waits 250 ms, doubling up to ``maxBackoff``, see ``backoff_policy``).

Delivery: a batch (at most ``batchSize`` events, never spanning two files) is handed to the
channel processor on the event loop; its end offset is written to the position file only
after the channel committed. After a crash, reading resumes from the last committed offset,
so at most one batch is repeated and nothing is skipped. A refused batch is kept in memory
and sent again on the next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from typing import TYPE_CHECKING, Any

from agent.components import (
    BackoffPolicy,
    ChannelException,
    Clock,
    PollableSource,
    Status,
    SystemClock,
)
from agent.sources.spooldir import spool
from agent.sources.spooldir.decisions import FileFailure, shown
from agent.sources.spooldir.reader import BLOCK_SIZE, FileReader
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.watcher import DirectoryWatcher
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import SourceSpec

log = logging.getLogger(__name__)

FIRST_RETRY = 0.25  # seconds before re-sending a refused batch (Flume's 250 ms), then doubling
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
        self.settings = settings
        self.clock = clock or SystemClock()
        self.counters = counters if counters is not None else {}
        for key in COUNTER_KEYS:
            self.counters.setdefault(key, 0)
        self.spool = spool.SpoolDirectory(name, settings, rng=rng, block_size=block_size)
        self.spool_dir = settings.spool_dir
        self._watch = watch
        self._current: FileReader | None = None
        self._pending: list[bytes] | None = None  # a batch the channel refused, to re-send
        self._dir_problem: str | None = None  # the last logged directory problem
        self._watcher: DirectoryWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    @classmethod
    def from_spec(cls, spec: SourceSpec, ctx: Any) -> SpoolDirSource:
        settings = SpoolDirSettings.from_mapping(spec.settings)
        metrics: Any = getattr(ctx, "metrics", None)
        counters = metrics.source(spec.name).counters if hasattr(metrics, "source") else None
        return cls(spec.name, settings, clock=getattr(ctx, "clock", None), counters=counters)

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
        if current is not None:
            current.close()
        self._pending = None
        self.spool.close()

    # -- the work ------------------------------------------------------------------------
    async def process(self) -> Status:
        """Move at most one batch into the channel; READY means call again at once."""
        if self._stopped:
            return Status.BACKOFF
        if self._pending is not None:
            return self._deliver(self._pending)
        if self._current is None:
            status = await self._open_next()
            if status is not None:
                return status
        current = self._current
        assert current is not None
        try:
            bodies = await asyncio.to_thread(current.read_batch, self.settings.batch_size)
        except FileFailure as failure:
            self._current = None
            current.close()
            await self._set_aside(failure)
            return Status.READY
        if not bodies:
            await self._finish_current()
            return Status.READY
        return self._deliver(bodies)

    async def _open_next(self) -> Status | None:
        """None: a file is open now; else the status to answer."""
        try:
            opened = await asyncio.to_thread(self.spool.open_next)
        except FileFailure as failure:
            await self._set_aside(failure)
            return Status.READY  # go on with the next file at once
        except FileNotFoundError:
            self._report_dir_problem(f"spool directory {self.spool_dir} does not exist yet")
            return Status.BACKOFF
        except spool.DirectoryProblem as exc:
            self._report_dir_problem(str(exc))
            return Status.BACKOFF
        except OSError as exc:
            self._report_dir_problem(f"cannot scan {self.spool_dir}: {exc}")
            return Status.BACKOFF
        if self._dir_problem is not None:
            log.info("source %s: spool directory %s is usable now", self.name, self.spool_dir)
            self._dir_problem = None
        if self._watch and self._watcher is None:
            await self._start_watcher()
        if opened is None:
            return Status.BACKOFF
        self._current = opened
        return None

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
            self._pending = bodies
            log.warning(
                "source %s: channel refused %d events from %s (%s); retrying with a back-off "
                "of up to %.0f ms", self.name, len(events),
                shown(current.abs_path) if current else "?",
                exc if is_channel else repr(exc), self.settings.max_backoff * 1000,
            )
            return Status.RETRY
        self._pending = None
        if current is not None:
            try:
                self.spool.tracker.commit(current.mark)  # a few-byte append: kept inline
            except OSError as exc:
                log.error("source %s: cannot record position in %s: %s",
                          self.name, self.spool.tracker.path, exc)
        counters["EventAcceptedCount"] += len(events)
        counters["AppendBatchAcceptedCount"] += 1
        return Status.READY

    async def _finish_current(self) -> None:
        current = self._current
        assert current is not None
        self._current = None
        try:
            done = await asyncio.to_thread(self.spool.retire, current)
        except FileFailure as failure:
            await self._set_aside(failure)
            return
        except FileNotFoundError:
            log.warning("source %s: %s vanished before it could be retired; its events "
                        "were delivered", self.name, shown(current.abs_path))
            return
        log.info("source %s: finished %s (%s)", self.name, shown(current.abs_path), shown(done))

    async def _set_aside(self, failure: FileFailure) -> None:
        self.counters[failure.counter] += 1
        target = await asyncio.to_thread(self.spool.set_aside, failure, self.clock.time)
        if target is not None:
            log.error("source %s: problem with %s: %s; moved it to %s (see %s%s)", self.name,
                      shown(os.path.join(self.spool_dir, failure.rel_path)), failure.reason,
                      shown(target), shown(target), spool.REASON_SUFFIX)

    # -- directory trouble and wake-ups --------------------------------------------------
    def _report_dir_problem(self, problem: str) -> None:
        if problem != self._dir_problem:
            log.warning("source %s: %s; retrying every %.0f ms", self.name, problem,
                        self.settings.poll_delay * 1000)
            self._dir_problem = problem

    async def _start_watcher(self) -> None:
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
            return
        self._watcher = watcher

    def _on_fs_change_threadsafe(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(self._on_fs_change)

    def _on_fs_change(self) -> None:
        self.wakeup()
