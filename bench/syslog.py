"""syslog throughput: one TCP client (another process) sends RFC 5424 messages -> syslogtcp
source (Flume's SyslogUtils parsing: facility, severity, time stamp, host) -> memory -> null.

Baseline, same run: the same client against a bare asyncio server that only counts the
newline-framed messages (framing and loopback TCP, no parsing, no events).

    python bench/syslog.py [--quick] [--multiport]
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
a1.sources.r1.type = {type}
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.{port_key} = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 100000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""



def message(i: int, rng: random.Random) -> bytes:
    second = i // 500  # 500 messages a second
    stamp = f"2024-03-01T10:{second // 60 % 60:02d}:{second % 60:02d}.{i % 1000:03d}Z"
    return (f"<{rng.randrange(192)}>1 {stamp} web-{i % 8} httpd {1000 + i % 50} - - ".encode()
            + apache_line(i, rng) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50k messages instead of 300k")
    parser.add_argument("--multiport", action="store_true", help="multiport_syslogtcp instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = 50_000 if args.quick else 300_000
    rng = random.Random(1)
    kind, port_key = (("multiport_syslogtcp", "ports") if args.multiport
                      else ("syslogtcp", "port"))
    with tempfile.TemporaryDirectory(prefix="bench-syslog-") as work:
        data = Path(work) / "messages"
        data.write_bytes(b"".join(message(i, rng) for i in range(count)))

        server = peer("lines-server", "0")
        try:
            client = peer("tcp", "127.0.0.1", str(port_of(server)), str(data), "0")
            base_seconds = float(client.communicate()[0])
        finally:
            server.kill()
            server.wait()

        port = free_port()

        async def drive(_agent: object) -> None:
            client = peer("tcp", "127.0.0.1", str(port), str(data), "0")
            await asyncio.to_thread(client.communicate)

        config = CONFIG.format(type=kind, port_key=port_key, port=port)
        seconds = asyncio.run(timed_flow(config, count, drive))
    print(f"{count:,} RFC 5424 messages over one connection: {seconds:.2f} s through {kind} -> "
          f"memory -> null (bare line-counting server: {base_seconds:.2f} s)")
    report(kind if args.multiport else "syslog", count / seconds, count / base_seconds,
           "bare asyncio line-counting server", TARGET)


if __name__ == "__main__":
    main()
