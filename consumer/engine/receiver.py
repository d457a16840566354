"""The receiver interface: how data gets into a StreamingContext.

A *receiver* is any object with::

    async def start(self, ctx: ReceiverContext) -> None   # begin receiving; return promptly
    async def stop(self) -> None                          # stop receiving; idempotent

and, optionally::

    reliable: bool = False                 # True: acknowledge only what a checkpoint covers
    def on_batch_done(self, tokens: list) -> None | Awaitable[None]
    def on_batch_failed(self, tokens: list, error: BaseException) -> None | Awaitable[None]
    def snapshot(self) -> Any              # plain, picklable position data for checkpoints
    def restore(self, data: Any) -> None   # called before start() when resuming
    def restore_unacknowledged(self, tokens: list) -> None
        # called before start() when resuming, with the tokens of the batch the newest
        # checkpoint covered: their acknowledgement may not have happened before the crash

Both ``start`` and ``stop`` run on the engine's single asyncio loop (the receiver may open
servers or client connections there). ``ctx.store(records, token=None)`` appends records to
the block that becomes part of the *next* batch to be cut; it is cheap and thread-safe.
Records may be any Python objects (Flume receivers store ``(headers_dict, body)`` tuples).

Tokens are the acknowledgement handle. After the batch containing records stored with
``token`` has been fully processed (every output operation done) **and**, when a checkpoint
directory is set and the graph has state or a receiver is ``reliable``, the checkpoint
covering that batch is durable, the engine calls ``on_batch_done(tokens)`` on the loop with
that batch's tokens in store order (a pull receiver ``ack``s its sequence numbers; a push
receiver answers ``OK``/trims its log). If the batch fails, ``on_batch_failed(tokens, error)``
is called instead (pull: ``nack``; push: answer ``FAILED``) and the context stops with that
error (``awaitTermination`` raises it): carrying on would count redelivered data twice.
Records stored without a token are never acknowledged; if they were cut into a batch that
had not run yet when a checkpoint was written, they are saved in it and replayed on resume.

``ctx.clock`` is the context's clock: a receiver reads time from it, never from the wall
clock, so a test driving a ManualClock drives the receiver's deadlines too.
``ctx.report_error(message, error)`` logs a receiver problem (Spark's ``reportError``);
``ctx.stop_context(message, error)`` asks the whole context to stop with that error.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from common.clock import Clock

log = logging.getLogger(__name__)

__all__ = ["Block", "BlockBuffer", "Receiver", "ReceiverContext"]


@runtime_checkable
class Receiver(Protocol):
    """The required half of the interface (see the module docstring for the optional half)."""

    async def start(self, ctx: ReceiverContext) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Block:
    """What one receiver delivered into one batch."""

    records: list[Any] = field(default_factory=list)
    tokens: list[Any] = field(default_factory=list)
    # records stored without a token (never acknowledged; checkpointed while pending)
    untokened: int = 0


class BlockBuffer:
    """The block being filled: ``store`` appends, ``cut`` hands it over and starts a new one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = Block()

    def store(self, records: Iterable[Any], token: Any = None) -> None:
        batch = records if isinstance(records, list) else list(records)
        with self._lock:
            self._block.records.extend(batch)
            if token is None:
                self._block.untokened += len(batch)
            else:
                self._block.tokens.append(token)

    def cut(self) -> Block:
        with self._lock:
            block, self._block = self._block, Block()
        return block

    def pending_count(self) -> int:
        with self._lock:
            return len(self._block.records)


class ReceiverContext:
    """Handed to ``Receiver.start``: where records go, and how to report trouble."""

    def __init__(self, stream_id: int, batch_duration_ms: int, clock: Clock,
                 buffer: BlockBuffer,
                 stop_context: Callable[[str, BaseException | None], None] | None = None) -> None:
        self.stream_id = stream_id
        self.batch_duration_ms = batch_duration_ms
        self.clock = clock
        self._buffer = buffer
        self._stop_context = stop_context
        self.errors: list[tuple[str, BaseException | None]] = []
        self.on_error: Callable[[str], None] | None = None  # the listener bus, if any

    def store(self, records: Iterable[Any], token: Any = None) -> None:
        """Append records to the next batch; ``token`` comes back in ``on_batch_done``."""
        self._buffer.store(records, token)

    def report_error(self, message: str, error: BaseException | None = None) -> None:
        self.errors.append((message, error))
        log.error("receiver for input stream %d: %s", self.stream_id, message, exc_info=error)
        if self.on_error is not None:
            self.on_error(message)

    def stop_context(self, message: str, error: BaseException | None = None) -> None:
        self.report_error(message, error)
        if self._stop_context is not None:
            self._stop_context(message, error)


def call_hook(obj: Any, name: str, *args: Any) -> Awaitable[None] | None:
    """Call an optional receiver hook; returns what it returned (maybe awaitable)."""
    hook = getattr(obj, name, None)
    if hook is None:
        return None
    result: Awaitable[None] | None = hook(*args)
    return result
