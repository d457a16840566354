"""Shared helpers for the spooldir tests: a fake channel processor and a driver."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.components import ChannelFullException, ManualClock, Status
from agent.sources.spooldir import SpoolDirSource
from agent.sources.spooldir.settings import SpoolDirSettings
from protocol.event import Event


class FakeProcessor:
    """Records accepted batches; ``refuse`` makes the next N batches fail as a full channel."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.refuse = 0
        self.attempts = 0

    def process_event(self, event: Event) -> None:
        self.process_event_batch([event])

    def process_event_batch(self, events: Sequence[Event]) -> None:
        self.attempts += 1
        if self.refuse:
            self.refuse -= 1
            raise ChannelFullException("channel full")
        self.batches.append(list(events))

    async def synced(self) -> None:
        """Nothing to wait for: no file channel."""

    @property
    def bodies(self) -> list[bytes]:
        return [e.body for batch in self.batches for e in batch]


def make_source(
    spool: Path, clock: ManualClock | None = None, /, **settings: Any
) -> SpoolDirSource:
    s = SpoolDirSettings.from_mapping({"spoolDir": str(spool), **settings})
    src = SpoolDirSource("r1", s, clock=clock or ManualClock(), watch=False)
    src.channel_processor = FakeProcessor()
    return src


def processor(src: SpoolDirSource) -> FakeProcessor:
    proc = src.channel_processor
    assert isinstance(proc, FakeProcessor)
    return proc


def put(spool: Path, name: str, data: bytes | str, mtime: float | None = None) -> Path:
    path = spool / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


async def drain(src: SpoolDirSource, limit: int = 10_000) -> int:
    """Call process() until it backs off; the number of READY calls."""
    for n in range(limit):
        if await src.process() is Status.BACKOFF:
            return n
    raise AssertionError("source never backed off")


def run_source(src: SpoolDirSource) -> FakeProcessor:
    """start, drain, stop; the processor that saw the events."""

    async def go() -> None:
        await src.start()
        try:
            await drain(src)
        finally:
            await src.stop()

    asyncio.run(go())
    return processor(src)


def listing(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}
