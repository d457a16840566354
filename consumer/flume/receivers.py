"""``FlumeUtils``: Flume push and pull receivers, mirroring ``pyspark.streaming.flume``.

Records are ``(headers_dict, body)`` tuples, the body passed through ``bodyDecoder``
(UTF-8 by default), exactly as in PySpark.

Guarantees (see the README's table):

- push, no checkpoint: like Spark, every ``appendBatch`` is answered ``OK`` once it is in
  memory; a consumer crash loses what was received but not yet processed.
- push + checkpoint: events are written to a write-ahead log under the checkpoint
  directory and ``OK`` is answered only once that is durable; after a crash the log is
  replayed from the last checkpoint (at-least-once, never a silent loss). As in Spark, only a
  context recovered from its checkpoint (``StreamingContext.getOrCreate``) replays the log: a
  fresh context skips what a previous run logged, with a warning saying how much.
- pull, no checkpoint: a batch is acked as soon as it is stored in memory (Spark's
  behaviour).
- pull + checkpoint: a batch is acked only after the checkpoint covering it is durable.
  If the consumer dies between that checkpoint and the ack, the agent rolls the batch back
  and serves it again under a new sequence number; the receiver recognises those events
  by content digest (the checkpoint keeps the digests of the batches it covered) wherever
  they come in the redelivery, for up to RECOVERY_SECONDS, and counts them once:
  exactly-once window results. The same applies when an ack fails (after retries) while
  the consumer keeps running. Acks known to have reached the agent are logged
  next to the checkpoint, so identical *new* events are never mistaken for redeliveries;
  the one case left is the crash landing between an ack and its log line, where an event
  identical in headers and body to one of that batch's could be dropped once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from consumer.engine.receiver import ReceiverContext
from consumer.flume.wal import WriteAheadLog
from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL, SPARK_FLUME_PROTOCOL
from protocol.transport import Connection, RpcClient, RpcError, RpcServer

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], Any]
ACK_LOG_BYTES = 256 * 1024
RECOVERY_SECONDS = 30
ACK_LOG_KEEP = 1000


def utf8_decoder(s: bytes | None) -> str | None:
    """PySpark's default body decoder; undecodable bytes become U+FFFD instead of killing
    the job (a poison event would otherwise be redelivered forever)."""
    if s is None:
        return None
    return s.decode("utf-8", errors="replace")


def _records(events: Iterable[dict[str, Any]], decoder: Decoder) -> list[tuple[Any, Any]]:
    return [(e["headers"], decoder(e["body"])) for e in events]


class FlumePushReceiver:
    """An Avro source inside the consumer: the agent's avro sink pushes here."""

    def __init__(self, ssc: Any, hostname: str, port: int, deflate: bool,
                 decoder: Decoder) -> None:
        self._ssc = ssc
        self.hostname = hostname
        self.port = port
        self.deflate = deflate
        self.decoder = decoder
        self._server: RpcServer | None = None
        self._ctx: ReceiverContext | None = None
        self._wal: WriteAheadLog | None = None
        self._restored_acked = 0
        self._covered = 0
        self._resuming = False  # set by restore(): the context came from its checkpoint

    @property
    def reliable(self) -> bool:
        return getattr(self._ssc, "_checkpoint_dir", None) is not None

    def _wal_dir(self) -> str:
        return os.path.join(self._ssc._checkpoint_dir, "receivers",
                            f"push-{self.hostname}-{self.port}")

    async def start(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx
        if self.reliable and not self._resuming:
            self._wal = WriteAheadLog(self._wal_dir())
            skipped = await asyncio.to_thread(self._wal.open_fresh)
            if skipped:
                log.warning(
                    "push receiver %s:%d: skipping %d events (%d batches) that a previous run "
                    "logged in %s but never processed: a new StreamingContext does not replay "
                    "a previous run's log (as in Spark). StreamingContext.getOrCreate(%r, "
                    "setup) resumes them from the checkpoint.", self.hostname, self.port,
                    sum(len(raw) for _, raw in skipped), len(skipped), self._wal_dir(),
                    self._ssc._checkpoint_dir)
        elif self.reliable:
            self._wal = WriteAheadLog(self._wal_dir())
            start = max(self._restored_acked, self._covered)
            replay = await asyncio.to_thread(self._wal.open, start)
            for end, raw in replay:
                ctx.store([(h, self.decoder(b)) for h, b in raw], token=end)
            if replay:
                log.info("push receiver %s:%d: replayed %d logged batches",
                         self.hostname, self.port, len(replay))
        self._server = RpcServer(AVRO_SOURCE_PROTOCOL, self._handle, self.hostname, self.port,
                                 deflate=self.deflate, name="flume push receiver")
        await self._server.start()
        self.port = self._server.port

    async def _handle(self, call: CallRequest, conn: Connection) -> Any:
        assert self._ctx is not None
        events = (call.params["events"] if call.message == "appendBatch"
                  else [call.params["event"]])
        if self._wal is None:
            self._ctx.store(_records(events, self.decoder))
            return "OK"
        raw = [(e["headers"], e["body"]) for e in events]
        try:
            end = await self._wal.append(raw)
        except OSError as exc:
            log.error("push receiver: write-ahead log failed: %s", exc)
            return "FAILED"  # the agent keeps the events and retries
        self._ctx.store(_records(events, self.decoder), token=end)
        return "OK"

    async def on_batch_done(self, tokens: list[int]) -> None:
        if self._wal is not None and tokens:
            await asyncio.to_thread(self._wal.acknowledge, max(tokens))

    def snapshot(self) -> dict[str, int]:
        return {"acked": self._wal.acked if self._wal else self._restored_acked}

    def restore(self, data: dict[str, int]) -> None:
        self._resuming = True
        self._restored_acked = int(data.get("acked", 0))

    def restore_unacknowledged(self, tokens: list[int]) -> None:
        """The checkpoint covered these entries but their ack had not been recorded."""
        self._resuming = True
        if tokens:
            self._covered = max(self._covered, max(tokens))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._wal is not None:
            self._wal.close()


@dataclass(frozen=True)
class PullToken:
    """Identifies one polled batch: where to ack it, and what it held (for recovery)."""

    address: str
    sequence: str
    digests: tuple[bytes, ...] = ()


def digest(event: dict[str, Any]) -> bytes:
    h = hashlib.blake2b(digest_size=8)
    for k in sorted(event["headers"]):
        h.update(k.encode())
        h.update(b"\0")
        h.update(event["headers"][k].encode())
        h.update(b"\0")
    h.update(event["body"])
    return h.digest()


class FlumePollingReceiver:
    """Polls SparkSink-compatible sinks (``getEventBatch`` / ``ack`` / ``nack``)."""

    def __init__(self, ssc: Any, addresses: list[tuple[str, int]], max_batch_size: int,
                 parallelism: int, decoder: Decoder, retry_max: float = 5.0) -> None:
        if not addresses:
            raise ValueError("createPollingStream needs at least one (host, port) address")
        self._ssc = ssc
        self.addresses = [(h, int(p)) for h, p in addresses]
        self.max_batch_size = max_batch_size
        self.parallelism = max(parallelism, len(self.addresses))
        self.decoder = decoder
        self.retry_max = retry_max
        self._ctx: ReceiverContext | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: dict[str, list[RpcClient]] = collections.defaultdict(list)
        # Acks travel on their own connection per agent: a poll connection is busy with a
        # long-poll getEventBatch, and a server answers one connection's calls in order.
        self._ack_clients: dict[str, RpcClient] = {}
        # digests of events a checkpoint counted but the agent may serve again, per address
        # digests of counted events an agent may serve again (from any address: a consumer
        # may come back through another route to the same agent)
        self._recovering: collections.Counter[bytes] = collections.Counter()
        self._recovery_deadline = 0.0
        self.stopping = False

    @property
    def reliable(self) -> bool:
        return getattr(self._ssc, "_checkpoint_dir", None) is not None

    def _ack_log(self) -> str | None:
        cp = getattr(self._ssc, "_checkpoint_dir", None)
        return os.path.join(cp, "receivers", "pull-acks.log") if cp else None

    def restore_unacknowledged(self, tokens: list[PullToken]) -> None:
        """Batches the newest checkpoint counted: unless their ack is known to have reached
        the agent, expect them back and count them once. Events are told apart only by
        content, so confirmed acks are logged to avoid dropping identical new events."""
        acked = self._confirmed_acks()
        self._expect_again([t for t in tokens if (t.address, t.sequence) not in acked])

    def _expect_again(self, tokens: list[PullToken]) -> None:
        """These counted events may be served again (the agent rolled their batch back):
        drop them when they come, for up to RECOVERY_SECONDS."""
        for t in tokens:
            self._recovering.update(t.digests)
        if tokens:
            self._recovery_deadline = time.monotonic() + RECOVERY_SECONDS

    def _confirmed_acks(self) -> set[tuple[str, str]]:
        path = self._ack_log()
        if path is None or not os.path.exists(path):
            return set()
        with open(path, encoding="utf-8") as f:
            return {tuple(line.split(" ", 1)) for line in f.read().splitlines()  # type: ignore[misc]
                    if " " in line}

    def _record_ack(self, address: str, seq: str) -> None:
        """Append to the ack log (no fsync: it survives a process kill, which is what it is
        for); keep it short by rewriting it with its newest lines now and then."""
        path = self._ack_log()
        if path is None:
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{address} {seq}\n")
            size = f.tell()
        if size > ACK_LOG_BYTES:
            with open(path, encoding="utf-8") as f:
                keep = f.read().splitlines()[-ACK_LOG_KEEP:]
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in keep))
            os.replace(tmp, path)

    async def start(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx
        if self._recovering:  # the clock starts when polling can start
            self._recovery_deadline = time.monotonic() + RECOVERY_SECONDS
        for i in range(self.parallelism):
            host, port = self.addresses[i % len(self.addresses)]
            # A SparkSink answers only when it has events, so no request timeout applies.
            client = RpcClient(SPARK_FLUME_PROTOCOL, host, port, connect_timeout=10,
                               request_timeout=365 * 24 * 3600)
            self._clients[client.address].append(client)
            if client.address not in self._ack_clients:
                self._ack_clients[client.address] = RpcClient(
                    SPARK_FLUME_PROTOCOL, host, port, connect_timeout=10, request_timeout=30)
            self._tasks.append(asyncio.create_task(self._worker(client)))

    async def _worker(self, client: RpcClient) -> None:
        delay = 0.1
        while not self.stopping:
            try:
                batch = await client.call("getEventBatch", {"n": self.max_batch_size})
            except asyncio.CancelledError:
                raise
            except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
                log.warning("polling %s failed: %s; retrying in %.1fs", client.address, exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if batch["errorMsg"]:
                log.warning("sink %s: %s", client.address, batch["errorMsg"])
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            delay = 0.1
            await self._store(client, batch)

    async def _store(self, client: RpcClient, batch: dict[str, Any]) -> None:
        assert self._ctx is not None
        events = batch["events"]
        seq = batch["sequenceNumber"]
        if self._recovering:
            events = self._drop_counted(client.address, events)
        if not self.reliable:
            self._ctx.store(_records(events, self.decoder))
            await self._ack_or_nack(client.address, seq, "ack")
            return
        if not events:  # all of it was counted before the crash
            await self._ack_or_nack(client.address, seq, "ack")
            return
        token = PullToken(client.address, seq, tuple(digest(e) for e in events))
        self._ctx.store(_records(events, self.decoder), token=token)

    def _drop_counted(self, address: str,
                      events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Drop events a checkpoint already counted, wherever they come in the redelivery
        (an agent rolls batches back in any order, and several pollers share them)."""
        if time.monotonic() > self._recovery_deadline:
            left = self._recovering.total()
            log.warning("polling: %d counted events were never served again within %ds; "
                        "no longer expecting them", left, RECOVERY_SECONDS)
            self._recovering.clear()
            return events
        pending = self._recovering
        kept = []
        for e in events:
            d = digest(e)
            if pending[d] > 0:
                pending[d] -= 1
            else:
                kept.append(e)
        if not +pending:
            pending.clear()
        dropped = len(events) - len(kept)
        if dropped:
            log.info("polling %s: %d redelivered events were already counted", address,
                     dropped)
        return kept

    async def _ack_or_nack(self, address: str, seq: str, verb: str,
                           tries: int = 1) -> bool:
        for attempt in range(tries):
            try:
                await self._ack_clients[address].call(verb, {"sequenceNumber": seq})
            except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
                log.warning("%s %s to %s failed (attempt %d of %d): %s", verb, seq, address,
                            attempt + 1, tries, exc)
                if attempt + 1 < tries:
                    await asyncio.sleep(0.2 * 2 ** attempt)
                continue
            if verb == "ack" and self.reliable:
                self._record_ack(address, seq)
            return True
        return False  # the agent rolls the batch back on its own (timeout or lost poller)

    async def on_batch_done(self, tokens: list[PullToken]) -> None:
        results = await asyncio.gather(
            *(self._ack_or_nack(t.address, t.sequence, "ack", tries=4) for t in tokens))
        # Counted but not acknowledged: the agent will serve these again; count them once.
        self._expect_again([t for t, ok in zip(tokens, results, strict=True) if not ok])

    async def on_batch_failed(self, tokens: list[PullToken], error: BaseException) -> None:
        await asyncio.gather(*(self._ack_or_nack(t.address, t.sequence, "nack")
                               for t in tokens))

    async def stop(self) -> None:
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for clients in self._clients.values():
            for c in clients:
                await c.close()
        for c in self._ack_clients.values():
            await c.close()


class FlumeUtils:
    @staticmethod
    def createStream(ssc: Any, hostname: str, port: int, storageLevel: Any = None,
                     enableDecompression: bool = False,
                     bodyDecoder: Decoder = utf8_decoder) -> Any:
        """Push model: run an Avro source on ``hostname:port`` for Flume's avro sink."""
        receiver = FlumePushReceiver(ssc, hostname, port, enableDecompression, bodyDecoder)
        return ssc.receiverStream(receiver)

    @staticmethod
    def createPollingStream(ssc: Any, addresses: list[tuple[str, int]], storageLevel: Any = None,
                            maxBatchSize: int = 1000, parallelism: int = 5,
                            bodyDecoder: Decoder = utf8_decoder) -> Any:
        """Pull model: poll SparkSink-compatible sinks at ``addresses``."""
        receiver = FlumePollingReceiver(ssc, addresses, maxBatchSize, parallelism, bodyDecoder)
        return ssc.receiverStream(receiver)


__all__ = ["FlumeUtils", "utf8_decoder"]
