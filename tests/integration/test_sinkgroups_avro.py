"""Sink groups of real Avro sinks against real Avro sources, in one asyncio loop.

The agent is built from configuration text and run by its real runners; the sink processors
take their penalties and back-offs from a manual clock, so "the penalty is not over yet" and
"now it is" are exact steps of the test rather than waits.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from agent.channels.memory import MemoryChannel
from agent.components import ManualClock
from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime import Agent, BackoffPolicy, build_agent
from agent.sinkprocessors import FailoverSinkProcessor, LoadBalancingSinkProcessor
from agent.sources.avro import AvroSource
from tests.agent_helpers import drain, fill, processor, spec

FAST = BackoffPolicy(step=0.02, maximum=0.1, error=0.02)
BATCH = 100


class Peer:
    """An Avro source on a fixed port writing into its own channel; can go down and up."""

    def __init__(self, name: str) -> None:
        validated = spec("source", name, "avro", {"bind": "127.0.0.1", "port": 0})
        self.source = AvroSource.from_spec(validated, BuildContext())
        self.channel = MemoryChannel(f"{name}-out", capacity=100_000,
                                     transaction_capacity=100_000)  # drained at once
        self.source.channel_processor = processor(self.channel)
        self.received: list[bytes] = []

    @property
    def port(self) -> int:
        return self.source.port

    async def up(self) -> Peer:
        await self.source.start()
        return self

    async def down(self) -> None:
        await self.source.stop()

    def collect(self) -> list[bytes]:
        """Move what arrived since the last call into ``received``; return the new bodies."""
        new = [event.body for event in drain(self.channel)]
        self.received.extend(new)
        return new


def agent_config(kind: str, ports: list[int], extra: str) -> str:
    names = [f"k{i + 1}" for i in range(len(ports))]
    lines = [
        "a1.channels = c1", f"a1.sinks = {' '.join(names)}", "a1.sinkgroups = g1",
        "a1.channels.c1.type = memory", "a1.channels.c1.capacity = 100000",
        f"a1.channels.c1.transactionCapacity = {BATCH}",
        f"a1.sinkgroups.g1.sinks = {' '.join(names)}",
        f"a1.sinkgroups.g1.processor.type = {kind}",
    ]
    for name, port in zip(names, ports, strict=True):
        lines += [f"a1.sinks.{name}.type = avro", f"a1.sinks.{name}.channel = c1",
                  f"a1.sinks.{name}.hostname = 127.0.0.1", f"a1.sinks.{name}.port = {port}",
                  f"a1.sinks.{name}.batch-size = {BATCH}",
                  f"a1.sinks.{name}.connect-timeout = 2000"]
    return "\n".join(lines) + "\n" + extra


def build(text: str, clock: ManualClock) -> Agent:
    result = load_text(text, "a1")
    assert result.config is not None, [str(i) for i in result.issues]
    agent = build_agent(result.config, BuildContext(clock=clock))
    agent.policy = FAST
    return agent


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def put(channel: MemoryChannel, n: int, start: int = 0) -> None:
    """``fill`` in transactions of at most BATCH events (the channel's transactionCapacity)."""
    for first in range(start, start + n, BATCH):
        fill(channel, min(BATCH, start + n - first), first)


def bodies(start: int, n: int) -> list[bytes]:
    return [f"event {i}".encode() for i in range(start, start + n)]


async def send_and_settle(agent: Agent, peers: list[Peer], start: int, n: int) -> list[int]:
    """Put n events into the agent's channel, wait until all were delivered somewhere;
    returns how many each peer received."""
    channel = agent.channels["c1"]
    assert isinstance(channel, MemoryChannel)
    put(channel, n, start)
    got = [0] * len(peers)

    def delivered() -> bool:
        for i, peer in enumerate(peers):
            got[i] += len(peer.collect())
        return sum(got) >= n

    await wait_for(delivered)
    await wait_for(lambda: channel.size() == 0 and channel.in_flight == 0)
    return got


def batch_owners(peers: list[Peer], start: int, n: int) -> list[int]:
    """Which peer received each batch of events ``start .. start + n`` (in channel order)."""
    owners: dict[int, int] = {}
    for index, peer in enumerate(peers):
        for body in peer.received:
            number = int(body.split()[1])
            if start <= number < start + n:
                batch = (number - start) // BATCH
                assert owners.setdefault(batch, index) == index, f"batch {batch} was split"
    return [owners[b] for b in range(n // BATCH)]


def assert_each_exactly_once(peers: list[Peer], total: int) -> None:
    everything = Counter(body for peer in peers for body in peer.received)
    assert everything == Counter(bodies(0, total))


def test_failover_switches_to_the_backup_and_returns_after_the_penalty() -> None:
    async def main() -> None:
        clock = ManualClock()
        backup, preferred = await Peer("backup").up(), await Peer("preferred").up()
        agent = build(agent_config("failover", [backup.port, preferred.port], """
a1.sinkgroups.g1.processor.priority.k1 = 5
a1.sinkgroups.g1.processor.priority.k2 = 10
a1.sinkgroups.g1.processor.maxpenalty = 10000
"""), clock)
        group = agent.processors["g1"]
        assert isinstance(group, FailoverSinkProcessor)
        peers = [backup, preferred]
        await agent.start()
        try:
            # Both up: the higher priority (k2 -> preferred) takes everything.
            assert await send_and_settle(agent, peers, 0, 500) == [0, 500]
            # Preferred goes down: its batch is rolled back and the backup gets it all.
            await preferred.down()
            assert await send_and_settle(agent, peers, 500, 500) == [500, 0]
            assert [p.sink.name for p in group.parked] == ["k2"]
            # Back up, but its penalty (1 failure: 2 s) is not over: still the backup.
            await preferred.up()
            clock.advance(1.9)
            assert await send_and_settle(agent, peers, 1000, 500) == [500, 0]
            # Penalty over: the preferred sink is tried first again and keeps the traffic.
            clock.advance(0.2)
            assert await send_and_settle(agent, peers, 1500, 500) == [0, 500]
            assert group.parked == [] and group.active is agent.sinks["k2"]
        finally:
            await agent.stop(grace=1)
            await backup.down()
            await preferred.down()
        assert_each_exactly_once(peers, 2000)
        # Arrival order per peer follows the channel's order (rolled-back batches go first).
        for peer in peers:
            numbers = [int(b.split()[1]) for b in peer.received]
            assert numbers == sorted(numbers)
        assert agent.sinks["k2"].counter.counters["EventWriteFail"] == 1  # type: ignore[attr-defined]

    asyncio.run(main())


def test_failover_penalty_doubles_while_the_preferred_peer_stays_down() -> None:
    async def main() -> None:
        clock = ManualClock()
        backup, preferred = await Peer("backup").up(), await Peer("preferred").up()
        agent = build(agent_config("failover", [backup.port, preferred.port], """
a1.sinkgroups.g1.processor.priority.k1 = 5
a1.sinkgroups.g1.processor.priority.k2 = 10
a1.sinkgroups.g1.processor.maxpenalty = 5000
"""), clock)
        group = agent.processors["g1"]
        assert isinstance(group, FailoverSinkProcessor)
        peers = [backup, preferred]
        k2 = agent.sinks["k2"]
        await preferred.down()
        await agent.start()
        try:
            total = 0
            # Each time the penalty runs out, k2 is retried once, fails, and is parked for
            # 2 s, 4 s, then maxpenalty (5 s); the batch always ends up at the backup.
            for failures, penalty in ((1, 2.0), (2, 4.0), (3, 5.0)):
                assert await send_and_settle(agent, peers, total, 300) == [300, 0]
                total += 300
                assert k2.counter.counters["EventWriteFail"] == failures  # type: ignore[attr-defined]
                clock.advance(penalty - 0.1)
                assert await send_and_settle(agent, peers, total, 300) == [300, 0]
                total += 300
                assert k2.counter.counters["EventWriteFail"] == failures  # type: ignore[attr-defined]
                clock.advance(0.2)
        finally:
            await agent.stop(grace=1)
            await backup.down()
        assert_each_exactly_once(peers, total)

    asyncio.run(main())


def test_load_balance_round_robin_spreads_evenly_and_skips_a_dead_peer() -> None:
    async def main() -> None:
        clock = ManualClock()
        peers = [await Peer(f"p{i}").up() for i in range(3)]
        agent = build(agent_config("load_balance", [p.port for p in peers], """
a1.sinkgroups.g1.processor.selector = round_robin
a1.sinkgroups.g1.processor.backoff = true
a1.sinkgroups.g1.processor.selector.maxTimeOut = 30000
"""), clock)
        group = agent.processors["g1"]
        assert isinstance(group, LoadBalancingSinkProcessor)
        k3 = agent.sinks["k3"]
        channel = agent.channels["c1"]
        assert isinstance(channel, MemoryChannel)
        put(channel, 3000)  # before start: 30 full batches back to back
        await agent.start()
        try:
            await wait_for(lambda: channel.size() == 0 and channel.in_flight == 0)
            assert [len(p.collect()) for p in peers] == [1000, 1000, 1000]
            # p3 dies: one attempt fails (its batch goes to the next sink, k1), then k3 is
            # skipped for its back-off (2 s) and the others alternate. As in Flume's
            # RoundRobinOrderSelector, the head wraps to 0 when the active list shrinks, so
            # k1 also takes the turn right after the failed-over batch: exactly one repeat.
            # Where the head stood (idle polls move it) decides whether the split is 15/15
            # or 16/14, so the order is asserted rather than the counts.
            await peers[2].down()
            got = await send_and_settle(agent, peers, 3000, 3000)
            assert got[2] == 0 and sum(got) == 3000
            owners = batch_owners(peers, 3000, 3000)
            repeats = [i for i in range(1, len(owners)) if owners[i] == owners[i - 1]]
            assert len(repeats) == 1 and owners[repeats[0]] == 0, owners
            assert k3.counter.counters["EventWriteFail"] == 1  # type: ignore[attr-defined]
            # Back-off over, still dead: one more attempt, then 4 s.
            clock.advance(2.1)
            got = await send_and_settle(agent, peers, 6000, 1500)
            assert got[2] == 0
            assert k3.counter.counters["EventWriteFail"] == 2  # type: ignore[attr-defined]
            # Revived, and its back-off over: it gets its share again.
            await peers[2].up()
            clock.advance(4.1)
            got = await send_and_settle(agent, peers, 7500, 3000)
            assert all(900 <= g <= 1100 for g in got), got
            assert k3.counter.counters["EventWriteFail"] == 2  # type: ignore[attr-defined]
        finally:
            await agent.stop(grace=1)
            for peer in peers:
                await peer.down()
        assert_each_exactly_once(peers, 10_500)

    asyncio.run(main())
