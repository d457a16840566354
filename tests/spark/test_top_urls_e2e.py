"""Spark reads two real flumelet agents with the ``flume`` source: exact, and exact across
driver kills (real processes, pyspark ``local[2]``).

Each agent (``configs/spark/agent.conf``: spooldir -> file channel -> SparkSink) gets
``LINES`` generated Apache lines. ``configs/spark/top_urls.py`` counts hits per URL in
5-minute windows sliding by 1 minute and writes finished windows to a parquet file sink.
The lines span 10 minutes and the watermark is 10 minutes, so no window is finished (and no
line is late) until a sentinel line an hour later arrives after everything else: then every
window is written once, and the rows in the sink's manifest must equal the oracle computed
from the generated lines, row for row.

The crash case SIGKILLs the driver's whole process group (Python, JVM, Python workers) twice
at chosen moments, restarting it each time on the same checkpoint and staging directories:

1. while a task is filling a slot (parts staged and acked, slot not sealed): the re-run adopts
   the parts, and the batches the agent rolls back are recognised by their digests;
2. while a micro-batch whose slots are all sealed has not reached Spark's commit log: the
   re-run reads the staged rows and touches no agent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install '.[spark]')")
pq = pytest.importorskip("pyarrow.parquet", reason="the spark extra (pyarrow) is not installed")

from scripts.genlog import LOG_PATTERN, URL_GROUP, apache_time, generate, write_spool_file  # noqa: E402
from tests.e2e.procs import (  # noqa: E402
    ROOT,
    Proc,
    agent_metrics,
    describe,
    free_port,
    start_agent,
    wait_listening,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LINES = 100_000  # per agent
AGENTS = 2
START, SPAN = 1_700_000_000, 600
SEED = 1919
PER_TRIGGER = 40_000  # events per micro-batch over both agents: 5 batches of data
TIME = "%d/%b/%Y:%H:%M:%S %z"


def oracle(lines: list[str]) -> Counter[tuple[int, str]]:
    """Hits per (window start, url) for 5-minute windows sliding by 1 minute."""
    counts: Counter[tuple[int, str]] = Counter()
    for line in lines:
        m = LOG_PATTERN.match(line)
        if m is None:
            continue
        t = int(datetime.strptime(m.group(4), TIME).timestamp())
        for k in range(5):
            counts[(t // 60 * 60 - 60 * k, m.group(URL_GROUP))] += 1
    return counts


class Agents:
    """``AGENTS`` flumelet agents fed through their spool directories."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []
        self.spools: list[Path] = []
        self.metrics: list[int] = []
        self.addresses: list[str] = []
        for i in range(AGENTS):
            spool = tmp / f"spool{i}"
            spool.mkdir()
            port, metrics = free_port(), free_port()
            proc = start_agent(ROOT / "configs" / "spark" / "agent.conf", "a1",
                               tmp / f"agent{i}.log", {
                                   "sources.r1.spoolDir": str(spool),
                                   "channels.c1.checkpointDir": str(tmp / f"channel{i}" / "cp"),
                                   "channels.c1.dataDirs": str(tmp / f"channel{i}" / "data"),
                                   "sinks.k1.hostname": "127.0.0.1",
                                   "sinks.k1.port": str(port)}, metrics_port=metrics)
            self.procs.append(proc)
            self.spools.append(spool)
            self.metrics.append(metrics)
            self.addresses.append(f"127.0.0.1:{port}")
            wait_listening(port, proc)

    def feed(self) -> list[str]:
        every: list[str] = []
        for i, spool in enumerate(self.spools):
            lines = list(generate(LINES, SEED + i, malformed_rate=0.01, start=START, span=SPAN))
            write_spool_file(spool, "access.log", lines)
            every += lines
        return every

    def acked(self) -> list[int]:
        return [int(agent_metrics(m)["SINK.k1"]["EventDrainSuccessCount"]) for m in self.metrics]

    def send_sentinel(self) -> None:
        """One line an hour after the data: the watermark passes every data window."""
        line = (f'127.0.0.1 - - [{apache_time(START + SPAN + 3600)}] "GET /sentinel HTTP/1.1" '
                f'200 1 "-" "test"')
        write_spool_file(self.spools[0], "sentinel.log", [line])

    def stop(self) -> None:
        for p in self.procs:
            p.kill()


class Driver:
    """``configs/spark/top_urls.py`` in its own process group (Python, JVM, workers)."""

    def __init__(self, tmp: Path, addresses: list[str]) -> None:
        self.tmp = tmp
        self.staging, self.checkpoint, self.output = (
            tmp / "staging", tmp / "checkpoint", tmp / "out")
        self.args = [
            sys.executable, "configs/spark/top_urls.py", "--master", "local[2]",
            "--addresses", ",".join(addresses), "--staging", str(self.staging),
            "--checkpoint", str(self.checkpoint), "--output", str(self.output),
            "--max-events-per-trigger", str(PER_TRIGGER), "--trigger", "500 milliseconds",
            "--shuffle-partitions", "2",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.ui.showConsoleProgress=false",  # readable driver.log tails
            "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", "spark.driver.host=127.0.0.1",
        ]
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "driver.log"

    def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable}
        with open(self.log, "ab") as out:
            out.write(f"===== start {self.starts}\n".encode())
            self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: the driver machine dies."""
        assert self.proc is not None
        with _suppress_lookup():
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        deadline = time.monotonic() + 30  # the JVM and the Python workers go with it
        while _group_alive(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.alive():
            self.kill()

    def wait(self, cond: Callable[[], bool], timeout: float, what: str,
             agents: Agents) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if not self.alive() or time.monotonic() > deadline:
                why = "the driver exited" if not self.alive() else f"timed out after {timeout}s"
                tail = self.log.read_text(errors="replace")[-6000:]
                raise AssertionError(f"{why} waiting for {what}\n--- driver:\n{tail}\n"
                                     f"{describe(agents.procs)}")
            time.sleep(0.02)

    # --- what the checkpoint and the staging directory show ---

    def slot_dirs(self) -> Iterator[Path]:
        if self.staging.exists():
            yield from self.staging.glob("*/*/*")

    def filling(self) -> bool:
        """A task has staged parts of a slot it has not sealed yet."""
        return any(not (d / "sealed.json").exists() and any(d.glob("part-*.arrow"))
                   for d in self.slot_dirs())

    def sealed_uncommitted(self) -> bool:
        """The newest planned micro-batch has all its slots sealed but is not committed."""
        offsets = sorted((self.checkpoint / "offsets").glob("[0-9]*"), key=lambda p: int(p.name))
        if not offsets or (self.checkpoint / "commits" / offsets[-1].name).exists():
            return False
        try:
            end = json.loads(offsets[-1].read_text().splitlines()[-1])
        except (ValueError, IndexError):
            return False
        run, slots = end.get("run"), end.get("slots", {})
        dirs = [self.staging / run / a.replace(":", "_") / f"{n:010d}"
                for a, n in slots.items()] if run else []
        return bool(dirs) and all((d / "sealed.json").exists() for d in dirs)

    def results(self) -> Counter[tuple[int, str]]:
        """Rows the file sink committed (its manifest), as {(window start, url): count}."""
        meta = self.output / "_spark_metadata"
        if not meta.exists():
            return Counter()
        files: set[str] = set()
        for log in meta.iterdir():
            if log.name.startswith("."):
                continue
            for line in log.read_text().splitlines()[1:]:
                entry = json.loads(line)
                if entry.get("action", "add") == "add":
                    files.add(entry["path"].removeprefix("file://"))
        counts: Counter[tuple[int, str]] = Counter()
        for path in files:
            table = pq.read_table(path)
            column = table.column("window_start")
            per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[
                column.type.unit]
            starts = column.cast("int64").to_pylist()
            for start, url, n in zip(starts, table.column("url").to_pylist(),
                                     table.column("count").to_pylist(), strict=True):
                key = (start // per_second, url)
                assert key not in counts, f"window {key} written twice"
                counts[key] = n
        return counts


class _suppress_lookup:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return kind is ProcessLookupError


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run(tmp: Path, kills: list[Callable[[Driver], bool]]) -> None:
    agents = Agents(tmp)
    driver = Driver(tmp, agents.addresses)
    try:
        lines = agents.feed()
        expected = oracle(lines)
        driver.start()
        for i, moment in enumerate(kills, 1):
            driver.wait(lambda m=moment: m(driver), 300, f"kill moment {i}", agents)
            driver.kill()
            driver.start()
        driver.wait(lambda: sum(agents.acked()) >= AGENTS * LINES, 300,
                    "every line acked", agents)
        assert agents.acked() == [LINES] * AGENTS
        agents.send_sentinel()
        driver.wait(lambda: len(driver.results()) >= len(expected), 300,
                    "every window written", agents)
        got = driver.results()
        assert sum(got.values()) == sum(expected.values())
        assert got == expected
    finally:
        driver.stop()
        agents.stop()


def test_two_agents_window_counts_equal_the_oracle(tmp_path: Path) -> None:
    run(tmp_path, kills=[])


def test_driver_killed_twice_still_exact(tmp_path: Path) -> None:
    run(tmp_path, kills=[Driver.filling, Driver.sealed_uncommitted])
