"""Start, stop and kill ``flume-agent`` / ``flume-consumer`` processes in end-to-end tests.

Every wait is bounded polling (no fixed sleeps): a wait that runs out raises with the tail of
each process's log, so a failure shows what the processes said. Output goes to a log file per
start (not a pipe), so a chatty process can never block on a full pipe and a killed one leaves
its last words on disk.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    """A port nobody listens on right now (bind port 0, let the kernel choose)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """One child process; its stdout and stderr go to ``log``."""

    def __init__(self, name: str, args: Sequence[str], log: Path) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=ENV)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> int:
        """SIGKILL: no cleanup at all, as a crash or the OOM killer."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop), SIGKILL if it is not done within ``timeout``."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def wait_until(cond: Callable[[], bool], timeout: float, what: str,
               procs: Sequence[Proc] = (), interval: float = 0.05,
               require_alive: bool = True) -> None:
    """Poll ``cond`` until it holds; raise after ``timeout`` s (or as soon as one of ``procs``
    exits, when ``require_alive``) with every process's log tail."""
    deadline = time.monotonic() + timeout
    while not cond():
        dead = [p for p in procs if require_alive and not p.alive()]
        if dead or time.monotonic() > deadline:
            why = (f"{', '.join(p.name for p in dead)} exited" if dead
                   else f"timed out after {timeout:g}s")
            raise AssertionError(f"{why} waiting for {what}\n{describe(procs)}")
        time.sleep(interval)


def describe(procs: Sequence[Proc]) -> str:
    return "\n".join(f"--- {p.name} (pid {p.pid}, exit {p.proc.poll()}):\n{p.tail()}"
                     for p in procs)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, proc: Proc, timeout: float = 30.0) -> None:
    wait_until(lambda: listening(port), timeout, f"{proc.name} to listen on {port}", [proc])


def start_agent(conf: Path, name: str, log: Path, overrides: dict[str, str],
                metrics_port: int | None = None) -> Proc:
    """``flume-agent -f conf -n name -D<name>.<key>=<value>...`` (keys relative to the agent)."""
    args = [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", name,
            "-Dflume.root.logger=WARN,console"]
    args += [f"-D{name}.{key}={value}" for key, value in overrides.items()]
    if metrics_port is not None:
        args += ["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={metrics_port}"]
    return Proc("flume-agent", args, log)


def start_consumer(options: Sequence[str], log: Path, log_level: str = "warning") -> Proc:
    """``flume-consumer --log-level LEVEL OPTIONS...`` (the default job unless ``run``)."""
    args = [sys.executable, "-m", "consumer.cli", "--log-level", log_level, *options]
    return Proc("flume-consumer", args, log)


def agent_metrics(port: int) -> dict[str, Any]:
    """The agent's ``/metrics`` JSON (``{"CHANNEL.c1": {"ChannelSize": ...}, ...}``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def all_completed(spool: Path, files: int) -> bool:
    """Every one of ``files`` spooled files has been consumed (renamed ``*.COMPLETED``)."""
    names = [p.name for p in spool.iterdir() if not p.name.startswith(".")]
    return len(names) == files and all(n.endswith(".COMPLETED") for n in names)


class HoldingProxy:
    """A TCP proxy on ``port`` to ``127.0.0.1:upstream`` that can stall one direction.

    Once a connection sends a chunk towards the upstream that contains ``hold`` (while
    ``holding`` is set), that chunk and everything after it on that connection is kept back,
    never forwarded: the sender sees a stalled peer, the upstream sees nothing. Answers still
    flow back. When either side closes, both are closed. ``held`` is set at the first hold.
    Used to stop a consumer's acks from reaching the agent at a moment the test chooses.
    """

    def __init__(self, upstream: int, hold: bytes) -> None:
        self.upstream = upstream
        self.hold = hold
        self.holding = threading.Event()
        self.held = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        stalled = False
        try:
            while data := src.recv(65536):
                if upstream and not stalled and self.holding.is_set() and self.hold in data:
                    stalled = True
                    self.held.set()
                if not stalled:
                    dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
