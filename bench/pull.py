"""Pull model throughput: an agent's SparkSink (separate process, memory channel pre-filled)
drained by the consumer's polling receiver, maxBatchSize 1000, parallelism 5.

Baseline in the same run: pushing the same events with appendBatch between two processes
(``bench/rpc_throughput.py``'s loopback measurement). Each figure is the best of 3 runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.channels.memory import MemoryChannel
from agent.sinks.spark import SparkSink
from bench.common import apache_line, report
from bench.rpc_throughput import REPEAT, loopback
from common.clock import SystemClock
from consumer.engine.receiver import BlockBuffer, ReceiverContext
from consumer.flume.receivers import FlumePollingReceiver
from protocol.event import Event


def agent(n: int, port_q: Any) -> None:
    async def main() -> None:
        ch = MemoryChannel("c1", capacity=n, transaction_capacity=1000)
        rng = random.Random(1)
        for start in range(0, n, 1000):
            tx = ch.transaction()
            tx.begin()
            for i in range(start, min(n, start + 1000)):
                tx.put(Event({"timestamp": "1700000000000", "host": "web-01"},
                             apache_line(i, rng)))
            tx.commit()
            tx.close()
        sink = SparkSink("k1", "127.0.0.1", 0, threads=10)
        sink.channel = ch
        await sink.start()
        port_q.put(sink.port)
        await asyncio.Event().wait()

    asyncio.run(main())


class _Ssc:
    checkpointDir = None


def pull(n: int) -> float:
    q: Any = mp.Queue()
    proc = mp.Process(target=agent, args=(n, q), daemon=True)
    proc.start()
    port = q.get(timeout=60)
    buffer = BlockBuffer()

    async def main() -> float:
        receiver = FlumePollingReceiver(_Ssc(), [("127.0.0.1", port)], 1000, 5, lambda b: b)
        ctx = ReceiverContext(0, 1000, SystemClock(), buffer)
        start = time.perf_counter()
        await receiver.start(ctx)
        while buffer.pending_count() < n:
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - start
        await receiver.stop()
        return elapsed

    elapsed = asyncio.run(main())
    proc.terminate()
    assert buffer.pending_count() == n
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 50_000 if args.quick else 200_000
    base = max(loopback(n // 1000, False)[0] for _ in range(REPEAT))
    print(f"push, appendBatch between 2 processes: {base:,.0f} events/s")
    value = max(pull(n) for _ in range(REPEAT))
    print(f"pull, SparkSink -> polling receiver: {value:,.0f} events/s")
    report("pull", value, base, "push appendBatch", 150_000)


if __name__ == "__main__":
    main()
