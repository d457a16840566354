"""exec throughput: ``cat`` of an Apache-log file (a real child process) -> exec source
(batchSize 1000) -> memory -> null.

Baseline, same run: the same ``cat`` child read line by line in Python (``for line in
proc.stdout``), no events.

    python bench/exec_source.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import timed_flow

TARGET = 100_000.0
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.command = cat {path}
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
a1.sinks.k1.channel = c1
"""


def baseline(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    n = sum(1 for _line in proc.stdout)
    proc.wait()
    return n, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k lines instead of 1M")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = 100_000 if args.quick else 1_000_000
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as work:
        path = Path(work) / "access.log"
        path.write_bytes(b"".join(apache_line(i, rng) + b"\n" for i in range(lines)))
        n, base_seconds = baseline(path)
        assert n == lines
        seconds = asyncio.run(timed_flow(CONFIG.format(path=path), lines, None))
    print(f"{lines:,} lines from a cat child: {seconds:.2f} s through exec -> memory -> null "
          f"(Python reading the same child's lines: {base_seconds:.2f} s)")
    report("exec", lines / seconds, lines / base_seconds, "for line in cat's stdout", TARGET)


if __name__ == "__main__":
    main()
