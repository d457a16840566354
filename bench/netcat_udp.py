"""netcatudp throughput: a sender process paces Apache-log lines as datagrams (one line
each) -> netcatudp source -> memory -> null.

Baseline, same run: the sender's own pace (what it sends per second into the socket), the
most the source could take. UDP drops what a busy receiver cannot take: lost datagrams are
reported beside the rate.

    python bench/netcat_udp.py [--quick]
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
from bench.support.flow import free_udp_port
from bench.support.udp_flow import udp_flow

TARGET = 15_000.0
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = {type}
a1.sources.r1.{bind} = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 200000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""


def run(kind: str, bind_key: str, make_line: object, quick: bool,
        target: float = TARGET) -> None:
    logging.basicConfig(level=logging.WARNING)
    count = 20_000 if quick else 200_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as work:
        data = Path(work) / "lines"
        data.write_bytes(b"".join(make_line(i, rng) + b"\n" for i in range(count)))  # type: ignore[operator]
        port = free_udp_port()
        config = CONFIG.format(type=kind, bind=bind_key, port=port)
        result = asyncio.run(udp_flow(config, port, data, count))
    lost = result.sent - result.drained
    print(f"{result.sent:,} datagrams paced by one sender: {result.drained:,} events through "
          f"{kind} -> memory -> null in {result.seconds:.2f} s ({lost:,} lost by UDP; the "
          f"sender alone: {result.send_seconds:.2f} s)")
    report(kind, result.rate, result.ceiling, "the sender's own pace", target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k datagrams instead of 200k")
    run("netcatudp", "bind", apache_line, parser.parse_args().quick)


if __name__ == "__main__":
    main()
