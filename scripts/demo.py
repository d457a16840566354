"""`make demo`: the whole pipeline on a generated access log, live.

Starts ``flume-consumer`` (the built-in top-URLs job) and ``flume-agent`` with the seed
configuration (spooldir -> timestamp interceptor -> memory channel -> avro sink, or the
SparkSink for ``--mode pull``), drops generated Apache logs into the spool directory the
right way (written elsewhere, then renamed in), shows the consumer's table every slide, then
stops both cleanly and checks the last table against counts computed from the input.
Exit status 0 only if they match.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.genlog import expected_counts, generate, write_spool_file  # noqa: E402

DASHES = "-" * 43
CONFIGS = {"push": ROOT / "configs" / "spooldir-avro.conf",
           "pull": ROOT / "configs" / "spooldir-spark.conf"}


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def last_table(text: str) -> list[tuple[str, int]] | None:
    """The entries of the last complete pprint block in ``text``."""
    blocks = text.split(DASHES + "\nTime: ")
    for block in reversed(blocks[1:]):
        lines = block.split("\n")
        if len(lines) < 3 or lines[1] != DASHES:
            continue
        body = lines[2:]
        if "" not in body:
            continue  # block still being printed
        entries = []
        for line in body[: body.index("")]:
            if line == "...":
                continue
            value = ast.literal_eval(line)
            entries.append((value[0], int(value[1])))
        return entries
    return None


def matches(table: list[tuple[str, int]] | None, expected: Counter[str], top: int) -> bool:
    if not table:
        return False
    want = sorted(expected.values(), reverse=True)[:top]
    return (all(expected.get(url) == count for url, count in table)
            and sorted((c for _, c in table), reverse=True) == want)


class Proc:
    """A child process whose output is echoed (when asked) and kept."""

    def __init__(self, name: str, args: list[str], echo: bool, env: dict[str, str]) -> None:
        self.name = name
        self.out: list[str] = []
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self._echo = echo
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            if self._echo:
                sys.stdout.write(line)
                sys.stdout.flush()

    def text(self) -> str:
        return "".join(self.out)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._thread.join(5)
        return code


def wait_listening(port: int, proc: Proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} is not listening on {port} after {timeout}s")


def run(mode: str, workdir: Path, lines: int, files: int, duration: float, seed: int,
        top: int = 10, echo: bool = True) -> bool:
    if workdir.exists():
        shutil.rmtree(workdir)
    spool = workdir / "spool"
    spool.mkdir(parents=True)
    port = free_port(9092 if mode == "push" else 9999)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    py = sys.executable
    consumer_args = [py, "-m", "consumer.cli", "--top", str(top), "--log-level", "warning"]
    consumer_args += (["--port", str(port)] if mode == "push"
                      else ["--pull", f"127.0.0.1:{port}"])
    agent_args = [py, "-m", "agent.cli", "-f", str(CONFIGS[mode]), "-n", "a1",
                  f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}",
                  "-Dflume.root.logger=WARN,console"]
    print(f"demo ({mode}): consumer and agent starting; spool directory {spool}", flush=True)
    all_lines = list(generate(lines, seed, malformed_rate=0.01, start=int(time.time()) - 600,
                              span=600))
    expected = expected_counts(all_lines)
    if mode == "push":
        consumer = Proc("flume-consumer", consumer_args, echo, env)
        wait_listening(port, consumer)
        agent = Proc("flume-agent", agent_args, False, env)
    else:
        agent = Proc("flume-agent", agent_args, False, env)
        wait_listening(port, agent)
        consumer = Proc("flume-consumer", consumer_args, echo, env)
    ok = False
    try:
        staging = workdir / "staging"
        staging.mkdir()
        per_file = -(-lines // files)
        deadline = time.monotonic() + duration
        pause = min(1.5, duration / 2 / files)  # files trickle in over half the run
        for i in range(files):  # each written in staging, then renamed in whole
            chunk = all_lines[i * per_file:(i + 1) * per_file]
            written = write_spool_file(staging, f"access-{i:03d}.log", chunk)
            os.rename(written, spool / written.name)
            time.sleep(pause)
        while time.monotonic() < deadline:
            if matches(last_table(consumer.text()), expected, top):
                ok = True
                time.sleep(2)  # let a couple more slides print
                break
            if agent.proc.poll() is not None or consumer.proc.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        agent_code = agent.stop()
        consumer_code = consumer.stop()
    table = last_table(consumer.text())
    ok = ok and matches(table, expected, top)
    good = sum(expected.values())
    print(f"demo ({mode}): {lines} lines generated ({lines - good} malformed) in {files} files; "
          f"agent exit {agent_code}, consumer exit {consumer_code}")
    if ok:
        print(f"demo ({mode}): OK, the last table matches the top {top} URLs counted straight "
              "from the generated input")
    else:
        print(f"demo ({mode}): MISMATCH. Expected top counts "
              f"{expected.most_common(top)}, last table {table}")
        print("agent output:\n" + agent.text()[-3000:])
    return ok and agent_code == 0 and consumer_code == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["push", "pull"], default="push")
    ap.add_argument("--workdir", type=Path, default=ROOT / "demo-run")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--duration", type=float, default=30.0, help="give up after SECONDS")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    try:
        ok = run(args.mode, args.workdir, args.lines, args.files, args.duration, args.seed)
    except KeyboardInterrupt:
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
