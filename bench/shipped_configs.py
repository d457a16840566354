"""The shipped configurations as a new user runs them: a 100,000-line access log renamed into
the spool directory of ``flume-agent -f configs/spooldir-avro.conf`` (pushing to
``flume-consumer``) and of ``configs/spooldir-spark.conf`` (polled by ``flume-consumer
--pull``), both real processes running the built-in job. Timed from the rename until the
agent's sink has delivered every line (the consumer answered ``OK`` / acked it: the agent's
own ``EventDrainSuccessCount`` at ``/metrics``). Target: >= 100,000 events/s for each (the
row shows the slower). Also printed: the pull path with a checkpoint (exactly-once), whose
acks wait for the checkpoint of each 1 s batch.

Baseline in the same run: the same configurations with the sizes they shipped with before
(channel capacity 1,000, transactionCapacity 100, Flume's default batch sizes of 100), on a
20,000-line file: what README's "Sizing" section compares.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import report  # noqa: E402
from scripts.genlog import generate, write_spool_file  # noqa: E402

CONFIGS = {"push": ROOT / "configs" / "spooldir-avro.conf",
           "pull": ROOT / "configs" / "spooldir-spark.conf"}
OLD_SIZES = ["-Da1.channels.c1.capacity=1000", "-Da1.channels.c1.transactionCapacity=100",
             "-Da1.sources.r1.batchSize=100", "-Da1.sinks.k1.batch-size=100"]
TARGET = 100_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _delivered(metrics_port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=2) as answer:
            data = json.load(answer)
    except OSError:
        return None
    return int(data.get("SINK.k1", {}).get("EventDrainSuccessCount", 0))


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _wait(what: str, check: Callable[[], bool], timeout: float,
          procs: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} ({what})")
        time.sleep(0.025)  # each look is an HTTP request the agent answers: not too often
    raise RuntimeError(f"timed out: {what}")


def run(mode: str, lines: list[str], extra: list[str], checkpoint: bool = False) -> float:
    """Events/s from the rename of one file of ``lines`` until the sink delivered them all
    (``checkpoint``: the consumer checkpoints, so it acks once per batch interval)."""
    with tempfile.TemporaryDirectory() as tmp:
        spool, staging = Path(tmp, "spool"), Path(tmp, "staging")
        spool.mkdir()
        staging.mkdir()
        port, metrics = _free_port(), _free_port()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        consumer_args = [sys.executable, "-m", "consumer.cli", "--plain", "--ui-port", "0",
                         "--log-level", "warning"]
        consumer_args += (["--port", str(port)] if mode == "push"
                          else ["--pull", f"127.0.0.1:{port}"])
        if checkpoint:
            consumer_args += ["--checkpoint", str(Path(tmp, "checkpoint"))]
        agent_args = [sys.executable, "-m", "agent.cli", "-f", str(CONFIGS[mode]), "-n", "a1",
                      f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}",
                      "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={metrics}",
                      "-Dflume.root.logger=WARN,console", *extra]
        consumer = subprocess.Popen(consumer_args, cwd=tmp, **quiet)  # type: ignore[call-overload]
        procs = {"flume-consumer": consumer}
        if mode == "push":  # a sink finding no receiver backs off for seconds: not throughput
            _wait("consumer listening", lambda: _accepting(port), 60, procs)
        agent = subprocess.Popen(agent_args, cwd=tmp, **quiet)  # type: ignore[call-overload]
        procs["flume-agent"] = agent
        try:
            _wait("agent metrics up", lambda: _delivered(metrics) is not None, 30, procs)
            written = write_spool_file(staging, "access.log", lines)
            start = time.monotonic()
            os.rename(written, spool / written.name)
            _wait(f"{len(lines)} events delivered",
                  lambda: (_delivered(metrics) or 0) >= len(lines), 300, procs)
            return len(lines) / (time.monotonic() - start)
        finally:
            for proc in (agent, consumer):
                proc.terminate()
            for proc in (agent, consumer):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    lines = list(generate(100_000, 7))
    small = lines[:20_000]
    results = {}
    for mode in ("push", "pull"):
        old = run(mode, small, OLD_SIZES)
        runs = [run(mode, lines, []) for _ in range(1 if args.quick else 3)]
        results[mode] = (max(runs), old)
        print(f"{mode} ({CONFIGS[mode].name}): {max(runs):,.0f} events/s (best of "
              f"{len(runs)}); with the old sizes {old:,.0f} events/s", flush=True)
    checkpointed = run("pull", lines, [], checkpoint=True)
    print(f"pull with --checkpoint (acks once per 1 s batch): {checkpointed:,.0f} events/s",
          flush=True)
    worst = min(results, key=lambda m: results[m][0])
    report("shipped_configs", results[worst][0], results[worst][1],
           f"{worst}, the old sizes (capacity 1000, batches of 100)", TARGET)


if __name__ == "__main__":
    main()
