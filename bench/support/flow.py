"""Run an agent from a configuration text in this process and time how long its sink takes
to drain a known number of events; run a peer (client or server) as a separate process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime.graph import build_agent
from bench.common import apache_line

ROOT = Path(__file__).resolve().parents[2]
NULL_SINK = "type = null\nbatchSize = 1000"


def one_hop(source: str, sink: str = NULL_SINK, *, transaction: int = 1000) -> str:
    """Agent a1: source r1 -> memory channel c1 (100k events, ``transaction`` per take) ->
    sink k1. ``source`` and ``sink`` are their settings, one ``key = value`` a line, without
    the ``a1.sources.r1.`` / ``a1.sinks.k1.`` prefix."""
    def block(prefix: str, settings: str) -> list[str]:
        return [f"{prefix}.{line.strip()}" for line in settings.strip().splitlines()]
    return "\n".join(["a1.sources = r1", "a1.channels = c1", "a1.sinks = k1",
                      *block("a1.sources.r1", source), "a1.sources.r1.channels = c1",
                      "a1.channels.c1.type = memory", "a1.channels.c1.capacity = 100000",
                      f"a1.channels.c1.transactionCapacity = {transaction}",
                      *block("a1.sinks.k1", sink), "a1.sinks.k1.channel = c1", ""])


def sized(parser: argparse.ArgumentParser, quick: int, full: int,
          what: str) -> tuple[int, argparse.Namespace]:
    """Parse a bench's arguments (``--quick``: ``quick`` ``what`` instead of ``full``) and
    keep the agent's logging to warnings."""
    parser.add_argument("--quick", action="store_true", help=f"{quick:,} {what} instead of "
                        f"{full:,}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    return (quick if args.quick else full), args


def write_apache_log(path: Path, lines: int) -> None:
    """``lines`` Apache combined log lines (the same ones on every run) into ``path``."""
    rng = random.Random(1)
    path.write_bytes(b"".join(apache_line(i, rng) + b"\n" for i in range(lines)))


Drive = Callable[[Any], Coroutine[Any, Any, None]]


async def timed_flow(config: str, expected: int, drive: Drive | None,
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


def peer_seconds(server: list[str], client: Callable[[int], list[str]]) -> float:
    """A baseline: start the ``server`` peer, run the ``client`` peer against its port (the
    client prints the seconds it took), stop the server."""
    proc = peer(*server)
    try:
        return float(peer(*client(port_of(proc))).communicate()[0])
    finally:
        proc.kill()
        proc.wait()


def driver(client: list[str]) -> Drive:
    """A ``timed_flow`` drive that runs the ``client`` peer to its end."""
    async def drive(_agent: Any) -> None:
        await asyncio.to_thread(peer(*client).communicate)
    return drive
