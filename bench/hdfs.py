"""hdfs sink throughput: an Apache-log file tailed from its start -> taildir -> memory -> hdfs
sink writing DataStream files (and, shown alongside, gzip CompressedStream) to local disk
through fsspec, batches of 1000, each written and flushed before its commit, 100k-event files.

Baseline, same run: the same lines written to a local file by plain Python, flushed every
1000 lines (the least any sink that promises flushed batches must do), plus the taildir ->
memory -> null flow to show what the source side costs.

    python bench/hdfs.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import apache_line, report
from bench.support.flow import NULL_SINK, one_hop, sized, timed_flow

TARGET = 100_000.0
HDFS = """
type = hdfs
hdfs.path = {work}/out/{name}/%Y%m%d
hdfs.useLocalTimeStamp = true
hdfs.batchSize = 1000
hdfs.rollCount = 100000
hdfs.rollSize = 0
hdfs.rollInterval = 0
hdfs.inUseJournal = {work}/{name}-journal.json
"""


def source(logs: Path, work: Path) -> str:
    return f"""
type = TAILDIR
filegroups = g1
filegroups.g1 = {logs}/access\\\\.log
positionFile = {work}/taildir_position.json
batchSize = 1000
"""


def plain_write(path: Path, lines: list[bytes]) -> float:
    start = time.perf_counter()
    with open(path, "wb") as f:
        for i in range(0, len(lines), 1000):
            f.write(b"".join(line + b"\n" for line in lines[i:i + 1000]))
            f.flush()
    return time.perf_counter() - start


def main() -> None:
    count, _args = sized(argparse.ArgumentParser(description=__doc__), 100_000, 1_000_000,
                         "lines")
    rng = random.Random(1)
    lines = [apache_line(i, rng) for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-hdfs-") as work:
        logs = Path(work) / "logs"
        logs.mkdir()
        (logs / "access.log").write_bytes(b"".join(line + b"\n" for line in lines))
        base_seconds = plain_write(Path(work) / "plain.txt", lines)
        rates = {}
        for name, sink in (("null", NULL_SINK),
                           ("DataStream", HDFS + "hdfs.fileType = DataStream\n"),
                           ("gzip", HDFS + "hdfs.fileType = CompressedStream\n"
                                           "hdfs.codeC = gzip\n")):
            run = Path(work) / name
            run.mkdir()
            config = one_hop(source(logs, run), sink.format(work=run, name=name))
            rates[name] = count / asyncio.run(timed_flow(config, count, None))
        written = sum(p.stat().st_size for p in (Path(work) / "DataStream" / "out").rglob("*")
                      if p.is_file())
        assert written == sum(len(line) + 1 for line in lines), written
    print(f"{count:,} lines: taildir -> memory -> hdfs DataStream {rates['DataStream']:,.0f}/s, "
          f"CompressedStream gzip {rates['gzip']:,.0f}/s; same flow into a null sink "
          f"{rates['null']:,.0f}/s; plain Python write+flush per 1000 lines "
          f"{count / base_seconds:,.0f}/s")
    report("hdfs", rates["DataStream"], count / base_seconds,
           "plain write+flush per 1000 lines", TARGET)


if __name__ == "__main__":
    main()
