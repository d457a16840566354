"""taildir throughput: an Apache-log file written beforehand, tailed from its start -> taildir
source (batchSize 1000) -> memory -> null; the position file is written as usual.

Baseline, same run: a plain ``for line in f`` over the same file (no events at all).

    python bench/taildir.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import timed_flow

TARGET = 200_000.0
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = g1
a1.sources.r1.filegroups.g1 = {logs}/access\\\\.log.*
a1.sources.r1.positionFile = {work}/taildir_position.json
a1.sources.r1.batchSize = 1000
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
    parser.add_argument("--quick", action="store_true", help="100k lines instead of 1M")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = 100_000 if args.quick else 1_000_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-taildir-") as work:
        logs = Path(work) / "logs"
        logs.mkdir()
        path = logs / "access.log"
        path.write_bytes(b"".join(apache_line(i, rng) + b"\n" for i in range(lines)))
        start = time.perf_counter()
        with open(path, "rb") as f:
            n = sum(1 for _line in f)
        base_seconds = time.perf_counter() - start
        assert n == lines
        config = CONFIG.format(logs=logs, work=work)
        seconds = asyncio.run(timed_flow(config, lines, None))
    print(f"{lines:,} lines in one file: {seconds:.2f} s through taildir -> memory -> null "
          f"(raw 'for line in f': {base_seconds:.2f} s)")
    report("taildir", lines / seconds, lines / base_seconds, "raw for-line-in-file read",
           TARGET)


if __name__ == "__main__":
    main()
