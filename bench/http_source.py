"""http source throughput: a client process POSTs JSON arrays of 100 events (Flume's
JSONHandler format) on 4 keep-alive connections -> http source -> memory -> null.

Baseline, same run: the same client against a bare aiohttp server that reads each body and
answers 200 (HTTP and loopback cost, no JSON, no events).

    python bench/http_source.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import free_port, peer, port_of, timed_flow

TARGET = 30_000.0
PER_POST = 100
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = http
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50k events instead of 300k")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    events = 50_000 if args.quick else 300_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as work:
        bodies = Path(work) / "bodies"
        with open(bodies, "w") as f:
            for start in range(0, events, PER_POST):
                batch = [{"headers": {"host": f"web-{i % 8}", "timestamp": str(1_700_000_000
                                                                                + i)},
                          "body": apache_line(i, rng).decode()}
                         for i in range(start, start + PER_POST)]
                f.write(json.dumps(batch) + "\n")

        server = peer("http-server")
        try:
            url = f"http://127.0.0.1:{port_of(server)}/"
            base_seconds = float(peer("post", url, str(bodies), "4").communicate()[0])
        finally:
            server.kill()
            server.wait()

        port = free_port()

        async def drive(_agent: object) -> None:
            client = peer("post", f"http://127.0.0.1:{port}/", str(bodies), "4")
            await asyncio.to_thread(client.communicate)

        seconds = asyncio.run(timed_flow(CONFIG.format(port=port), events, drive))
    print(f"{events:,} events in POSTs of {PER_POST}: {seconds:.2f} s through http -> memory "
          f"-> null (bare aiohttp server: {base_seconds:.2f} s)")
    report("http_source", events / seconds, events / base_seconds, "bare aiohttp 200 server",
           TARGET)


if __name__ == "__main__":
    main()
