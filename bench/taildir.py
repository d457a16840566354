"""taildir throughput: an Apache-log file written beforehand, tailed from its start -> taildir
source (batchSize 1000) -> memory -> null; the position file is written as usual.

Baseline, same run: a plain ``for line in f`` over the same file (no events at all).

    python bench/taildir.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report
from bench.support.flow import one_hop, sized, timed_flow, write_apache_log

TARGET = 200_000.0


def source(logs: Path, work: str) -> str:
    return f"""
type = TAILDIR
filegroups = g1
filegroups.g1 = {logs}/access\\\\.log.*
positionFile = {work}/taildir_position.json
batchSize = 1000
"""


def main() -> None:
    lines, _args = sized(argparse.ArgumentParser(description=__doc__), 100_000, 1_000_000,
                         "lines")
    with tempfile.TemporaryDirectory(prefix="bench-taildir-") as work:
        logs = Path(work) / "logs"
        logs.mkdir()
        path = logs / "access.log"
        write_apache_log(path, lines)
        start = time.perf_counter()
        with open(path, "rb") as f:
            n = sum(1 for _line in f)
        base_seconds = time.perf_counter() - start
        assert n == lines
        seconds = asyncio.run(timed_flow(one_hop(source(logs, work)), lines, None))
    print(f"{lines:,} lines in one file: {seconds:.2f} s through taildir -> memory -> null "
          f"(raw 'for line in f': {base_seconds:.2f} s)")
    report("taildir", lines / seconds, lines / base_seconds, "raw for-line-in-file read",
           TARGET)


if __name__ == "__main__":
    main()
