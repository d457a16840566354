"""A UDP source's throughput: an agent built in this process, a sender process pacing
datagrams at it (``peers udp``), and the events its sink drained once they stop coming.

UDP may drop what a busy receiver cannot take, so the flow is not timed to a known count:
the rate is what the sink drained divided by the time from the first datagram until the
last event drained, and what was lost is reported beside it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime.graph import build_agent
from bench.support.flow import peer


@dataclass
class UdpRun:
    sent: int
    drained: int
    seconds: float  # first datagram until the last event drained
    send_seconds: float  # what the sender alone took (its pacing): the ceiling

    @property
    def rate(self) -> float:
        return self.drained / self.seconds

    @property
    def ceiling(self) -> float:
        return self.sent / self.send_seconds


async def udp_flow(config: str, port: int, data: Path, sent: int, *, sink: str = "k1",
                   source: str = "r1", quiet: float = 0.5) -> UdpRun:
    result = load_text(config, "a1")
    assert result.config is not None, [str(i) for i in result.issues]
    ctx = BuildContext()
    agent = build_agent(result.config, ctx)
    drained = ctx.metrics.sink(sink).counters
    received = ctx.metrics.source(source).counters
    await agent.start()
    try:
        sender = peer("udp", "127.0.0.1", str(port), str(data))
        sending = asyncio.create_task(asyncio.to_thread(sender.communicate))
        while not received.get("EventReceivedCount", 0) and not sending.done():
            await asyncio.sleep(0.001)
        start = time.perf_counter()  # the first datagram is in (the sender's start-up not)
        out, _ = await sending
        last_count, last_change = -1, time.perf_counter()
        while time.perf_counter() - last_change < quiet:
            count = drained.get("EventDrainSuccessCount", 0)
            if count != last_count:
                last_count, last_change = count, time.perf_counter()
            if count >= sent:
                break
            await asyncio.sleep(0.002)
        return UdpRun(sent, last_count, last_change - start, float(out))
    finally:
        await agent.stop(grace=1)
