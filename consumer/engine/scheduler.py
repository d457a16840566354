"""The batch engine: computes the batch for time T from the records received in (T-interval, T].

:class:`JobScheduler` runs the DStream graph for one batch time; :class:`BatchPipeline` adds
what must happen around it (feeding receiver blocks, the checkpoint, collecting the tokens to
acknowledge). Neither knows about threads, event loops or the wall clock: the runtime (or a
test) decides *when* a batch time has come and calls ``BatchPipeline.run``.

Spark's timing rules live here: the first batch time is the next multiple of the batch
interval after "now" (``RecurringTimer.getStartTime``), the graph's zero time is one interval
before it, and every node emits only at its own slide times.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumer.engine.errors import CheckpointMismatch, IllegalArgumentException
from consumer.engine.graph import Node, ReceiverNode, StreamGraph
from consumer.engine.rdd import RDD
from consumer.engine.receiver import Block

log = logging.getLogger(__name__)

_OWN_CODE = tuple(str(Path(__file__).resolve().parents[2] / pkg) + os.sep
                  for pkg in ("consumer", "common", "protocol"))


def _in_user_code(exc: BaseException) -> str:
    """`` (at job.py:7)``: the innermost frame of the traceback outside flumelet, if any."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = frame.filename
        if not name.startswith(_OWN_CODE) and not name.startswith("<"):
            return f" (at {name}:{frame.lineno})"
    return ""

__all__ = [
    "BatchOutcome",
    "BatchPipeline",
    "JobScheduler",
    "first_batch_time",
    "receiver_hooks",
]

CHECKPOINT_FORMAT = "flumelet-streaming/1"


def first_batch_time(now_ms: int, batch_ms: int) -> int:
    """The next multiple of the batch interval strictly after ``now_ms``."""
    return (now_ms // batch_ms + 1) * batch_ms


def ancestors(outputs: Iterable[Node]) -> set[int]:
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        node = stack.pop()
        if node._id in seen:
            continue
        seen.add(node._id)
        stack.extend(node._parents)
    return seen


class JobScheduler:
    """Runs the graph: every node reachable from an output, in id (= topological) order,
    then the output operations in the order they were registered (as Spark runs its jobs)."""

    def __init__(self, graph: StreamGraph) -> None:
        needed = ancestors(graph.outputs)
        self.graph = graph
        self.streams = graph.nodes
        self.outputs = graph.outputs
        self.nodes = [s for s in graph.nodes if s._id in needed and not s._is_output]
        self.batch_ms = graph.batch_ms
        self.remember_ms = graph.remember_ms
        self.zero_ms: int | None = None
        self.last_ms: int | None = None

    def requires_checkpoint_dir(self) -> list[Node]:
        return [s for s in self.nodes if s._must_checkpoint or s._checkpoint_ms is not None]

    def has_state(self) -> bool:
        return any(s._has_state() for s in self.nodes)

    def checkpoint_interval_ms(self) -> int:
        """How often to checkpoint: every batch, unless every stateful stream was given a
        longer interval with ``dstream.checkpoint(seconds)`` (Spark's knob); then the
        shortest of those."""
        stateful = [s for s in self.nodes if s._has_state()]
        if not stateful or any(s._checkpoint_ms is None for s in stateful):
            return self.batch_ms
        return min(int(s._checkpoint_ms) for s in stateful if s._checkpoint_ms is not None)

    def validate(self, checkpoint_dir: str | None) -> None:
        """Spark's start-time checks (``DStreamGraph.validate`` / ``validateAtStart``)."""
        if not self.outputs:
            raise IllegalArgumentException(
                "requirement failed: No output operations registered, so nothing to execute")
        for s in self.nodes:
            if s._checkpoint_ms is not None and s._checkpoint_ms % s._slide_ms != 0:
                raise IllegalArgumentException(
                    f"requirement failed: The checkpoint interval for {type(s).__name__} has "
                    f"been set to  {s._checkpoint_ms} ms which not a multiple of its slide "
                    f"time ({s._slide_ms} ms). Please set it to a multiple of "
                    f"{s._slide_ms} ms.")
        if self.requires_checkpoint_dir() and not checkpoint_dir:
            raise IllegalArgumentException(
                "requirement failed: The checkpoint directory has not been set. Please set it "
                "by StreamingContext.checkpoint().")

    def initialize(self, zero_ms: int) -> None:
        self.zero_ms = zero_ms
        for s in self.streams:
            s._initialize(zero_ms)

    def next_batch_time(self) -> int:
        assert self.zero_ms is not None, "scheduler not initialized"
        base = self.last_ms if self.last_ms is not None else self.zero_ms
        return base + self.batch_ms

    def run_batch(self, t_ms: int, blocks: dict[int, Block] | None = None) -> None:
        """Compute every node for ``t_ms`` and run the output operations; raises what a user
        function raised (the batch then counts as failed)."""
        blocks = blocks or {}
        produced: dict[int, RDD] = {}
        for node in self.nodes:
            if node._is_input:
                feed = getattr(node, "_feed", None)
                if feed is not None:
                    feed(blocks.get(node._id) or Block())
                rdd = node._step(t_ms, [])
            else:
                parent_rdds = [produced.get(p._id) for p in node._parents]
                if any(r is None for r in parent_rdds):
                    continue
                rdd = node._step(t_ms, parent_rdds)  # type: ignore[arg-type]
            if rdd is not None:
                produced[node._id] = rdd
                self._remember(node, t_ms, rdd)
        for out in self.outputs:
            rdd = produced.get(out._parents[0]._id)
            if rdd is not None:
                out._step(t_ms, [rdd])
        self.last_ms = t_ms

    def _remember(self, node: Node, t_ms: int, rdd: RDD) -> None:
        gen = node._generated
        gen[t_ms] = rdd
        horizon = t_ms - max(node._slide_ms, self.remember_ms)
        for old in [old for old in gen if old <= horizon]:
            del gen[old]

    # ---- checkpoint data -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "batch_ms": self.batch_ms,
            "zero_ms": self.zero_ms,
            "last_ms": self.last_ms,
            "graph": self.graph.fingerprint(),
            "nodes": {s._id: s._snapshot() for s in self.nodes if s._has_state()},
        }

    def restore(self, data: dict[str, Any], source: str) -> None:
        if data["batch_ms"] != self.batch_ms:
            raise CheckpointMismatch(
                f"{source}: checkpoint batch interval {data['batch_ms']} ms differs from the "
                f"context's {self.batch_ms} ms")
        self.graph.check_fingerprint(data["graph"], source)
        self.initialize(data["zero_ms"])
        self.last_ms = data["last_ms"]
        by_id = {s._id: s for s in self.streams}
        for node_id, snap in data["nodes"].items():
            by_id[node_id]._restore(snap)


@dataclass
class BatchOutcome:
    """What happened to one batch; the runtime acknowledges or fails tokens from it."""

    time_ms: int
    tokens: dict[int, list[Any]] = field(default_factory=dict)
    error: BaseException | None = None
    checkpointed: bool = False


class BatchPipeline:
    """One batch end to end: feed blocks, run the graph, write the checkpoint.

    ``write_checkpoint(time_ms, payload)`` is the only I/O and is injected; it must make the
    payload durable before returning, because acknowledgements follow it.
    """

    def __init__(self, scheduler: JobScheduler, inputs: list[ReceiverNode],
                 write_checkpoint: Callable[[int, dict[str, Any]], object] | None) -> None:
        self.scheduler = scheduler
        self.inputs = inputs
        self.write_checkpoint = write_checkpoint
        reliable = any(getattr(i.receiver, "reliable", False) for i in inputs)
        self.checkpointing = write_checkpoint is not None and (scheduler.has_state() or reliable)
        self.failed: BaseException | None = None
        # Tokens of batches run since the last checkpoint: acknowledged only once one covers
        # them (with a checkpoint interval longer than the batch, acks wait for it).
        self._held: dict[int, list[Any]] = {}

    def cut(self) -> dict[int, Block]:
        """Take every receiver's current block (call at the batch boundary)."""
        return {i._id: i.buffer.cut() for i in self.inputs}

    def run(self, t_ms: int, blocks: dict[int, Block],
            queued: Iterable[tuple[int, dict[int, Block]]] = (),
            final: bool = False) -> BatchOutcome:
        """Run batch ``t_ms``. ``queued`` are batches already cut but not yet run: their
        token-less records go into the checkpoint so a restart replays them. ``final``: the
        last batch before a graceful stop, always checkpointed so held acks go out."""
        for i, b in blocks.items():
            if b.tokens:
                self._held.setdefault(i, []).extend(b.tokens)
        outcome = BatchOutcome(t_ms)
        if self.failed is not None:
            outcome.error = self.failed
            outcome.tokens, self._held = self._held, {}
            return outcome
        try:
            self.scheduler.run_batch(t_ms, blocks)
            if not self.checkpointing:
                outcome.tokens, self._held = self._held, {}
            elif final or self._checkpoint_due(t_ms):
                assert self.write_checkpoint is not None
                self.write_checkpoint(t_ms, self.snapshot(queued, self._held))
                outcome.checkpointed = True
                outcome.tokens, self._held = self._held, {}
        except Exception as exc:  # a user function or the checkpoint failed
            # One line: the traceback is printed once, by whoever awaitTermination() raises
            # it to (the CLI, or Python for a script); here only at DEBUG.
            log.error("batch %d failed: %s: %s%s; the context stops and awaitTermination() "
                      "raises it", t_ms, type(exc).__name__, exc, _in_user_code(exc),
                      exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)
            self.failed = outcome.error = exc
            outcome.tokens, self._held = self._held, {}
        return outcome

    def _checkpoint_due(self, t_ms: int) -> bool:
        interval = self.scheduler.checkpoint_interval_ms()
        zero = self.scheduler.zero_ms or 0
        return interval <= self.scheduler.batch_ms or (t_ms - zero) % interval == 0

    def snapshot(self, queued: Iterable[tuple[int, dict[int, Block]]] = (),
                 covered: dict[int, list[Any]] | None = None) -> dict[str, Any]:
        """``covered``: tokens of the batch this checkpoint includes, acknowledged only after
        it is durable; a restart hands them to ``restore_unacknowledged`` because the crash
        may have come between the checkpoint and the acknowledgement."""
        payload = self.scheduler.snapshot()
        payload["unacknowledged"] = dict(covered or {})
        payload["format"] = CHECKPOINT_FORMAT
        pending = []
        for t, blocks in queued:
            kept = {i: b.records for i, b in blocks.items() if b.records and not b.tokens}
            if kept:
                pending.append((t, kept))
        payload["pending"] = pending
        payload["receivers"] = {
            i._id: i.receiver.snapshot() for i in self.inputs if hasattr(i.receiver, "snapshot")
        }
        return payload

    def restore(self, payload: dict[str, Any], source: str) -> list[tuple[int, dict[int, Block]]]:
        """Put the checkpointed state back; returns the pending batches to replay first."""
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointMismatch(f"{source}: unknown checkpoint format "
                                     f"{payload.get('format')!r}")
        self.scheduler.restore(payload, source)
        by_id = {i._id: i for i in self.inputs}
        for node_id, snap in payload.get("receivers", {}).items():
            receiver = by_id[node_id].receiver if node_id in by_id else None
            if receiver is not None and hasattr(receiver, "restore"):
                receiver.restore(snap)
        for node_id, tokens in payload.get("unacknowledged", {}).items():
            receiver = by_id[node_id].receiver if node_id in by_id else None
            if receiver is not None and hasattr(receiver, "restore_unacknowledged"):
                receiver.restore_unacknowledged(list(tokens))
        return [(t, {i: Block(records=list(recs), untokened=len(recs))
                     for i, recs in kept.items()})
                for t, kept in payload.get("pending", [])]


def receiver_hooks(pipeline: BatchPipeline, outcome: BatchOutcome,
                   ) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
    """The receiver callbacks a finished batch calls for: done (ack) or failed (nack)."""
    by_id = {i._id: i for i in pipeline.inputs}
    hooks: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    for node_id, tokens in outcome.tokens.items():
        receiver = by_id[node_id].receiver
        if outcome.error is None:
            hook = getattr(receiver, "on_batch_done", None)
            if hook is not None:
                hooks.append((hook, (tokens,)))
        else:
            hook = getattr(receiver, "on_batch_failed", None)
            if hook is not None:
                hooks.append((hook, (tokens, outcome.error)))
    return hooks
