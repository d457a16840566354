"""netcat throughput: one TCP client (another process) sends Apache-log lines and reads the
``OK`` per line (``ack-every-event``, Flume's default) -> netcat source -> memory -> null.

Baseline, same run: the same client against a bare asyncio server that counts lines and
answers ``OK`` per line, no events at all (what loopback TCP and the ack protocol cost).

    python bench/netcat.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report
from bench.support.flow import (
    driver,
    free_port,
    one_hop,
    peer_seconds,
    sized,
    timed_flow,
    write_apache_log,
)

TARGET = 50_000.0
SOURCE = """
type = netcat
bind = 127.0.0.1
port = {port}
max-line-length = 1024
"""


def main() -> None:
    lines, _args = sized(argparse.ArgumentParser(description=__doc__), 50_000, 300_000,
                         "lines")
    with tempfile.TemporaryDirectory(prefix="bench-netcat-") as work:
        data = Path(work) / "lines"
        write_apache_log(data, lines)
        base_seconds = peer_seconds(["lines-server", "1"], lambda p: [
            "tcp", "127.0.0.1", str(p), str(data), str(lines)])
        port = free_port()
        drive = driver(["tcp", "127.0.0.1", str(port), str(data), str(lines)])
        config = one_hop(SOURCE.format(port=port), transaction=10_000)
        seconds = asyncio.run(timed_flow(config, lines, drive))
    print(f"{lines:,} lines over one connection, each acked: {seconds:.2f} s through netcat -> "
          f"memory -> null (bare line-counting server: {base_seconds:.2f} s)")
    report("netcat", lines / seconds, lines / base_seconds, "bare asyncio OK-per-line server",
           TARGET)


if __name__ == "__main__":
    main()
