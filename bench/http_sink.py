"""http sink throughput: seq source -> memory -> http sink, one POST per event (Flume's
contract), to a server process that answers 200; rollback/backoff off for 200.

Baseline, same run: a plain aiohttp client POSTing the same bodies one after another to the
same server (what one keep-alive connection allows, no channel, no transaction).

    python bench/http_sink.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report
from bench.support.flow import peer, port_of, timed_flow

TARGET = 500.0
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = {events}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.sinks.k1.type = http
a1.sinks.k1.endpoint = http://127.0.0.1:{port}/events
a1.sinks.k1.rollback.200 = false
a1.sinks.k1.backoff.200 = false
a1.sinks.k1.incrementMetrics.200 = true
a1.sinks.k1.channel = c1
"""


async def baseline(port: int, events: int) -> float:
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for i in range(events):
            async with session.post(f"http://127.0.0.1:{port}/events", data=str(i).encode(),
                                    headers={"Content-Type": "text/plain"}) as resp:
                await resp.read()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2k events instead of 10k")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    events = 2_000 if args.quick else 10_000
    server = peer("http-server")
    try:
        port = port_of(server)
        base_seconds = asyncio.run(baseline(port, events))
        seconds = asyncio.run(timed_flow(CONFIG.format(events=events, port=port), events,
                                         None))
    finally:
        server.kill()
        server.wait()
    print(f"{events:,} events, one POST each: {seconds:.2f} s through seq -> memory -> http "
          f"sink (plain aiohttp POST loop: {base_seconds:.2f} s)")
    report("http_sink", events / seconds, events / base_seconds, "plain aiohttp POST loop",
           TARGET)


if __name__ == "__main__":
    main()
