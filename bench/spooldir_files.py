"""spooldir with many tiny files: files/s through a real ``flume-agent`` process.

N one-line files are written to a staging directory and renamed into the spool directory
(the documented way to land files), then a real ``flume-agent`` process (spooldir -> memory
-> null, logging at WARN) is started and timed until every file has been renamed
``<name>.COMPLETED``; the source's EventAcceptedCount, read from the agent's ``/metrics``,
must then be N. The cost of a spool source per file should not grow with the number of
files waiting, so files/s should be about the same for 2,500 and 10,000 files.

Baseline, same files, same run: this process alone doing the unavoidable per-file work
(list the directory once, then open, read, close and rename each file).

    python bench/spooldir_files.py              # 10,000 files
    python bench/spooldir_files.py --quick      # 2,000 files
    python bench/spooldir_files.py --files 2500 5000 10000   # one line per size
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import report  # noqa: E402

TARGET = 1_000.0  # files/s
SUFFIX = ".COMPLETED"
CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def land_files(spool: Path, staging: Path, count: int) -> None:
    """``count`` one-line files, each written in staging and renamed into the spool dir."""
    for i in range(count):
        name = f"tiny-{i:06d}.log"
        (staging / name).write_bytes(b"line %d of a tiny file\n" % i)
        os.rename(staging / name, spool / name)


def completed(spool: Path) -> int:
    with os.scandir(spool) as entries:
        return sum(entry.name.endswith(SUFFIX) for entry in entries)


def baseline(directory: Path) -> float:
    """Files/s of list once + open/read/close/rename per file, in this process."""
    start = time.perf_counter()
    names = [e.name for e in os.scandir(directory) if e.is_file()]
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            f.read()
        os.rename(path, path + SUFFIX)
    return len(names) / (time.perf_counter() - start)


def accepted_events(port: int) -> int:
    """The source's EventAcceptedCount; 0 while the agent is not serving metrics yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            metrics = json.load(reply)
    except OSError:
        return 0
    return int(metrics["SOURCE.r1"]["EventAcceptedCount"])


def through_agent(work: Path, count: int, timeout: float) -> float:
    """Seconds from starting the agent until all ``count`` files are COMPLETED."""
    spool, staging = work / "spool", work / "staging"
    spool.mkdir()
    staging.mkdir()
    land_files(spool, staging, count)
    conf = work / "agent.conf"
    conf.write_text(CONFIG.format(spool=spool))
    port = _free_port()
    start = time.perf_counter()
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
         "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={port}",
         "-Dflume.root.logger=WARN,console"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # poll the agent's counter (constant cost), not the directory (10,000 names a look)
        while accepted_events(port) < count or completed(spool) < count:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited {agent.returncode}: "
                                 f"{agent.stderr.read().decode()[-2000:] if agent.stderr else ''}")
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"only {completed(spool)} of {count} files done in {timeout} s")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        events = accepted_events(port)
        assert events == count, (events, count)
        return seconds
    finally:
        agent.terminate()
        agent.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 files instead of 10,000")
    parser.add_argument("--files", type=int, nargs="+", help="file counts to run, in order")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    args = parser.parse_args()
    counts = args.files or [2_000 if args.quick else 10_000]
    rates: list[float] = []
    base_rate = 0.0
    for count in counts:
        work = Path(tempfile.mkdtemp(prefix="bench-spooldir-files-"))
        try:
            base_dir = work / "baseline"
            base_dir.mkdir()
            land_files(base_dir, base_dir, count)
            base_rate = baseline(base_dir)
            seconds = through_agent(work, count, args.timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rates.append(count / seconds)
        print(f"{count:,} one-line files: {seconds:.2f} s through flume-agent "
              f"(spooldir -> memory -> null), {count / seconds:,.0f} files/s "
              f"(list once + read + rename in this process: {base_rate:,.0f} files/s)")
    report("spooldir_files", rates[-1], base_rate, "list once + read + rename per file",
           TARGET, metric="files/s")


if __name__ == "__main__":
    main()
