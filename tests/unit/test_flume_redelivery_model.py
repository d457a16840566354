"""Model check of pull exactly-once: the real ledger against a model agent, under every
schedule hypothesis finds of polls, batches, checkpoints, acks, consumer crashes, agent
restarts and broken connections. Whatever happens, once the pipeline drains every event is
counted exactly once.

The model agent is a SparkSink on a durable channel: it serves batches from the head of its
queue under fresh sequence numbers, commits a batch on an ack it knows (else answers
"unknown"), rolls back what its vanished poller held, and on a restart replays every
uncommitted batch. The model consumer is the pull receiver's protocol around the ledger: a
batch is cut, counted, checkpointed (the ledger's snapshot and the batch's tokens), then its
tokens are acked and settled; a crash resumes from the newest checkpoint.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.flume.redelivery import PullToken, RedeliveryLedger

ADDRESS = "agent:1"


def ev(i: int) -> dict[str, Any]:
    return {"headers": {"n": str(i)}, "body": b"%d" % i}


class Agent:
    def __init__(self, events: int) -> None:
        self.queue = list(range(events))
        self.out: dict[str, list[int]] = {}
        self.run = 0
        self.served = 0
        self.down = False

    def serve(self, n: int) -> tuple[str, list[int]] | None:
        if self.down or not self.queue:
            return None
        self.served += 1
        seq = f"{self.run}-{self.served}"
        self.out[seq], self.queue = self.queue[:n], self.queue[n:]
        return seq, self.out[seq]

    def ack(self, seq: str, reply_lost: bool) -> bool:
        """True: the reply proves the commit."""
        if self.down:
            return False
        committed = self.out.pop(seq, None) is not None
        return committed and not reply_lost

    def roll_back_all(self) -> None:
        """The poller vanished (its grace is over), or a restart replays the channel."""
        for ids in self.out.values():
            self.queue.extend(ids)
        self.queue.sort()  # rolled-back events keep their original order
        self.out = {}


@dataclass
class Checkpoint:
    counted: collections.Counter[int]
    snapshot: dict[str, Any]
    tokens: list[PullToken]


@dataclass
class Consumer:
    ledger: RedeliveryLedger = field(default_factory=RedeliveryLedger)
    counted: collections.Counter[int] = field(default_factory=collections.Counter)
    buffer: list[tuple[list[int], PullToken]] = field(default_factory=list)
    cut: list[list[tuple[list[int], PullToken]]] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    ack_log: set[tuple[str, str]] = field(default_factory=set)

    def receive(self, seq: str, ids: list[int]) -> None:
        events, token = self.ledger.admit(ADDRESS, seq, [ev(i) for i in ids])
        self.buffer.append(([int(e["body"]) for e in events], token))

    def cut_batch(self) -> None:
        self.cut.append(self.buffer)
        self.buffer = []

    def run_batch(self, agent: Agent, reply_lost: bool = False, acks: bool = True,
                  log: bool = True) -> None:
        """Count, checkpoint, ack: the order the engine keeps. ``acks``/``log`` False: the
        process dies right after the checkpoint, or after the agent committed the acks but
        before their proofs were logged."""
        if not self.cut:
            return
        batch = self.cut.pop(0)
        for ids, _ in batch:
            self.counted.update(ids)
        tokens = [t for _, t in batch]
        self.checkpoint = Checkpoint(self.counted.copy(), self.ledger.snapshot(), tokens)
        if not acks:
            return
        for token in tokens:
            proven = agent.ack(token.sequence, reply_lost)
            if proven and log:
                self.ack_log.add(token.key)
            self.ledger.settled(token, proven)

    def crash(self) -> Consumer:
        again = Consumer(ack_log=self.ack_log)
        if self.checkpoint is not None:
            again.counted = self.checkpoint.counted.copy()
            again.ledger.restore(self.checkpoint.snapshot)
            again.ledger.resume(self.checkpoint.tokens, self.ack_log)
            again.checkpoint = self.checkpoint
        return again


ACTIONS = ("poll", "poll", "poll", "cut", "run", "run", "run_reply_lost", "consumer_crash",
           "crash_before_acks", "crash_before_ack_log", "agent_restart", "agent_down",
           "agent_up", "connection_blip")


def simulate(events: int, batch: int, actions: list[str]) -> collections.Counter[int]:
    agent = Agent(events)
    consumer = Consumer()
    for action in actions:
        if action == "poll":
            served = agent.serve(batch)
            if served is not None:
                consumer.receive(*served)
        elif action == "cut":
            consumer.cut_batch()
        elif action in ("run", "run_reply_lost"):
            consumer.run_batch(agent, reply_lost=action == "run_reply_lost")
        elif action in ("consumer_crash", "crash_before_acks", "crash_before_ack_log"):
            if action != "consumer_crash":
                consumer.cut_batch()
                consumer.run_batch(agent, acks=action == "crash_before_ack_log", log=False)
            consumer = consumer.crash()
            agent.roll_back_all()  # the vanished poller's batches, after the close grace
        elif action == "agent_restart":
            agent.roll_back_all()
            agent.run += 1
            agent.down = False
            consumer.ledger.arm(ADDRESS)
        elif action == "agent_down":
            agent.down = True
            consumer.ledger.arm(ADDRESS)
        elif action == "agent_up" and agent.down:
            agent.roll_back_all()
            agent.run += 1
            agent.down = False
        elif action == "connection_blip":
            consumer.ledger.arm(ADDRESS)
            agent.roll_back_all()
    if agent.down:  # it comes back
        agent.roll_back_all()
        agent.run += 1
        agent.down = False
    for _ in range(4 * events + 10):  # drain: nothing fails any more
        if not (agent.queue or agent.out or consumer.buffer or consumer.cut):
            break
        while (served := agent.serve(batch)) is not None:
            consumer.receive(*served)
        consumer.cut_batch()
        while consumer.cut:
            consumer.run_batch(agent)
    assert not (agent.queue or agent.out), "the pipeline did not drain"
    return consumer.counted


@given(st.integers(1, 12), st.integers(1, 5), st.lists(st.sampled_from(ACTIONS), max_size=40))
@settings(max_examples=1000, deadline=None)
def test_every_event_is_counted_exactly_once_whatever_fails(
        events: int, batch: int, actions: list[str]) -> None:
    counted = simulate(events, batch, actions)
    assert counted == collections.Counter(range(events))


def test_the_crash_the_chaos_suite_found() -> None:
    """A copy served by a restarted agent while the first is in flight; the first is counted
    and settles unproven; the consumer dies before the copy is checkpointed."""
    actions = ["poll", "agent_restart", "poll", "cut", "run", "cut", "consumer_crash"]
    assert simulate(2, 2, actions) == collections.Counter(range(2))
