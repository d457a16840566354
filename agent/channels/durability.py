"""Group commit: a caller that waits for durability anyway lets one fsync cover many commits.

By default a file channel fsyncs inside ``commit()``, blocking the event loop for the
fsync (~1.5 ms on this machine kind) once for each source batch and once for each sink
batch. A caller that commits inside :func:`fsync_later` gets its commit written to the log
(a killed process loses nothing: the bytes are in the kernel's page cache) and must then
``await durable(channels)`` before it acknowledges anything upstream (a spool file's
position, an ``OK`` to the avro client). That wait runs the fsync in a worker thread while
the loop goes on; the commits written meanwhile, by other sources and sinks, share the
next fsync. Durability is Flume's (nothing is acknowledged before it is on disk); the loop
just no longer stands still for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEFERRED = ContextVar("flumelet_fsync_deferred", default=False)


@contextmanager
def fsync_later() -> Iterator[None]:
    """Commits in this block are written now and fsynced when the caller awaits
    :func:`durable` (in the same task)."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def fsync_deferred() -> bool:
    return _DEFERRED.get()


async def durable(channels: Iterable[object]) -> None:
    """Return once every commit written so far to ``channels`` is durable (channels that
    have nothing to wait for return at once). Raises ChannelException if an fsync failed."""
    for channel in channels:
        synced = getattr(channel, "synced", None)
        if synced is not None:
            await synced()
