"""`make demo`: the whole pipeline on a generated access log, live.

Starts ``flume-consumer`` (the built-in top-URLs job) and ``flume-agent`` with the seed
configuration (spooldir -> timestamp interceptor -> memory channel -> avro sink, or the
SparkSink for ``--mode pull``), printing both command lines so that they can be repeated,
drops generated Apache logs into the spool directory the right way (written elsewhere, then
renamed in), and shows the consumer's top table as it changes: redrawn in place on a
terminal, one line per change otherwise (the consumer prints a table every second, mostly
the same one). Then it stops both cleanly and checks the last table against counts computed
from the input. Exit status 0 only if they match.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

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
    """A child process whose output is kept, echoed when asked, and handed line by line to
    ``on_line`` if given."""

    def __init__(self, name: str, args: list[str], echo: bool, env: dict[str, str],
                 on_line: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.out: list[str] = []
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self._echo = echo
        self._on_line = on_line
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            if self._echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            if self._on_line is not None:
                self._on_line(line)

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


class TopView:
    """The consumer's pprint blocks, shown only when the table changes: a rich table redrawn
    in place on a terminal, a line per change elsewhere. Other lines (logs) print as they
    come."""

    def __init__(self, console: Console, top: int) -> None:
        self.console = console
        self.top = top
        self.shown: list[tuple[str, int]] | None = None
        self._block: list[str] | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def __enter__(self) -> TopView:
        if self.console.is_terminal:
            self._live = Live(self._table([], "waiting for the first window..."),
                              console=self.console, auto_refresh=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _table(self, entries: list[tuple[str, int]], caption: str) -> Table:
        table = Table(title=f"top {self.top} URLs, last 5 minutes", caption=caption,
                      title_justify="left", caption_justify="left")
        table.add_column("url")
        table.add_column("requests", justify="right")
        for url, count in entries:
            table.add_row(url, f"{count:,}")
        return table

    def feed(self, line: str) -> None:
        """One line of the consumer's output."""
        line = line.rstrip("\n")
        with self._lock:
            if self._block is None:
                if line == DASHES:
                    self._block = []
                elif line:
                    self.console.print(line, markup=False, highlight=False, soft_wrap=True)
                return
            self._block.append(line)
            if line == "" and len(self._block) > 2:
                self._show(last_table(f"{DASHES}\n" + "\n".join(self._block) + "\n"))
                self._block = None

    def _show(self, entries: list[tuple[str, int]] | None) -> None:
        if not entries or entries == self.shown:
            return
        self.shown = entries
        elapsed = time.monotonic() - self._started
        if self._live is not None:
            self._live.update(self._table(entries, f"updated after {elapsed:.0f} s"),
                              refresh=True)
        else:
            head = ", ".join(f"{url} {count:,}" for url, count in entries[:3])
            self.console.print(f"[{elapsed:5.1f} s] top: {head}, ... ({len(entries)} URLs)",
                               markup=False, highlight=False, soft_wrap=True)


def as_typed(args: list[str]) -> str:
    """``args`` as a user would type them in the repository root (with .venv activated)."""
    words = list(args)
    if words[:2] == [sys.executable, "-m"]:
        words = [{"consumer.cli": "flume-consumer", "agent.cli": "flume-agent"}[words[2]],
                 *words[3:]]
    return shlex.join(_short(w) for w in words)


def _short(path: object) -> str:
    """A path under the repository root relative to it (where the commands are typed)."""
    text = str(path)
    return os.path.relpath(text, ROOT) if text.startswith(str(ROOT) + os.sep) else text


def _listening_inodes(port: int) -> set[str] | None:
    """Inodes of the sockets listening on ``port`` (Linux), or None where /proc cannot say."""
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for row in f.readlines()[1:]:
                    cols = row.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(cols[9])
    except OSError:
        return None
    return inodes


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (the consumer receives in a child process)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
    return found


def _owns_listener(pid: int, port: int) -> bool:
    """Whether ``pid`` or a child of it listens on ``port``: a connect alone could reach
    another program that took the port first. Without /proc, a connect has to do."""
    inodes = _listening_inodes(port)
    if inodes is None:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    for member in _family(pid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{member}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{member}/fd/{fd}")[8:-1] in inodes:  # socket:[N]
                        return True
    return False


def wait_listening(port: int, proc: Proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{proc.name} exited early:\n{proc.text()}")
        if _owns_listener(proc.proc.pid, port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} is not listening on {port} after {timeout}s")


PORTS = {"push": 9092, "pull": 9999}
BIND_TRIES = 3


def commands(mode: str, spool: Path, top: int, port: int) -> tuple[list[str], list[str]]:
    """The consumer's and the agent's command lines, meeting on ``port``."""
    py = sys.executable
    consumer_args = [py, "-m", "consumer.cli", "--top", str(top), "--plain",
                     "--log-level", "warning"]
    consumer_args += (["--port", str(port)] if mode == "push"
                      else ["--pull", f"127.0.0.1:{port}"])
    agent_args = [py, "-m", "agent.cli", "-f", str(CONFIGS[mode]), "-n", "a1",
                  f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}",
                  "-Dflume.root.logger=WARN,console"]
    return consumer_args, agent_args


def launch(mode: str, build: Callable[[int], tuple[list[str], list[str]]], port: int,
           env: dict[str, str], on_line: Callable[[str], None] | None) -> tuple[Proc, Proc]:
    """Start the listening side first, then the other. The port was free when picked, but
    another program can take it before our listener binds: then pick another and retry."""
    for attempt in range(BIND_TRIES):
        consumer_args, agent_args = build(port)
        if mode == "push":
            listener = Proc("flume-consumer", consumer_args, False, env, on_line)
        else:
            listener = Proc("flume-agent", agent_args, False, env)
        try:
            wait_listening(port, listener)
        except RuntimeError as exc:
            if attempt + 1 == BIND_TRIES or "already in use" not in str(exc).lower():
                raise
            print(f"demo ({mode}): port {port} was taken meanwhile; trying another", flush=True)
            port = free_port(0)
            continue
        if mode == "push":
            return Proc("flume-agent", agent_args, False, env), listener
        return listener, Proc("flume-consumer", consumer_args, False, env, on_line)
    raise AssertionError("unreachable")


def run(mode: str, workdir: Path, lines: int, files: int, duration: float, seed: int,
        top: int = 10, echo: bool = True) -> bool:
    if workdir.exists():
        shutil.rmtree(workdir)
    spool = workdir / "spool"
    spool.mkdir(parents=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    port = free_port(PORTS[mode])
    consumer_args, agent_args = commands(mode, spool, top, port)
    console = Console(highlight=False)
    first, second = ((consumer_args, agent_args) if mode == "push"
                     else (agent_args, consumer_args))
    print(f"demo ({mode}): the two commands (in the repository root, after "
          f". .venv/bin/activate):\n  {as_typed(first)}\n  {as_typed(second)}", flush=True)
    print(f"demo ({mode}): generated logs land in {_short(spool)}, written elsewhere then "
          "renamed in", flush=True)
    all_lines = list(generate(lines, seed, malformed_rate=0.01, start=int(time.time()) - 600,
                              span=600))
    expected = expected_counts(all_lines)
    with TopView(console, top) as view:
        on_line = view.feed if echo else None
        agent, consumer = launch(mode, lambda p: commands(mode, spool, top, p), port, env,
                                 on_line)
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
