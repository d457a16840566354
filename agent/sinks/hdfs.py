"""The hdfs sink: Flume's HDFS sink semantics on any filesystem fsspec opens (plain paths,
``file://``; ``hdfs://`` through fsspec's pyarrow driver where Hadoop's client is installed).

Each batch is taken in one channel transaction, written to its buckets' files and flushed
before the commit: an event counts as delivered only once its bytes were written and flushed
(at-least-once: a failed batch is rolled back and written again). Names, roll rules and
escapes are Flume's (``hdfs_bucket``, ``hdfs_path``); formats are ``DataStream``,
``CompressedStream`` (gzip, bzip2, deflate) and ``SequenceFile`` (uncompressed, Writable or
Text values), see ``hdfs_format``.

Files open for writing are listed in a small journal (``hdfs.inUseJournal``, by default
``~/.flume/hdfs-inuse-<sink>.json``); at start, files a crash left in use are cut back to
their last complete flush and renamed to their final names, which Flume leaves to the user.
``hdfs.closeTries``/``hdfs.retryInterval`` govern renames that fail; Kerberos keys, thread
pool sizes and ``minBlockReplicas`` are accepted for compatibility and unused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import posixpath
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar

import fsspec

from agent.components import Clock, Sink, Status, SystemClock
from agent.config.converters import choice, integer, to_bool
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext, Schema
from agent.hostinfo import local_host
from agent.metrics import CounterGroup
from agent.sinks import count_batch, rollback_quietly, take_batch
from agent.sinks.hdfs_bucket import FileNames, FileState
from agent.sinks.hdfs_format import SequenceFileEncoder, Serializer, serializer, valid_length
from agent.sinks.hdfs_path import BucketTemplate, HostNames, TimeSource
from agent.sinks.hdfs_settings import HdfsSettings, settings_from
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)
T = TypeVar("T")

class CallTimeout(OSError):
    """A filesystem call took longer than ``hdfs.callTimeout``."""


@dataclass
class _Bucket:
    """One rendered path + prefix: the file open in it and the events not yet written."""

    key: str
    names: FileNames
    counter: int
    fs: Any = None
    handle: IO[bytes] | None = None
    in_use: str = ""
    final: str = ""
    state: FileState | None = None
    pending: list[Event] = field(default_factory=list)
    encoder: SequenceFileEncoder | None = None


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    try:
        settings_from("sink", settings)
    except ValueError as exc:
        return [Problem(IssueCode.BAD_VALUE, str(exc))]
    return []


_LONG = integer(bits=64)
_HDFS_CLIENT = "Hadoop's own client configuration applies to hdfs:// through fsspec/pyarrow"


class HdfsSink(Sink):
    SCHEMA = Schema(
        keys=(
            Key("hdfs.path", required=True),
            Key("hdfs.filePrefix", default="FlumeData"),
            Key("hdfs.fileSuffix", default=""),
            Key("hdfs.inUsePrefix", default=""),
            Key("hdfs.inUseSuffix", default=".tmp"),
            Key("hdfs.emptyInUseSuffix", to_bool, False),
            Key("hdfs.rollInterval", _LONG, 30),
            Key("hdfs.rollSize", _LONG, 1024),
            Key("hdfs.rollCount", _LONG, 10),
            Key("hdfs.idleTimeout", integer(), 0),
            Key("hdfs.batchSize", integer(1, bits=64), 100),
            Key("hdfs.codeC"),
            Key("hdfs.fileType", choice("SequenceFile", "DataStream", "CompressedStream"),
                "SequenceFile"),
            Key("hdfs.maxOpenFiles", integer(1), 5000),
            Key("hdfs.minBlockReplicas", integer(), None, ignored=_HDFS_CLIENT),
            Key("hdfs.writeFormat", choice("Writable", "Text"), "Writable"),
            Key("hdfs.threadsPoolSize", integer(1), 10, ignored="one asyncio loop"),
            Key("hdfs.rollTimerPoolSize", integer(1), 1, ignored="one asyncio loop"),
            Key("hdfs.kerberosPrincipal", ignored=_HDFS_CLIENT),
            Key("hdfs.kerberosKeytab", ignored=_HDFS_CLIENT),
            Key("hdfs.proxyUser", ignored=_HDFS_CLIENT),
            Key("hdfs.round", to_bool, False),
            Key("hdfs.roundValue", integer(), 1),
            Key("hdfs.roundUnit", default="second"),
            Key("hdfs.timeZone"),
            Key("hdfs.useLocalTimeStamp", to_bool, False),
            Key("hdfs.closeTries", integer(), 0),
            Key("hdfs.retryInterval", _LONG, 180),
            Key("hdfs.callTimeout", _LONG, 30_000),
            Key("hdfs.useRawLocalFileSystem", to_bool, False, ignored="fsspec writes local "
                "files directly"),
            Key("hdfs.inUseJournal"),  # flumelet: where files open for writing are listed
            Key("serializer", default="TEXT"),
            Key("serializer.appendNewline", to_bool, True),
        ),
        rules=_rules,
        batch_key="hdfs.batchSize",
    )

    def __init__(self, name: str, settings: HdfsSettings, *, clock: Clock | None = None,
                 hosts: HostNames | None = None, counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        self.settings = settings
        self.clock = clock or SystemClock()
        self.counter = counter if counter is not None else CounterGroup("SINK", name)
        hosts = hosts or HostNames()
        self.path_template = BucketTemplate(settings.path, hosts)
        self.prefix_template = BucketTemplate(settings.file_prefix, hosts)
        self.times = TimeSource(settings.zone, settings.rounding, settings.use_local_time)
        templates = (self.path_template, self.prefix_template)
        self.uniform = not any(t.header_names for t in templates) and (
            settings.use_local_time or not any(t.uses_time for t in templates))
        self.serialize: Serializer = serializer(settings.serializer, settings.append_newline)
        if settings.file_type == "SequenceFile":
            SequenceFileEncoder(settings.write_format)  # validates writeFormat now
        self.recovery_kind = self._recovery_kind()
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._journal: dict[str, dict[str, str]] = {}
        self._lock = asyncio.Lock()
        self._roller: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._warned_timestamp = 0

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> HdfsSink:
        settings = settings_from(spec.name, spec.settings)
        hosts = HostNames(local_host(False).split(".")[0], local_host(True), local_host(False))
        return cls(spec.name, settings, clock=ctx.clock, hosts=hosts,
                   counter=ctx.metrics.sink(spec.name))

    def _recovery_kind(self) -> str:
        s = self.settings
        if s.file_type == "SequenceFile":
            return "sequence"
        if s.codec is not None:
            return s.codec.kind
        return "text" if s.append_newline else "raw"

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        await asyncio.to_thread(self._recover)
        if self._roller is None:
            self._roller = asyncio.create_task(self._roll_timer(), name=f"hdfs-roll:{self.name}")

    async def stop(self) -> None:
        self._stopping.set()
        roller, self._roller = self._roller, None
        if roller is not None:
            roller.cancel()
            await asyncio.gather(roller, return_exceptions=True)
        async with self._lock:
            for bucket in list(self.buckets.values()):
                try:
                    await self._close(bucket)
                except OSError as exc:
                    log.warning("sink %s: closing %s failed: %s", self.name, bucket.in_use, exc)
            self.buckets.clear()

    async def _roll_timer(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)
            try:
                await self.roll_due()
            except Exception:
                log.exception("sink %s: timed roll failed", self.name)

    async def roll_due(self) -> None:
        """Close files due by ``rollInterval`` or ``idleTimeout``; retry failed renames."""
        async with self._lock:
            now = self.clock.monotonic()
            for bucket in list(self.buckets.values()):
                if bucket.state is not None and bucket.state.expired(self.settings.roll, now):
                    try:
                        await self._close(bucket)
                    finally:
                        self.buckets.pop(bucket.key, None)
            if self._journal and not self._stopping.is_set():
                await self._retry_renames()

    # --- the batch -------------------------------------------------------------------------

    async def process(self) -> Status:
        async with self._lock:
            return await self._process()

    async def _process(self) -> Status:
        settings = self.settings
        tx = self.channel.transaction()
        tx.begin()
        touched: dict[str, _Bucket] = {}
        try:
            batch = take_batch(tx, settings.batch_size)
            count_batch(self.counter, len(batch), settings.batch_size)
            if batch:
                self.times.now_ms = int(self.clock.time() * 1000)
                now = self.clock.monotonic()
                for bucket, run in self._runs(batch):
                    while len(self.buckets) > settings.max_open_files:
                        _, eldest = self.buckets.popitem(last=False)
                        await self._close(eldest)
                    touched[bucket.key] = bucket
                    await self._add(bucket, run, now)
                for bucket in touched.values():
                    await self._flush(bucket)
                self._report_timestamps()
            tx.commit()
        except (OSError, TimeoutError) as exc:
            rollback_quietly(tx)
            self.counter.counters["EventWriteFail"] += 1
            log.warning("sink %s: write failed, batch rolled back: %s", self.name, exc)
            for bucket in touched.values():
                bucket.pending.clear()
                await self._abandon(bucket)
            return Status.RETRY
        except BaseException:
            rollback_quietly(tx)
            for bucket in touched.values():
                bucket.pending.clear()
            raise
        finally:
            tx.close()
        self.counter.counters["EventDrainSuccessCount"] += len(batch)
        return Status.READY if batch else Status.BACKOFF

    def _runs(self, batch: list[Event]) -> list[tuple[_Bucket, list[Event]]]:
        """The batch cut into runs of consecutive events with the same bucket; one run when
        no template depends on an event (static paths, or only the local time)."""
        if self.uniform:
            return [(self._bucket_for(batch[0]), batch)]
        runs: list[tuple[_Bucket, list[Event]]] = []
        for event in batch:
            bucket = self._bucket_for(event)
            if runs and runs[-1][0] is bucket:
                runs[-1][1].append(event)
            else:
                runs.append((bucket, [event]))
        return runs

    async def _add(self, bucket: _Bucket, events: list[Event], now: float) -> None:
        """Queue ``events`` on the bucket's file, rolling it whenever Flume's rule says so
        before an event (``rollCount`` events or ``rollSize`` body bytes reached)."""
        roll = self.settings.roll
        done = 0
        while done < len(events):
            state = bucket.state
            if bucket.handle is None or state is None:
                await self._open(bucket, now)
            elif state.full(roll):
                await self._close(bucket)
                await self._open(bucket, now)
            state = bucket.state
            assert state is not None
            take = len(events) - done
            if roll.count > 0:
                take = min(take, roll.count - state.events)
            chunk = events[done:done + take]
            sizes = list(map(len, (e.body for e in chunk)))
            if roll.size > 0:  # the file is full once its bytes reach rollSize
                total, cut = state.bytes, 0
                for size in sizes:
                    cut += 1
                    total += size
                    if total >= roll.size:
                        break
                chunk, sizes = chunk[:cut], sizes[:cut]
            bucket.pending.extend(chunk)
            state.events += len(chunk)
            state.bytes += sum(sizes)
            state.last_write = now
            done += len(chunk)

    def _bucket_for(self, event: Event) -> _Bucket:
        """The event's bucket, most recently used last (the caller closes the eldest
        beyond ``maxOpenFiles``)."""
        headers = event.header_map
        directory = self.path_template.render(headers, self.times)
        prefix = self.prefix_template.render(headers, self.times)
        key = f"{directory}/{prefix}"
        bucket = self.buckets.get(key)
        if bucket is not None:
            self.buckets.move_to_end(key)
            return bucket
        s = self.settings
        names = FileNames(directory, prefix, s.file_suffix, s.in_use_prefix, s.in_use_suffix,
                          s.codec.extension if s.codec else "")
        bucket = self.buckets[key] = _Bucket(key, names, int(self.clock.time() * 1000))
        return bucket

    def _report_timestamps(self) -> None:
        missing = self.times.missing_timestamp
        if missing > self._warned_timestamp:
            log.warning("sink %s: %d event(s) so far had no numeric 'timestamp' header; their "
                        "path uses the local time (add a timestamp interceptor or set "
                        "hdfs.useLocalTimeStamp = true)", self.name, missing)
            self._warned_timestamp = missing * 2  # warn again when it has doubled

    # --- files -----------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args),
                                          self.settings.call_timeout or None)
        except TimeoutError:
            self.counter.counters["ConnectionFailedCount"] += 1
            raise CallTimeout(f"{getattr(fn, '__name__', 'call')} timed out after "
                              f"{self.settings.call_timeout:g} s") from None

    async def _open(self, bucket: _Bucket, now: float) -> None:
        bucket.counter += 1
        in_use, final = bucket.names.paths(bucket.counter)
        try:
            if bucket.fs is None:
                bucket.fs, _ = fsspec.core.url_to_fs(bucket.names.directory or "/")
            fs = bucket.fs
            await self._call(self._journal_add, in_use, final)
            header = b""
            if self.settings.file_type == "SequenceFile":
                bucket.encoder = SequenceFileEncoder(self.settings.write_format)
                header = bucket.encoder.header()
            bucket.handle = await self._call(_create, fs, in_use, header)
        except BaseException:
            self.counter.counters["ConnectionFailedCount"] += 1
            raise
        bucket.in_use, bucket.final = in_use, final
        bucket.state = FileState(now, now)
        self.counter.counters["ConnectionCreatedCount"] += 1
        log.info("sink %s: creating %s", self.name, in_use)

    def _encode(self, bucket: _Bucket) -> bytes:
        events, bucket.pending = bucket.pending, []
        if not events:
            return b""
        if bucket.encoder is not None:
            return bucket.encoder.records(events, self.times.now_ms)
        serialize = self.serialize
        data = b"".join([serialize(e) for e in events])
        if self.settings.codec is not None and data:
            data = self.settings.codec.compress(data)
        return data

    async def _flush(self, bucket: _Bucket) -> None:
        data = self._encode(bucket)
        if data and bucket.handle is not None:
            await self._call(_write_flush, bucket.handle, data)

    async def _close(self, bucket: _Bucket) -> None:
        """Write what is pending, close, rename to the final name."""
        handle = bucket.handle
        if handle is None:
            return
        try:
            await self._flush(bucket)
        finally:
            bucket.handle = None
            bucket.state = None
            await self._call(handle.close)
        self.counter.counters["ConnectionClosedCount"] += 1
        await self._rename(bucket.in_use)

    async def _abandon(self, bucket: _Bucket) -> None:
        """After a failed write: close the file as it is (it is renamed once the journal's
        recovery has cut it back to its last complete flush, at the next start)."""
        handle, bucket.handle, bucket.state = bucket.handle, None, None
        if handle is not None:
            with contextlib.suppress(Exception):
                await self._call(handle.close)
            with contextlib.suppress(Exception):
                await self._call(self._repair_and_rename, bucket.in_use)

    async def _rename(self, in_use: str) -> None:
        try:
            await self._call(self._finish, in_use)
        except OSError as exc:
            self.counter.counters["ConnectionFailedCount"] += 1
            log.warning("sink %s: renaming %s failed (%s); retrying in %g s", self.name,
                        in_use, exc, self.settings.retry_interval)

    async def _retry_renames(self) -> None:
        open_files = {b.in_use for b in self.buckets.values() if b.handle is not None}
        for in_use, entry in list(self._journal.items()):
            if in_use in open_files:
                continue
            tries = int(entry.get("tries", "0")) + 1
            limit = self.settings.close_tries
            if limit > 0 and tries > limit:
                log.warning("sink %s: gave up renaming %s after %d tries", self.name, in_use,
                            limit)
                await self._call(self._journal_remove, in_use)
                continue
            entry["tries"] = str(tries)
            with contextlib.suppress(OSError):
                await self._call(self._repair_and_rename, in_use)

    # --- blocking helpers (worker threads) -------------------------------------------------

    def _finish(self, in_use: str) -> None:
        """Rename ``in_use`` to its final name and forget it."""
        entry = self._journal.get(in_use)
        if entry is None:
            return
        fs, _ = fsspec.core.url_to_fs(in_use)
        if in_use != entry["target"] and fs.exists(in_use):
            fs.mv(in_use, _free_name(fs, entry["target"]))
            log.info("sink %s: renamed %s to %s", self.name, in_use, entry["target"])
        self._journal_remove(in_use)

    def _repair_and_rename(self, in_use: str) -> None:
        """A file left in use by a crash or a failed write: keep its complete part, rename."""
        entry = self._journal.get(in_use)
        if entry is None:
            return
        fs, _ = fsspec.core.url_to_fs(in_use)
        if not fs.exists(in_use):
            self._journal_remove(in_use)
            return
        with fs.open(in_use, "rb") as f:
            data = f.read()
        good = valid_length(data, entry.get("kind", self.recovery_kind))
        target = _free_name(fs, entry["target"])
        if good == len(data):
            if in_use != target:
                fs.mv(in_use, target)
        else:
            log.warning("sink %s: %s ends with %d byte(s) of an unfinished write; keeping the "
                        "first %d", self.name, in_use, len(data) - good, good)
            if good:
                with fs.open(target, "wb") as out:
                    out.write(data[:good])
            fs.rm(in_use)
        log.info("sink %s: recovered %s as %s", self.name, in_use, target)
        self._journal_remove(in_use)

    def _recover(self) -> None:
        self._journal = self._load_journal()
        for in_use in list(self._journal):
            try:
                self._repair_and_rename(in_use)
            except OSError as exc:
                log.error("sink %s: cannot recover %s: %s", self.name, in_use, exc)

    def _load_journal(self) -> dict[str, dict[str, str]]:
        path = self.settings.journal
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            aside = path + ".broken"
            os.replace(path, aside)
            log.error("sink %s: journal %s unreadable (%s); moved to %s", self.name, path, exc,
                      aside)
            return {}
        return {e["inUse"]: e for e in data if isinstance(e, dict) and "inUse" in e
                and "target" in e}

    def _journal_add(self, in_use: str, target: str) -> None:
        self._journal[in_use] = {"inUse": in_use, "target": target, "kind": self.recovery_kind}
        self._save_journal()

    def _journal_remove(self, in_use: str) -> None:
        if self._journal.pop(in_use, None) is not None:
            self._save_journal()

    def _save_journal(self) -> None:
        path = self.settings.journal
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(list(self._journal.values()), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _create(fs: Any, path: str, header: bytes) -> IO[bytes]:
    fs.makedirs(posixpath.dirname(path) or "/", exist_ok=True)
    handle: IO[bytes] = fs.open(path, "wb")
    if header:
        handle.write(header)
        handle.flush()
    return handle


def _write_flush(handle: IO[bytes], data: bytes) -> None:
    handle.write(data)
    handle.flush()


def _free_name(fs: Any, target: str) -> str:
    """``target``, or ``target.1``, ``target.2``... if a file already has that name."""
    name, n = target, 0
    while fs.exists(name):
        n += 1
        name = f"{target}.{n}"
    return name


__all__ = ["CallTimeout", "HdfsSink"]
