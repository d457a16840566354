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
- pull + checkpoint: exactly-once window results, across consumer *and agent* crashes.
  A batch is acked only after the checkpoint covering it is durable, and it counts as gone
  only when the agent *proves* the ack. Spark 2.4's SparkSink answers ``ack`` with ``null``
  whatever happened, even for a sequence number it never issued (an agent restarted since
  the batch was served) and before its channel commit (which runs later in another
  thread), so ``null`` proves nothing. flumelet's SparkSink answers the same ``null``, so
  Spark's receiver works unchanged, and adds ``flumelet.ack`` = ``committed`` /
  ``rolled-back`` / ``unknown`` to the reply's call metadata (:mod:`protocol.ackproof`),
  which Spark's receiver ignores. From Spark's own sink, a ``null`` counts only if it came on
  an ack connection already open when the batch was polled (the same process holds the
  batch, as when Spark's receiver acks on the poll connection). Until an ack is proven the
  events may come back under a new sequence number: rolled back by the sink (the consumer
  died, the ack never arrived) or replayed from a file channel by a restarted agent. Their
  digests (headers and body) are kept with every checkpoint (:mod:`consumer.flume.redelivery`)
  and a redelivery is dropped wherever its events come, until they come back or for
  REDELIVERY_HORIZON seconds of their agent being reachable (longer than any way an agent
  serves them again). Once a connection to an agent broke, batches it served that are not
  counted yet are watched too: the agent may serve them again before they are counted.
  Proven acks are logged next to the checkpoint, so identical *new* events are not taken
  for redeliveries. What is left: an agent killed between committing a batch and answering
  the ack, or a consumer killed between a proven ack and its log line, can make an event
  identical in headers and body to one of that batch's, arriving within the horizon, be
  dropped once; and a consumer that holds a batch longer than the sink's transaction
  timeout (60 s) before counting it can count it twice, as Spark's receiver would.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from common.outage import Outage, format_duration, peer_problem
from consumer.engine.receiver import ReceiverContext
from consumer.flume.defaults import PULL_MAX_BATCH_SIZE, PULL_PARALLELISM
from consumer.flume.redelivery import REDELIVERY_HORIZON, PullToken, RedeliveryLedger
from consumer.flume.wal import WriteAheadLog
from protocol import ackproof
from protocol.limits import ListenerLimits
from protocol.rpc import CallRequest
from protocol.schemas import AVRO_SOURCE_PROTOCOL, SPARK_FLUME_PROTOCOL
from protocol.transport import Connection, RpcClient, RpcError, RpcServer

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], Any]
ACK_LOG_BYTES = 256 * 1024
ACK_LOG_KEEP = 1000
STOP_GRACE = 10.0  # s a stopping push receiver waits for the calls it is storing


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
                 decoder: Decoder, limits: ListenerLimits | None = None) -> None:
        self._ssc = ssc
        self.hostname = hostname
        self.port = port
        self.deflate = deflate
        self.decoder = decoder
        self.limits = limits or ListenerLimits()
        # what was answered OK but not yet processed, by store token (max-backlog-bytes)
        self._backlog = 0
        self._backlog_of: dict[int, int] = {}
        self._next_token = 0
        self._room = asyncio.Event()
        self._server: RpcServer | None = None
        self._ctx: ReceiverContext | None = None
        self._wal: WriteAheadLog | None = None
        self._restored_acked = 0
        self._covered = 0
        self._resuming = False  # set by restore(): the context came from its checkpoint
        self.last_error: tuple[int, str] | None = None  # (epoch ms, what), for status()
        self._stopping = False
        self._storing = 0  # calls past the stop check, not answered yet
        self._stored_all = asyncio.Event()  # set while _storing == 0

    @property
    def reliable(self) -> bool:
        return getattr(self._ssc, "checkpointDir", None) is not None

    def _wal_dir(self) -> str:
        return os.path.join(self._ssc.checkpointDir, "receivers",
                            f"push-{self.hostname}-{self.port}")

    async def start(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx
        self._stopping = False
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
                    self._ssc.checkpointDir)
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
                                 deflate=self.deflate, name="flume push receiver",
                                 limits=self.limits)
        await self._server.start()
        self.port = self._server.port

    async def _handle(self, call: CallRequest, conn: Connection) -> Any:
        if not await self._wait_for_room(call.cost, conn) or self._stopping:
            return "FAILED"  # the client gave up waiting, or we stop: it sends these again
        self._storing += 1
        self._stored_all.clear()
        try:
            return await self._store(call)
        finally:
            self._storing -= 1
            if not self._storing:
                self._stored_all.set()

    async def _store(self, call: CallRequest) -> str:
        assert self._ctx is not None
        events = (call.params["events"] if call.message == "appendBatch"
                  else [call.params["event"]])
        if self._wal is None:
            self._next_token += 1
            token = self._next_token
        else:
            raw = [(e["headers"], e["body"]) for e in events]
            try:
                token = await self._wal.append(raw)
            except OSError as exc:
                log.error("push receiver: write-ahead log failed: %s", exc)
                self.last_error = (self._ctx.clock.now_ms(), f"write-ahead log failed: {exc}")
                return "FAILED"  # the agent keeps the events and retries
        self._backlog += call.cost
        self._backlog_of[token] = call.cost
        self._ctx.store(_records(events, self.decoder), token=token)
        return "OK"

    async def _wait_for_room(self, cost: int, conn: Connection) -> bool:
        """Backpressure: while more than max-backlog-bytes of answered events wait for
        their batch, the next call waits (and so, through TCP, does its client) instead
        of the consumer growing without bound. False if the client left meanwhile:
        storing its call then would duplicate the retry it makes."""
        limit = self.limits.max_backlog_bytes
        if not self._backlog or self._backlog + cost <= limit:
            return True
        stop_waiting = conn.on_close(self._room.set)
        try:
            while (self._backlog and self._backlog + cost > limit and not conn.closed
                   and not self._stopping):
                self._room.clear()
                await self._room.wait()
        finally:
            stop_waiting()
        return not conn.closed

    async def on_batch_done(self, tokens: list[int]) -> None:
        for token in tokens:
            self._backlog -= self._backlog_of.pop(token, 0)
        self._room.set()
        if self._wal is not None and tokens:
            await asyncio.to_thread(self._wal.acknowledge, max(tokens))

    def snapshot(self) -> dict[str, int]:
        return {"acked": self._wal.acked if self._wal else self._restored_acked}

    def status(self) -> dict[str, Any]:
        """What a monitor shows (plain data; call on the loop): the agents connected now,
        what was answered OK but not processed yet, the last problem."""
        listener = self._server.listener if self._server is not None else None
        return {"kind": "push", "address": f"{self.hostname}:{self.port}",
                "peers": sorted(p.peer for p in listener.peers) if listener else [],
                "backlog_calls": len(self._backlog_of), "backlog_bytes": self._backlog,
                "last_error": self.last_error}

    def restore(self, data: dict[str, int]) -> None:
        self._resuming = True
        self._restored_acked = int(data.get("acked", 0))

    def restore_unacknowledged(self, tokens: list[int]) -> None:
        """The checkpoint covered these entries but their ack had not been recorded."""
        self._resuming = True
        if tokens:
            self._covered = max(self._covered, max(tokens))

    async def stop(self) -> None:
        """Calls already being stored (logged) are answered before the connections close:
        an agent that got no answer sends the batch again, and the log would replay it
        too (counted twice). Calls after this point get FAILED; the agent keeps them."""
        self._stopping = True
        self._room.set()
        if self._storing:
            try:
                await asyncio.wait_for(self._stored_all.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("push receiver %s:%d: stopping with %d calls still being stored",
                            self.hostname, self.port, self._storing)
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._wal is not None:
            self._wal.close()


class FlumePollingReceiver:
    """Polls SparkSink-compatible sinks (``getEventBatch`` / ``ack`` / ``nack``); with a
    checkpoint, exactly once as the module docstring says (the ledger keeps what may come
    back, this class does the I/O and decides what proves an ack)."""

    def __init__(self, ssc: Any, addresses: list[tuple[str, int]], max_batch_size: int,
                 parallelism: int, decoder: Decoder, retry_max: float = 5.0,
                 horizon: float = REDELIVERY_HORIZON) -> None:
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
        # snapshot() runs in the batch thread, everything else on the loop
        self.ledger = RedeliveryLedger(horizon, threading.Lock())
        self._covered: list[PullToken] = []
        self.stopping = False
        self._outages: dict[str, Outage] = collections.defaultdict(Outage)  # per agent
        self.last_error: tuple[int, str] | None = None  # (epoch ms, what), for status()
        self._unsettled = 0  # batches polled and not yet acked or nacked

    @property
    def reliable(self) -> bool:
        return getattr(self._ssc, "checkpointDir", None) is not None

    def _now(self) -> float:
        return self._ctx.clock.now_ms() / 1000 if self._ctx is not None else 0.0

    def _ack_log(self) -> str | None:
        cp = getattr(self._ssc, "checkpointDir", None)
        return os.path.join(cp, "receivers", "pull-acks.log") if cp else None

    # ---- checkpoints -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return self.ledger.snapshot()

    def restore(self, data: dict[str, Any]) -> None:
        self.ledger.restore(data)

    def restore_unacknowledged(self, tokens: list[PullToken]) -> None:
        """The batches the newest checkpoint covered, whose acks may not have gone out."""
        self._covered = list(tokens)

    def _proven_acks(self) -> set[tuple[str, str]]:
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

    # ---- polling -----------------------------------------------------------------------
    async def start(self, ctx: ReceiverContext) -> None:
        self._ctx = ctx
        # What the checkpoint counted may come back unless its ack is known proven. Events
        # are told apart only by content: proven acks are logged so that identical new
        # events are not dropped for them.
        self.ledger.resume(self._covered, self._proven_acks())
        if self.ledger.expecting:
            log.info("polling: %d counted events may be served again; they will be dropped",
                     self.ledger.expecting)
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
        address = client.address
        while not self.stopping:
            try:
                epoch = await self._ack_epoch(address) if self.reliable else None
                await self._connect(client)
                self.ledger.reachable(address, True, self._now())
                self._reached(address)
                batch = await client.call("getEventBatch", {"n": self.max_batch_size})
            except asyncio.CancelledError:
                raise
            except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
                self.ledger.reachable(address, False, self._now())
                self.ledger.arm(address)
                self._unreachable(address, exc, delay)
                self._note_error(f"polling {address} failed: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if batch["errorMsg"]:
                self._unreachable(address, RpcError(batch["errorMsg"]), delay)
                self._note_error(f"sink {address}: {batch['errorMsg']}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            delay = 0.1
            await self._store(address, batch, epoch)

    def _unreachable(self, address: str, exc: BaseException, delay: float) -> None:
        """One WARNING per agent when polling it starts failing (or fails differently), not
        one per poller and attempt."""
        answered = isinstance(exc, RpcError)
        problem = f"the sink answered: {exc}" if answered else peer_problem(exc)
        if self._outages[address].failed(problem, self._now()):
            question = "" if answered else \
                f" is an agent with a SparkSink running on {address}?"
            log.warning("polling %s: %s;%s retrying every %g s at most", address, problem,
                        question, self.retry_max)
        else:
            log.debug("polling %s failed again: %s; retrying in %.1f s", address, exc, delay)

    def _reached(self, address: str) -> None:
        lasted = self._outages[address].recovered(self._now())
        if lasted is not None:
            log.warning("polling %s: connected again after %s", address,
                        format_duration(lasted))

    async def _connect(self, client: RpcClient) -> None:
        """Connect ``client`` if need be. A new connection replacing one means the old one
        broke: what the agent served may come again (rolled back, or replayed after a
        restart), so batches not yet counted are watched for duplicates."""
        before = client.connections_created
        await client.connect()
        if before and client.connections_created != before:
            self.ledger.arm(client.address)

    async def _ack_epoch(self, address: str) -> int | None:
        """The ack connection that is open now (connecting it if need be), or None."""
        ack = self._ack_clients[address]
        try:
            await self._connect(ack)
        except (ConnectionError, OSError):
            return None
        return ack.connections_created if ack.connected else None

    def _note_error(self, what: str) -> None:
        self.last_error = (self._ctx.clock.now_ms() if self._ctx else 0, what)

    def status(self) -> dict[str, Any]:
        """What a monitor shows (plain data; call on the loop): each polled sink and whether
        a connection to it is up, batches not yet acknowledged, the last problem."""
        return {"kind": "pull", "address": ", ".join(f"{h}:{p}" for h, p in self.addresses),
                "peers": [f"{a} ({'connected' if any(c.connected for c in cs) else 'down'})"
                          for a, cs in sorted(self._clients.items())],
                "backlog_calls": self._unsettled, "last_error": self.last_error}

    async def _store(self, address: str, batch: dict[str, Any], epoch: int | None) -> None:
        assert self._ctx is not None
        self._unsettled += 1
        events = batch["events"]
        seq = batch["sequenceNumber"]
        if not self.reliable:
            self._ctx.store(_records(events, self.decoder))
            await self._settle(PullToken(address, seq), "ack")
            self._unsettled -= 1
            return
        for gone_from, count in self.ledger.expire(self._now()):
            log.warning("polling: %d counted events from %s were not served again within "
                        "%gs of it being reachable; no longer expecting them", count,
                        gone_from, self.ledger.horizon)
        events, token = self.ledger.admit(address, seq, events, epoch)
        if token.absorbed or token.duplicates:
            log.info("polling %s: %d redelivered events were already counted, %d are in a "
                     "batch not yet counted", address, len(token.absorbed),
                     len(token.duplicates))
        # Even a batch counted whole before goes through a checkpoint before its ack: the
        # checkpoint must stop expecting what it absorbed first.
        self._ctx.store(_records(events, self.decoder), token=token)

    async def _settle(self, token: PullToken, verb: str, tries: int = 1) -> bool:
        """Send ``verb`` for ``token``; True only if the agent proved the batch committed
        (for ``ack``; a ``nack`` is True once answered)."""
        client = self._ack_clients[token.address]
        for attempt in range(tries):
            try:
                _, meta = await client.call_with_meta(verb, {"sequenceNumber": token.sequence})
            except (ConnectionError, OSError, TimeoutError, RpcError) as exc:
                self.ledger.arm(token.address)
                log.warning("%s %s to %s failed (attempt %d of %d): %s", verb, token.sequence,
                            token.address, attempt + 1, tries, exc)
                if attempt + 1 < tries:
                    await asyncio.sleep(0.2 * 2 ** attempt)
                continue
            if verb != "ack":
                return True
            outcome = meta.get(ackproof.ACK_META_KEY)
            if outcome is not None:
                proven = outcome == ackproof.COMMITTED
            else:  # a sink without proofs: the same connection as at poll time, or nothing
                proven = token.ack_epoch is not None and \
                    client.connections_created == token.ack_epoch and client.connected
            if not proven:
                self._note_error(f"ack {token.sequence} to {token.address} not proven")
                log.warning("ack %s to %s not proven (%s): expecting the batch back",
                            token.sequence, token.address,
                            outcome.decode(errors="replace") if outcome else "reconnected")
            return proven
        return False  # the agent rolls the batch back on its own (timeout or lost poller)

    async def on_batch_done(self, tokens: list[PullToken]) -> None:
        self._unsettled -= len(tokens)
        proofs = await asyncio.gather(*(self._settle(t, "ack", tries=4) for t in tokens))
        for token, proven in zip(tokens, proofs, strict=True):
            if proven:
                self._record_ack(token.address, token.sequence)
            # Counted but not proven gone: the agent may serve these again; count them once.
            self.ledger.settled(token, proven)

    async def on_batch_failed(self, tokens: list[PullToken], error: BaseException) -> None:
        self._unsettled -= len(tokens)
        await asyncio.gather(*(self._settle(t, "nack") for t in tokens))
        for token in tokens:
            self.ledger.failed(token)

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
                     bodyDecoder: Decoder = utf8_decoder,
                     limits: ListenerLimits | None = None) -> Any:
        """Push model: run an Avro source on ``hostname:port`` for Flume's avro sink.
        ``limits`` (not in PySpark): the listener's limits, see protocol.limits."""
        receiver = FlumePushReceiver(ssc, hostname, port, enableDecompression, bodyDecoder,
                                     limits)
        return ssc.receiverStream(receiver)

    @staticmethod
    def createPollingStream(ssc: Any, addresses: list[tuple[str, int]], storageLevel: Any = None,
                            maxBatchSize: int = PULL_MAX_BATCH_SIZE,
                            parallelism: int = PULL_PARALLELISM,
                            bodyDecoder: Decoder = utf8_decoder) -> Any:
        """Pull model: poll SparkSink-compatible sinks at ``addresses``."""
        receiver = FlumePollingReceiver(ssc, addresses, maxBatchSize, parallelism, bodyDecoder)
        return ssc.receiverStream(receiver)


__all__ = ["FlumeUtils", "utf8_decoder"]
