"""Talking to one SparkSink: poll batches, settle them, and tell a proven ack from a hopeful one.

Spark's SparkSink answers ``ack`` with nothing, even for a sequence number it no longer knows
(a batch it rolled back at its timeout, or one handed out by the process before a restart),
so "the ack returned" proves little. An ack is *proven* when:

* flumelet's SparkSink says ``committed`` in the reply's call metadata
  (:mod:`protocol.ackproof`; ``rolled-back`` and ``unknown`` prove the opposite), or
* for a sink that sends no such metadata (Spark's own), the connection the batch came on
  never dropped until the ack returned (so the sink process that answered is the one holding
  the batch) and the ack came back within 90% of the sink's timeout.

Anything else counts as "may come back".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from consumer.spark.options import parse_address
from protocol import ackproof
from protocol.schemas import SPARK_FLUME_PROTOCOL
from protocol.transport import RpcClient, RpcError

log = logging.getLogger(__name__)

__all__ = ["SinkBatch", "SinkConnection"]

NETWORK_ERRORS = (ConnectionError, OSError, TimeoutError, RpcError)
SETTLE_TIMEOUT = 10.0
POLL_FOREVER = 365 * 24 * 3600.0  # a SparkSink answers a poll only once it has an event


@dataclass
class SinkBatch:
    seq: str
    events: list[dict[str, Any]]
    asked: int
    sent_at: float  # clock time the request left: the sink's timeout started after it
    connection: int  # which of the client's connections it came on


class SinkConnection:
    """A task's two connections to one SparkSink: one polls, one settles.

    A SparkSink handles one connection's calls in order, so an ack sent behind a
    ``getEventBatch`` that waits for events would wait too. Acks therefore travel on their
    own connection. Without the sink's own word (see the module), the proof that an ack
    reached the sink process that handed the batch out is that the poll connection the batch
    came on is still up, never re-made, when the ack returns: a restarted agent would have
    closed it.
    """

    def __init__(self, address: str, *, connect_timeout: float, sink_timeout: float,
                 clock: Callable[[], float]) -> None:
        host, port = parse_address(address)
        self.address = address
        self.sink_timeout = sink_timeout
        self.clock = clock
        self._poller = RpcClient(SPARK_FLUME_PROTOCOL, host, port,
                                 connect_timeout=connect_timeout, request_timeout=POLL_FOREVER)
        self._settler = RpcClient(SPARK_FLUME_PROTOCOL, host, port,
                                  connect_timeout=connect_timeout, request_timeout=SETTLE_TIMEOUT)
        self._waiting: asyncio.Task[SinkBatch | None] | None = None

    async def poll(self, n: int, timeout: float) -> SinkBatch | Literal["timeout"] | None:
        """One ``getEventBatch(n)``. None: the sink answered an error message or the
        connection failed. ``"timeout"``: no answer within ``timeout``; the request stays
        pending (so the batches already polled on this connection stay open) until
        ``abandon`` or the next ``poll``, which waits for the same request again."""
        if self._waiting is None and not self._poller.connected:
            try:  # the wait for events starts once connected (connecting has its own timeout)
                await self._poller.connect()
            except NETWORK_ERRORS as exc:
                log.warning("connecting to %s failed: %s", self.address, exc)
                return None
        self.prefetch(n)
        assert self._waiting is not None
        done, _ = await asyncio.wait({self._waiting}, timeout=timeout)
        if not done:
            log.debug("%s: no events within %.1fs", self.address, timeout)
            return "timeout"
        task, self._waiting = self._waiting, None
        return task.result()

    def prefetch(self, n: int) -> None:
        """Send the next ``getEventBatch(n)`` now (while the caller stages and acks what it
        holds); the next ``poll`` collects its answer."""
        if self._waiting is None:
            self._waiting = asyncio.create_task(self._get_batch(n))

    async def _get_batch(self, n: int) -> SinkBatch | None:
        sent_at = self.clock()
        try:
            answer = await self._poller.call("getEventBatch", {"n": n})
        except NETWORK_ERRORS as exc:
            log.warning("polling %s failed: %s", self.address, exc)
            return None
        if answer["errorMsg"]:
            log.info("sink %s: %s", self.address, answer["errorMsg"])
            return None
        return SinkBatch(answer["sequenceNumber"], answer["events"], n, sent_at,
                         self._poller.connections_created)

    def _poll_connection_intact(self, batch: SinkBatch) -> bool:
        return self._poller.connected and self._poller.connections_created == batch.connection

    async def settle(self, batch: SinkBatch, verb: str) -> bool:
        """``ack`` or ``nack`` the batch; True when the ack is proven (see the module)."""
        if not self._poll_connection_intact(batch):
            return False
        try:
            _, meta = await self._settler.call_with_meta(verb, {"sequenceNumber": batch.seq})
        except NETWORK_ERRORS as exc:
            log.warning("%s of batch %s to %s failed: %s", verb, batch.seq, self.address, exc)
            return False
        outcome = meta.get(ackproof.ACK_META_KEY)
        if outcome is not None:  # a flumelet sink says what became of the batch
            if verb == "ack" and outcome != ackproof.COMMITTED:
                log.warning("ack of batch %s to %s: the sink says %s", batch.seq, self.address,
                            outcome.decode("utf-8", "replace"))
            return verb == "ack" and outcome == ackproof.COMMITTED
        elapsed = self.clock() - batch.sent_at
        if elapsed >= 0.9 * self.sink_timeout:
            log.warning("%s of batch %s to %s came %.1fs after the poll: not trusted (the sink "
                        "may have rolled it back at its timeout)", verb, batch.seq, self.address,
                        elapsed)
            return False
        return self._poll_connection_intact(batch)

    async def close(self) -> None:
        """Give back a batch that came too late, abandon a poll still waiting (the sink
        rolls back what it hands out on a closed connection) and close both connections."""
        if self._waiting is not None:
            if self._waiting.done():
                late = self._waiting.result()
                if late is not None:
                    await self.settle(late, "nack")
            self._waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiting
            self._waiting = None
        await self._poller.close()
        await self._settler.close()
