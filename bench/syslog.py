"""syslog throughput: one TCP client (another process) sends RFC 5424 messages -> syslogtcp
source (Flume's SyslogUtils parsing: facility, severity, time stamp, host) -> memory -> null.

Baseline, same run: the same client against a bare asyncio server that only counts the
newline-framed messages (framing and loopback TCP, no parsing, no events).

    python bench/syslog.py [--quick] [--multiport]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import driver, free_port, one_hop, peer_seconds, sized, timed_flow

TARGET = 50_000.0
SOURCE = """
type = {type}
host = 127.0.0.1
{port_key} = {port}
"""


def message(i: int, rng: random.Random) -> bytes:
    second = i // 500  # 500 messages a second
    stamp = f"2024-03-01T10:{second // 60 % 60:02d}:{second % 60:02d}.{i % 1000:03d}Z"
    return (f"<{rng.randrange(192)}>1 {stamp} web-{i % 8} httpd {1000 + i % 50} - - ".encode()
            + apache_line(i, rng) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--multiport", action="store_true", help="multiport_syslogtcp instead")
    count, args = sized(parser, 50_000, 300_000, "messages")
    rng = random.Random(1)
    kind, port_key = (("multiport_syslogtcp", "ports") if args.multiport
                      else ("syslogtcp", "port"))
    with tempfile.TemporaryDirectory(prefix="bench-syslog-") as work:
        data = Path(work) / "messages"
        data.write_bytes(b"".join(message(i, rng) for i in range(count)))
        base_seconds = peer_seconds(["lines-server", "0"], lambda p: [
            "tcp", "127.0.0.1", str(p), str(data), "0"])
        port = free_port()
        drive = driver(["tcp", "127.0.0.1", str(port), str(data), "0"])
        config = one_hop(SOURCE.format(type=kind, port_key=port_key, port=port),
                         transaction=100_000)
        seconds = asyncio.run(timed_flow(config, count, drive))
    print(f"{count:,} RFC 5424 messages over one connection: {seconds:.2f} s through {kind} -> "
          f"memory -> null (bare line-counting server: {base_seconds:.2f} s)")
    report(kind if args.multiport else "syslog", count / seconds, count / base_seconds,
           "bare asyncio line-counting server", TARGET)


if __name__ == "__main__":
    main()
