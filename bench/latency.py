"""End-to-end latency: a file landing in the spool directory -> its lines in the consumer's
output, at 20,000 lines/s, batch interval 1 s. Target: p99 <= batch interval + 250 ms.

A real ``flume-agent`` process (the seed spooldir -> avro configuration, batch sizes raised
with -D) pushes to a consumer running in this process; a ``foreachRDD`` output records, for
every line, the time it was output minus the time its file was renamed into the spool
directory (known from the ``file`` header the source adds). Baseline in the same run: the
consumer alone, fed by appendBatch calls straight from this process (no agent, no files).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import apache_line, report  # noqa: E402
from consumer import SparkContext  # noqa: E402
from consumer.flume import FlumeUtils  # noqa: E402
from consumer.streaming import StreamingContext  # noqa: E402
from protocol.schemas import AVRO_SOURCE_PROTOCOL  # noqa: E402
from protocol.transport import RpcClient  # noqa: E402

RATE = 20_000
TICK = 0.1  # one file (or one appendBatch) every 100 ms


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Consumer:
    """The consumer side: records output time - landing time of every line."""

    def __init__(self, port: int, landed: dict[str, float]) -> None:
        self.landed = landed
        self.latencies: list[float] = []
        self.count = 0
        self.ssc = StreamingContext(SparkContext(appName="latency"), 1)
        stream = FlumeUtils.createStream(self.ssc, "127.0.0.1", port)
        stream.foreachRDD(self._record)

    def _record(self, rdd: Any) -> None:
        now = time.time()
        for headers, _body in rdd.collect():
            self.latencies.append(now - self.landed[headers["file"]])
        self.count += rdd.count()

    def wait_for(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < n and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.count < n:
            raise RuntimeError(f"only {self.count} of {n} lines arrived")


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return (ordered[len(ordered) // 2] * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000)


def through_agent(seconds: float) -> tuple[float, float]:
    per_tick = int(RATE * TICK)
    files = int(seconds / TICK)
    rng = random.Random(1)
    lines = [apache_line(i, rng).decode() for i in range(per_tick)]
    with tempfile.TemporaryDirectory() as tmp:
        spool, staging = Path(tmp, "spool"), Path(tmp, "staging")
        spool.mkdir()
        staging.mkdir()
        port = _free_port()
        landed: dict[str, float] = {}
        consumer = Consumer(port, landed)
        consumer.ssc.start()
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "-f", str(ROOT / "configs/spooldir-avro.conf"),
             "-n", "a1", f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}",
             "-Da1.sources.r1.batchSize=1000", "-Da1.sinks.k1.batch-size=1000",
             "-Da1.channels.c1.capacity=100000", "-Da1.channels.c1.transactionCapacity=1000",
             "-Dflume.root.logger=WARN,console"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # agent start-up is not what we measure
            start = time.monotonic()
            for i in range(files):
                name = f"access-{i:05d}.log"
                (staging / name).write_text("\n".join(lines) + "\n")
                path = spool / name
                landed[str(path)] = time.time()
                os.rename(staging / name, path)
                time.sleep(max(0.0, start + (i + 1) * TICK - time.monotonic()))
            consumer.wait_for(files * per_tick, 60)
        finally:
            agent.terminate()
            agent.wait(20)
            consumer.ssc.stop(stopSparkContext=False)
    return _percentiles(consumer.latencies)


def consumer_alone(seconds: float) -> tuple[float, float]:
    per_tick = int(RATE * TICK)
    port = _free_port()
    landed: dict[str, float] = {}
    consumer = Consumer(port, landed)
    consumer.ssc.start()
    rng = random.Random(1)
    bodies = [apache_line(i, rng) for i in range(per_tick)]

    async def send() -> None:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
        start = time.monotonic()
        for i in range(int(seconds / TICK)):
            key = f"batch-{i}"
            landed[key] = time.time()
            await client.call("appendBatch", {"events": [
                {"headers": {"file": key}, "body": b} for b in bodies]})
            await asyncio.sleep(max(0.0, start + (i + 1) * TICK - time.monotonic()))
        await client.close()

    thread = threading.Thread(target=lambda: asyncio.run(send()))
    thread.start()
    thread.join()
    consumer.wait_for(int(seconds / TICK) * per_tick, 60)
    consumer.ssc.stop(stopSparkContext=False)
    return _percentiles(consumer.latencies)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else 10.0
    b50, b99 = consumer_alone(seconds)
    print(f"consumer alone (appendBatch every 100 ms): p50 {b50:.0f} ms, p99 {b99:.0f} ms")
    p50, p99 = through_agent(seconds)
    print(f"file landing -> consumer output at {RATE:,} lines/s: p50 {p50:.0f} ms, "
          f"p99 {p99:.0f} ms (target p99 <= 1250 ms)")
    report("latency_p99", p99, b99, "consumer alone p99", 1250, metric="ms")


if __name__ == "__main__":
    main()
