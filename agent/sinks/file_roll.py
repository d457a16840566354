"""The file_roll sink: event bodies appended to files in a directory, rolled on a timer.

File names follow Flume's DefaultPathManager: ``<prefix><startMillis>-<n>[.<extension>]`` where
``startMillis`` is the sink's start time (fixed for its life) and ``n`` counts files from 1.
Every ``sink.rollInterval`` seconds (0 = never) the current file is closed and the next one
opened; like Flume, a file is opened at the first ``process()`` after a roll even when no
event arrives, so idle intervals leave empty files.

Writes run in a worker thread (``asyncio.to_thread``); the channel transaction commits only
after the batch has been written and flushed, so a crash loses nothing that was acknowledged
by the channel (at-least-once: a failed write rolls back and the batch is written again).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING

from agent.components import Clock, Sink, Status, SystemClock
from agent.config.converters import choice, integer, to_bool
from agent.config.schema import Key, Schema
from agent.metrics import CounterGroup
from agent.sinks import drain_batch
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext


class PathManager:
    """Flume's DefaultPathManager naming, pure."""

    def __init__(self, directory: Path, start_millis: int, prefix: str = "", extension: str = ""):
        self.directory = directory
        self.start_millis = start_millis
        self.prefix = prefix
        self.extension = extension
        self.index = 0

    def next_path(self) -> Path:
        self.index += 1
        name = f"{self.prefix}{self.start_millis}-{self.index}"
        if self.extension:
            name += "." + self.extension
        return self.directory / name


class RollingFileSink(Sink):
    SCHEMA = Schema(
        keys=(
            Key("sink.directory", required=True),
            Key("sink.rollInterval", integer(0, bits=64), 30),
            Key(
                "sink.serializer",
                choice(
                    "TEXT",
                    upper=True,
                    aliases={"org.apache.flume.serialization.BodyTextEventSerializer$Builder":
                             "TEXT"},
                    unavailable=("HEADER_AND_TEXT", "AVRO_EVENT"),
                ),
                "TEXT",
                ignored="TEXT is the only serializer",
            ),
            Key("sink.serializer.appendNewline", to_bool, True),
            Key("sink.batchSize", integer(1), 100),
            Key("sink.pathManager", choice("DEFAULT", upper=True), "DEFAULT",
                ignored="DEFAULT is the only path manager"),
            Key("sink.pathManager.prefix", default=""),
            Key("sink.pathManager.extension", default=""),
        ),
        batch_key="sink.batchSize",
    )

    def __init__(
        self,
        name: str,
        directory: str | os.PathLike[str],
        *,
        roll_interval: float = 30,
        batch_size: int = 100,
        append_newline: bool = True,
        prefix: str = "",
        extension: str = "",
        clock: Clock | None = None,
        counter: CounterGroup | None = None,
    ) -> None:
        super().__init__(name)
        if batch_size <= 0:
            raise ValueError(f"sink {name}: sink.batchSize must be > 0, got {batch_size}")
        if roll_interval < 0:
            raise ValueError(f"sink {name}: sink.rollInterval must be >= 0, got {roll_interval}")
        self.directory = Path(directory)
        self.roll_interval = roll_interval
        self.batch_size = batch_size
        self.append_newline = append_newline
        self.prefix = prefix
        self.extension = extension
        self.clock: Clock = clock or SystemClock()
        self.counter = counter if counter is not None else CounterGroup("SINK", name)
        self.paths: PathManager | None = None
        self.current_path: Path | None = None
        self._file: IO[bytes] | None = None
        self._next_roll: float | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> RollingFileSink:
        s = spec.settings
        return cls(
            spec.name,
            s["sink.directory"],
            roll_interval=s["sink.rollInterval"],
            batch_size=s["sink.batchSize"],
            append_newline=s["sink.serializer.appendNewline"],
            prefix=s["sink.pathManager.prefix"],
            extension=s["sink.pathManager.extension"],
            clock=ctx.clock,
            counter=ctx.metrics.sink(spec.name),
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        self.paths = PathManager(
            self.directory, int(self.clock.time() * 1000), self.prefix, self.extension
        )
        if self.roll_interval > 0:
            self._next_roll = self.clock.monotonic() + self.roll_interval

    async def stop(self) -> None:
        await self._close_file()

    async def _close_file(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            await asyncio.to_thread(handle.close)
            self.counter.counters["ConnectionClosedCount"] += 1

    async def _roll_if_due(self) -> None:
        if self._next_roll is None:
            return
        now = self.clock.monotonic()
        if now < self._next_roll:
            return
        while self._next_roll <= now:
            self._next_roll += self.roll_interval
        if self._file is not None:
            await self._close_file()
            self.current_path = None

    async def _ensure_open(self) -> IO[bytes]:
        if self._file is None:
            if self.paths is None:
                raise RuntimeError(f"sink {self.name}: process() called before start()")
            path = self.paths.next_path() if self.current_path is None else self.current_path
            try:
                self._file = await asyncio.to_thread(open, path, "ab")
            except OSError:
                self.counter.counters["ConnectionFailedCount"] += 1
                raise
            self.current_path = path
            self.counter.counters["ConnectionCreatedCount"] += 1
        return self._file

    def _encode(self, bodies: list[bytes]) -> bytes:
        if self.append_newline:
            return b"".join(body + b"\n" for body in bodies)
        return b"".join(bodies)

    async def process(self) -> Status:
        await self._roll_if_due()
        handle = await self._ensure_open()

        async def write(batch: list[Event]) -> None:
            data = self._encode([event.body for event in batch])
            try:
                await asyncio.to_thread(_write_and_flush, handle, data)
            except BaseException:
                self.counter.counters["EventWriteFail"] += 1
                raise

        return await drain_batch(self.channel, self.counter, self.batch_size, write)


def _write_and_flush(handle: IO[bytes], data: bytes) -> None:
    handle.write(data)
    handle.flush()
