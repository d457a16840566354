"""spooldir throughput: Apache-log files -> spooldir source -> memory channel -> null sink.

Runs the real agent runtime (config loader, runners, channel processor, memory channel, null
sink) in one process and measures lines/s from start until the null sink has drained every
line. Baseline, same files, same run: a plain ``for line in f`` over them (no events at all).

    python bench/spooldir.py            # 1,000,000 lines in 10 files
    python bench/spooldir.py --quick    # 100,000 lines in 10 files
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import one_hop, timed_flow

TARGET = 250_000.0


def make_files(directory: Path, lines: int, files: int = 10) -> None:
    rng = random.Random(42)
    per_file = lines // files
    for f in range(files):
        start = f * per_file
        body = b"\n".join(apache_line(start + i, rng) for i in range(per_file)) + b"\n"
        (directory / f"access-{f:02d}.log").write_bytes(body)


def baseline(directory: Path) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    for path in sorted(directory.iterdir()):
        with open(path, "rb") as f:
            for _line in f:
                n += 1
    return n, time.perf_counter() - start


def config(spool: Path, batch: int) -> str:
    return one_hop(f"type = spooldir\nspoolDir = {spool}\nbatchSize = {batch}",
                   f"type = null\nbatchSize = {batch}", transaction=batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100k lines instead of 1M")
    parser.add_argument("--batch", type=int, default=1000, help="batchSize everywhere")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lines = 100_000 if args.quick else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="bench-spooldir-"))
    try:
        spool = work / "spool"
        spool.mkdir()
        make_files(spool, lines)
        size = sum(p.stat().st_size for p in spool.iterdir())
        n, base_seconds = baseline(spool)
        assert n == lines
        seconds = asyncio.run(timed_flow(config(spool, args.batch), lines, None))
        print(f"{lines:,} lines ({size / 1e6:.0f} MB) in 10 files, batchSize {args.batch}: "
              f"{seconds:.2f} s through spooldir -> memory -> null "
              f"(raw 'for line in f': {base_seconds:.2f} s)")
        report("spooldir", lines / seconds, n / base_seconds, "raw for-line-in-file read",
               TARGET)  # one event per line: events/s == lines/s
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
