"""exec throughput: ``cat`` of an Apache-log file (a real child process) -> exec source
(batchSize 1000) -> memory -> null.

Baseline, same run: the same ``cat`` child read line by line in Python (``for line in
proc.stdout``), no events.

    python bench/exec_source.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import report
from bench.support.flow import one_hop, sized, timed_flow, write_apache_log

TARGET = 100_000.0


def baseline(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    n = sum(1 for _line in proc.stdout)
    proc.wait()
    return n, time.perf_counter() - start


def main() -> None:
    lines, _args = sized(argparse.ArgumentParser(description=__doc__), 100_000, 1_000_000,
                         "lines")
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as work:
        path = Path(work) / "access.log"
        write_apache_log(path, lines)
        n, base_seconds = baseline(path)
        assert n == lines
        config = one_hop(f"type = exec\ncommand = cat {path}\nbatchSize = 1000")
        seconds = asyncio.run(timed_flow(config, lines, None))
    print(f"{lines:,} lines from a cat child: {seconds:.2f} s through exec -> memory -> null "
          f"(Python reading the same child's lines: {base_seconds:.2f} s)")
    report("exec", lines / seconds, lines / base_seconds, "for line in cat's stdout", TARGET)


if __name__ == "__main__":
    main()
