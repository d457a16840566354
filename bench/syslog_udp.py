"""syslogudp throughput: a sender process paces RFC 5424 messages as datagrams -> syslogudp
source (Flume's SyslogUtils headers) -> memory -> null.

Baseline, same run: the sender's own pace, the most the source could take; datagrams UDP
dropped are reported beside the rate.

    python bench/syslog_udp.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.netcat_udp import run
from bench.syslog import message

TARGET = 10_000.0  # parsing RFC 5424 costs more per datagram than netcatudp's lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k datagrams instead of 200k")

    def line(i: int, rng: random.Random) -> bytes:
        return message(i, rng).rstrip(b"\n")

    run("syslogudp", "host", line, parser.parse_args().quick, TARGET)


if __name__ == "__main__":
    main()
