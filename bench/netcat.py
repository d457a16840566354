"""netcat throughput: one TCP client (another process) sends Apache-log lines and reads the
``OK`` per line (``ack-every-event``, Flume's default) -> netcat source -> memory -> null.

Baseline, same run: the same client against a bare asyncio server that counts lines and
answers ``OK`` per line, no events at all (what loopback TCP and the ack protocol cost).

    python bench/netcat.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import free_port, peer, port_of, timed_flow

TARGET = 50_000.0
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.max-line-length = 1024
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50k lines instead of 300k")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = 50_000 if args.quick else 300_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-netcat-") as work:
        data = Path(work) / "lines"
        data.write_bytes(b"".join(apache_line(i, rng) + b"\n" for i in range(lines)))

        server = peer("lines-server", "1")
        try:
            client = peer("tcp", "127.0.0.1", str(port_of(server)), str(data), str(lines))
            base_seconds = float(client.communicate()[0])
        finally:
            server.kill()
            server.wait()

        port = free_port()

        async def drive(_agent: object) -> None:
            client = peer("tcp", "127.0.0.1", str(port), str(data), str(lines))
            await asyncio.to_thread(client.communicate)

        seconds = asyncio.run(timed_flow(CONFIG.format(port=port), lines, drive))
    print(f"{lines:,} lines over one connection, each acked: {seconds:.2f} s through netcat -> "
          f"memory -> null (bare line-counting server: {base_seconds:.2f} s)")
    report("netcat", lines / seconds, lines / base_seconds, "bare asyncio OK-per-line server",
           TARGET)


if __name__ == "__main__":
    main()
