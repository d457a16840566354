"""Run an agent from a configuration text in this process and time how long its sink takes
to drain a known number of events; run a peer (client or server) as a separate process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime.graph import build_agent

ROOT = Path(__file__).resolve().parents[2]


async def timed_flow(config: str, expected: int, drive: Callable[[Any], Awaitable[None]] | None,
                     *, sink: str = "k1", agent_name: str = "a1",
                     timeout: float = 300.0) -> float:
    """Seconds from the agent's start until ``sink`` drained ``expected`` events; ``drive``
    (given the started agent) feeds the input concurrently."""
    result = load_text(config, agent_name)
    assert result.config is not None, [str(i) for i in result.issues]
    ctx = BuildContext()
    agent = build_agent(result.config, ctx)
    drained = ctx.metrics.sink(sink).counters
    start = time.perf_counter()
    await agent.start()
    task = asyncio.create_task(drive(agent)) if drive is not None else None
    try:
        while drained.get("EventDrainSuccessCount", 0) < expected:
            if task is not None and task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"drained {drained.get('EventDrainSuccessCount', 0)} of "
                                   f"{expected} events in {timeout:g} s")
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - start
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await agent.stop(grace=1)
    return elapsed


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peer(*args: str) -> subprocess.Popen[bytes]:
    """``python -m bench.support.peers ARGS``: a client or server that is not this process."""
    return subprocess.Popen([sys.executable, "-m", "bench.support.peers", *args], cwd=ROOT,
                            stdout=subprocess.PIPE)


def port_of(proc: subprocess.Popen[bytes]) -> int:
    """A server peer prints its port on its first line."""
    assert proc.stdout is not None
    return int(proc.stdout.readline())


def free_udp_port() -> int:
    """A loopback UDP port nobody has bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
