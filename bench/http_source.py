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
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import driver, free_port, one_hop, peer_seconds, sized, timed_flow

TARGET = 30_000.0
PER_POST = 100


def main() -> None:
    events, _args = sized(argparse.ArgumentParser(description=__doc__), 50_000, 300_000,
                          "events")
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
        base_seconds = peer_seconds(["http-server"], lambda p: [
            "post", f"http://127.0.0.1:{p}/", str(bodies), "4"])
        port = free_port()
        drive = driver(["post", f"http://127.0.0.1:{port}/", str(bodies), "4"])
        config = one_hop(f"type = http\nbind = 127.0.0.1\nport = {port}")
        seconds = asyncio.run(timed_flow(config, events, drive))
    print(f"{events:,} events in POSTs of {PER_POST}: {seconds:.2f} s through http -> memory "
          f"-> null (bare aiohttp server: {base_seconds:.2f} s)")
    report("http_source", events / seconds, events / base_seconds, "bare aiohttp 200 server",
           TARGET)


if __name__ == "__main__":
    main()
