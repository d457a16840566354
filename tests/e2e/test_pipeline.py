"""The whole pipeline with real processes: spool dir -> flume-agent -> flume-consumer.

The consumer's last window (which spans the whole run) must equal counts computed straight
from the generated input, over push, push with deflate, and pull, and across a graceful
restart of either side mid-run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.demo import ROOT, Proc, free_port, last_table, matches, wait_listening
from scripts.genlog import expected_counts, generate, write_spool_file

pytestmark = pytest.mark.e2e
LINES = 4000
FILES = 8
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _wait(cond: Callable[[], bool], timeout: float, what: str,
          procs: tuple[Proc, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.text()[-2000:]}" for p in procs)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def _input() -> tuple[list[str], Counter[str]]:
    lines = list(generate(LINES, 7, malformed_rate=0.02, start=int(time.time()) - 60, span=60))
    return lines, expected_counts(lines)


def _drop(spool: Path, staging: Path, lines: list[str], files: range) -> None:
    per = LINES // FILES
    for i in files:
        written = write_spool_file(staging, f"access-{i:03d}.log", lines[i * per:(i + 1) * per])
        os.rename(written, spool / written.name)


def _consumer(port: int, mode: str, tmp: Path, deflate: bool = False,
              checkpoint: bool = False) -> Proc:
    if deflate:
        job = tmp / "deflate.yaml"
        job.write_text(f"""name: top_urls
receiver: {{type: push, host: 127.0.0.1, port: {port}, deflate: true}}
parser: apache_combined
key: url
aggregation: count
window: 300
slide: 1
outputs: [{{type: console, top: 10}}]
""")
        args = [sys.executable, "-m", "consumer.cli", "--log-level", "warning", "run", str(job)]
    else:
        args = [sys.executable, "-m", "consumer.cli", "--log-level", "warning"]
        args += ["--port", str(port)] if mode == "push" else ["--pull", f"127.0.0.1:{port}"]
        if checkpoint:
            args += ["--checkpoint", str(tmp / "checkpoint")]
    return Proc("flume-consumer", args, False, ENV)


def _agent(port: int, mode: str, spool: Path, deflate: bool = False) -> Proc:
    conf = ROOT / "configs" / ("spooldir-avro.conf" if mode == "push" else "spooldir-spark.conf")
    args = [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
            f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}"]
    if deflate:
        args.append("-Da1.sinks.k1.compression-type=deflate")
    return Proc("flume-agent", args, False, ENV)


def _dirs(tmp: Path) -> tuple[Path, Path]:
    spool, staging = tmp / "spool", tmp / "staging"
    spool.mkdir()
    staging.mkdir()
    return spool, staging


def _all_completed(spool: Path) -> bool:
    names = [p.name for p in spool.iterdir() if p.is_file()]
    return bool(names) and all(n.endswith(".COMPLETED") for n in names)


@pytest.mark.parametrize(("mode", "deflate"), [("push", False), ("push", True), ("pull", False)])
def test_window_results_equal_the_oracle(tmp_path: Path, mode: str, deflate: bool) -> None:
    lines, expected = _input()
    spool, staging = _dirs(tmp_path)
    port = free_port(0)
    consumer = _consumer(port, mode, tmp_path, deflate)
    agent = _agent(port, mode, spool, deflate)
    try:
        wait_listening(port, consumer if mode == "push" else agent)
        _drop(spool, staging, lines, range(FILES))
        _wait(lambda: matches(last_table(consumer.text()), expected, 10), 60,
              "the consumer's table to match the input", (agent, consumer))
        assert _all_completed(spool)
    finally:
        # The consumer first: with its peer gone, a poller logs a WARNING a line (stderr,
        # the same pipe as stdout here) that could land inside the last pprint block.
        codes = {"consumer": consumer.stop(), "agent": agent.stop()}
    assert codes == {"consumer": 0, "agent": 0}
    assert matches(last_table(consumer.text()), expected, 10)


@pytest.mark.parametrize("side", ["agent", "consumer"])
def test_graceful_restart_of_either_side_mid_run_loses_nothing(tmp_path: Path, side: str) -> None:
    lines, expected = _input()
    spool, staging = _dirs(tmp_path)
    port = free_port(0)
    consumer = _consumer(port, "push", tmp_path, checkpoint=True)
    agent = _agent(port, "push", spool)
    procs = [agent, consumer]
    try:
        wait_listening(port, consumer)
        _drop(spool, staging, lines, range(FILES // 2))
        _wait(lambda: bool(last_table(consumer.text())), 30, "a first table", tuple(procs))
        if side == "agent":
            assert agent.stop() == 0
            _drop(spool, staging, lines, range(FILES // 2, FILES))  # lands while it is down
            agent = _agent(port, "push", spool)
        else:
            assert consumer.stop() == 0
            _drop(spool, staging, lines, range(FILES // 2, FILES))  # the sink must retry
            consumer = _consumer(port, "push", tmp_path, checkpoint=True)
            wait_listening(port, consumer)
        procs = [agent, consumer]
        _wait(lambda: matches(last_table(consumer.text()), expected, 10), 60,
              "the restarted pipeline to count every line exactly once", tuple(procs))
    finally:
        for p in procs:
            p.stop()


def test_make_demo_script_runs_to_completion(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(tmp_path / "demo"),
         "--lines", "3000", "--files", "3", "--duration", "45"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "OK, the last table matches" in done.stdout
    assert "\n  flume-consumer --top 10 --plain" in done.stdout  # the commands it runs
    assert "\n  flume-agent -f configs/spooldir-avro.conf -n a1" in done.stdout
    tables = [line.split("] ", 1)[1] for line in done.stdout.splitlines() if " top: /" in line]
    assert tables and len(tables) == len(set(tables))  # a line per change, not per second
