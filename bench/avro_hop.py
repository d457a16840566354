"""One Avro hop between two agents: memory channel -> avro sink ==> avro source -> memory -> null.

The sender agent runs in this process (configs/bench/avro-hop-sender.conf) with its channel
filled beforehand with 130-byte Apache lines, so the clock measures only the hop: avro sink
batches of 1000 -> loopback TCP -> the receiver agent, a separate ``flume-agent`` process
(configs/bench/avro-hop-receiver.conf) whose null sink drains its channel. The rate is events
over the time from the sender's start until the receiver's null sink has drained them all
(read from the receiver's HTTP metrics once the sender has every batch acknowledged).

Baseline, same run: raw ``appendBatch`` calls of the same events, encoded the way the avro
sink encodes them, over one connection to another process (``bench/rpc_throughput.py``'s
server): no channels, no agents, the ceiling the hop can approach.

    python bench/avro_hop.py [--quick] [--events N] [--profile]

``--profile`` runs both agents under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import multiprocessing as mp
import os
import pstats
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.config.loader import load_config  # noqa: E402
from agent.registry import BuildContext  # noqa: E402
from agent.runtime.graph import build_agent  # noqa: E402
from bench.common import apache_line, report  # noqa: E402
from bench.rpc_throughput import serve  # noqa: E402
from protocol.codec import encode_event_array  # noqa: E402
from protocol.event import Event  # noqa: E402
from protocol.schemas import AVRO_SOURCE_PROTOCOL  # noqa: E402
from protocol.transport import RpcClient  # noqa: E402

TARGET = 150_000.0
BATCH = 1000
BODY_BYTES = 130
SENDER_CONF = ROOT / "configs" / "bench" / "avro-hop-sender.conf"
RECEIVER_CONF = ROOT / "configs" / "bench" / "avro-hop-receiver.conf"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def metrics(port: int) -> dict[str, dict[str, str]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        data: dict[str, dict[str, str]] = json.load(resp)
        return data


@contextlib.contextmanager
def receiver(port: int, metrics_port: int, profile_to: Path | None) -> Iterator[Any]:
    cmd = [sys.executable]
    if profile_to is not None:
        cmd += ["-m", "cProfile", "-o", str(profile_to)]
    cmd += ["-m", "agent.cli", "-f", str(RECEIVER_CONF), "-n", "receiver",
            f"-Dreceiver.sources.r1.port={port}", "-Dflume.monitoring.type=http",
            f"-Dflume.monitoring.port={metrics_port}", "-Dflume.root.logger=WARN,console"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_listening(port, proc, START_TIMEOUT)
        wait_listening(metrics_port, proc, START_TIMEOUT)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def drained(metrics_port: int) -> int:
    return int(metrics(metrics_port)["SINK.k1"]["EventDrainSuccessCount"])


def sample_batch() -> list[Event]:
    """BATCH distinct Apache lines, each padded or cut to exactly BODY_BYTES."""
    rng = random.Random(1)
    headers = {"timestamp": "1700000000000", "host": "web-01"}
    return [Event(dict(headers), apache_line(i, rng).ljust(BODY_BYTES)[:BODY_BYTES])
            for i in range(BATCH)]


def events(n: int) -> list[Event]:
    batch = sample_batch()
    return [batch[i % BATCH] for i in range(n)]


def raw_rpc(batches: int) -> float:
    """events/s of back-to-back appendBatch calls over one connection to another process."""
    q: Any = mp.Queue()
    proc = mp.Process(target=serve, args=(q, False), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=START_TIMEOUT)
        batch = sample_batch()

        async def run() -> float:
            client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
            try:
                for _ in range(5):  # connect, handshake, warm both processes up
                    await client.call("appendBatch", {}, encoded=encode_event_array(batch))
                start = time.perf_counter()
                for _ in range(batches):  # encoded per call, as the avro sink does
                    answer = await client.call("appendBatch", {},
                                               encoded=encode_event_array(batch))
                    if answer != "OK":
                        raise RuntimeError("baseline server did not answer OK")
                return batches * BATCH / (time.perf_counter() - start)
            finally:
                await client.close()

        return asyncio.run(run())
    finally:
        proc.terminate()
        proc.join(5)


async def send(n: int, port: int) -> tuple[float, float]:
    """Run the sender agent until all ``n`` events are acknowledged; (start, acked) times."""
    result = load_config(SENDER_CONF, "sender", overrides={
        "sender.sinks.k1.port": str(port),
        "sender.channels.c1.capacity": str(max(n, BATCH)),
    })
    if result.config is None:
        raise SystemExit("\n".join(map(str, result.issues)))
    agent = build_agent(result.config, BuildContext())
    channel, sink = agent.channels["c1"], agent.sinks["k1"]
    prepared = events(n)
    for i in range(0, n, BATCH):
        tx = channel.transaction()
        tx.begin()
        for event in prepared[i:i + BATCH]:
            tx.put(event)
        tx.commit()
        tx.close()
    counters = sink.counter.counters  # type: ignore[attr-defined]
    start = time.perf_counter()
    await agent.start()
    try:
        while counters["EventDrainSuccessCount"] < n:
            await asyncio.sleep(0.002)
        acked = time.perf_counter()
    finally:
        await agent.stop(grace=1.0)
    return start, acked


def hop(n: int, profile_dir: Path | None) -> tuple[float, float]:
    """(end-to-end events/s, sender-acknowledged events/s)."""
    port, metrics_port = free_port(), free_port()
    receiver_profile = profile_dir / "receiver.prof" if profile_dir else None
    with receiver(port, metrics_port, receiver_profile):
        profiler = cProfile.Profile() if profile_dir else None
        if profiler:
            profiler.enable()
        start, acked = asyncio.run(send(n, port))
        if profiler and profile_dir:
            profiler.disable()
            profiler.dump_stats(profile_dir / "sender.prof")
        deadline = time.monotonic() + 30
        while (count := drained(metrics_port)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"receiver drained only {count} of {n} events")
            time.sleep(0.002)
        end = time.perf_counter()
        if count != n:
            raise RuntimeError(f"receiver drained {count} events, expected {n}")
    return n / (end - start), n / (acked - start)


def print_profile(path: Path, title: str, limit: int = 18) -> None:
    if not path.exists():
        print(f"(no profile written for {title})")
        return
    print(f"\n=== {title}: top functions by own time ===")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(limit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, help="events to send (default 300k, quick 100k)")
    ap.add_argument("--profile", action="store_true", help="cProfile both agents")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n = args.events or (100_000 if args.quick else 300_000)
    n = max(BATCH, n // BATCH * BATCH)

    repeat = 1 if args.profile else 3  # best of 3: a shared VM's noise only slows runs down
    base = max(raw_rpc(n // BATCH) for _ in range(repeat))
    print(f"baseline: raw appendBatch, 1 connection, 2 processes: {base:,.0f} events/s")
    with tempfile.TemporaryDirectory() as tmp:
        profile_dir = Path(tmp) if args.profile else None
        rate, acked_rate = max(hop(n, profile_dir) for _ in range(repeat))
        print(f"avro hop, {n:,} events of 130 bytes, batch {BATCH}: {rate:,.0f} events/s end "
              f"to end ({acked_rate:,.0f} events/s acknowledged to the sender; best of "
              f"{repeat})")
        if profile_dir:
            print_profile(profile_dir / "sender.prof", "sender (this process)")
            print_profile(profile_dir / "receiver.prof", "receiver (flume-agent process)")
    report("avro_hop", rate, base, "raw appendBatch RPC, 1 connection, 2 processes", TARGET)


if __name__ == "__main__":
    main()
