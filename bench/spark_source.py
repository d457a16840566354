"""Events/s into Spark through the ``flume`` source (consumer.spark) from 1, 2 and 4 agents.

Each agent is a separate process: a SparkSink on a memory channel pre-filled with Apache
lines (``bench/pull.py``'s agent). Spark runs ``local[2]`` in this process, reads them with
``spark.readStream.format("flume")`` (staging in a temporary directory) into the ``noop`` sink,
so the figure is the source itself: pull, stage, ack, hand Arrow batches to Spark. Each agent
gets 25,000 events per micro-batch; the rate is counted over the micro-batches after the
first (which also starts the query's Python workers), after a warm-up query (JVM warm).

Baseline in the same run: flumelet's own consumer (the polling receiver, parallelism 5,
maxBatchSize 1000) draining the same number of agents holding the same events. The headline
is the 2-agent figure. Skipped, with a line saying so, when the spark extra is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report
from bench.pull import agent as filled_agent
from common.clock import SystemClock
from consumer.engine.receiver import BlockBuffer, ReceiverContext
from consumer.flume.receivers import FlumePollingReceiver

AGENT_COUNTS = (1, 2, 4)
PER_SLOT = 25_000  # events per agent per micro-batch (maxEventsPerTrigger = this x agents)
HEADLINE = 2
TARGET = 50_000  # events/s from 2 agents on this project's 2-core machine


class Agents:
    """``count`` agent processes, each holding ``n`` events."""

    def __init__(self, count: int, n: int) -> None:
        q: Any = mp.Queue()
        self.procs = [mp.Process(target=filled_agent, args=(n, q), daemon=True)
                      for _ in range(count)]
        for p in self.procs:
            p.start()
        self.ports = [q.get(timeout=120) for _ in self.procs]

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
            p.join(10)


class _Ssc:
    _checkpoint_dir = None


def consumer_rate(agents: Agents, total: int) -> float:
    """flumelet's own polling receiver over the same agents."""
    buffer = BlockBuffer()

    async def main() -> float:
        receiver = FlumePollingReceiver(_Ssc(), [("127.0.0.1", p) for p in agents.ports],
                                        1000, 5, lambda b: b)
        start = time.perf_counter()
        await receiver.start(ReceiverContext(0, 1000, SystemClock(), buffer))
        deadline = time.monotonic() + 600
        while buffer.pending_count() < total:
            if time.monotonic() > deadline:
                raise SystemExit("spark_source: flumelet's consumer stalled")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        await receiver.stop()
        return elapsed

    return total / asyncio.run(main())


def spark_rate(spark: Any, agents: Agents, total: int, staging: str) -> float:
    """Events/s over the micro-batches after the first (which starts the query's tasks)."""
    events = (spark.readStream.format("flume")
              .option("addresses", ",".join(agents.addresses))
              .option("stagingDir", staging)
              .option("maxEventsPerTrigger", PER_SLOT * len(agents.ports))
              .load())
    query = events.writeStream.format("noop").trigger(processingTime="0 seconds").start()
    try:
        deadline = time.monotonic() + 600
        while sum(p["numInputRows"] for p in query.recentProgress) < total:
            if time.monotonic() > deadline or query.exception() is not None:
                raise SystemExit(f"spark_source: query stalled: {query.exception()}")
            time.sleep(0.05)
        batches = [p for p in query.recentProgress if p["numInputRows"]][1:]
    finally:
        query.stop()
    start = _epoch_ms(batches[0]["timestamp"])
    end = _epoch_ms(batches[-1]["timestamp"]) + batches[-1]["durationMs"]["triggerExecution"]
    return sum(p["numInputRows"] for p in batches) / ((end - start) / 1000)


def _epoch_ms(timestamp: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def session() -> Any:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    from consumer.spark import FlumeDataSource

    spark = (SparkSession.builder.master("local[2]").appName("bench-spark-source")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.dataSource.register(FlumeDataSource)
    return spark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        reason = f"the spark extra is not installed ({exc.name}): pip install 'flumelet[spark]'"
        print(f"spark_source: skipped: {reason}")
        print(json.dumps({"bench": "spark_source", "value": None, "skipped": reason}))
        return
    n = 4 * PER_SLOT if args.quick else 8 * PER_SLOT  # events per agent
    counts = AGENT_COUNTS[:2] if args.quick else AGENT_COUNTS
    spark = session()
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        warm = Agents(1, 2 * PER_SLOT)
        spark_rate(spark, warm, 2 * PER_SLOT, os.path.join(tmp, "warm-up"))
        warm.stop()
        for count in counts:
            agents = Agents(count, n)
            rate = spark_rate(spark, agents, count * n, os.path.join(tmp, f"agents-{count}"))
            agents.stop()
            agents = Agents(count, n)
            base = consumer_rate(agents, count * n)
            agents.stop()
            results[count] = (rate, base)
            print(f"{count} agent(s) x {n:,} events: Spark flume source {rate:,.0f} events/s; "
                  f"flumelet consumer {base:,.0f} events/s", flush=True)
    spark.stop()
    rate, base = results[HEADLINE]
    report("spark_source", rate, base, f"flumelet consumer, {HEADLINE} agents", TARGET)


if __name__ == "__main__":
    main()
