"""Two real ``flume-agent`` processes over Avro RPC: a (seq -> memory -> avro sink) ->
b (avro source -> memory -> file_roll). With nothing failing, every sequence number arrives
exactly once and in order, over plain TCP, deflate, TLS and TLS + deflate.

The helpers here are shared with test_multihop_restart.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.tls import make_cert

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "multihop"
SENDER_CONF = FIXTURES / "sender.conf"
RECEIVER_CONF = FIXTURES / "receiver.conf"
EVENTS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               diagnose: Callable[[], str] = lambda: "") -> None:
    """Bounded polling: return as soon as ``predicate()`` holds, fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{diagnose()}")
        time.sleep(0.02)


class AgentProcess:
    """One ``python -m agent.cli`` process, its log in a file, controlled by signals."""

    def __init__(self, conf: Path, name: str, overrides: Mapping[str, object], log: Path,
                 metrics_port: int | None = None) -> None:
        self.conf, self.name, self.log = conf, name, log
        self.args = [f"-D{name}.{key}={value}" for key, value in overrides.items()]
        self.metrics_port = metrics_port
        if metrics_port is not None:
            self.args += ["-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={metrics_port}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent.cli", "-f", str(self.conf), "-n", self.name,
                 *self.args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.log.name} (last {lines} lines) ---\n" + "\n".join(
            text.splitlines()[-lines:])

    def wait_listening(self, port: int, timeout: float = 10.0) -> None:
        def listening() -> bool:
            if not self.running:
                raise AssertionError(f"agent {self.name} exited\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            return False

        wait_until(listening, timeout, f"agent {self.name} to listen on {port}", self.log_tail)

    def metrics(self) -> dict[str, dict[str, str]]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            data: dict[str, dict[str, str]] = json.load(resp)
            return data

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (a clean stop is 0)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"agent {self.name} ignored SIGTERM\n{self.log_tail()}") from None

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def agents(*procs: AgentProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in procs:
            proc.cleanup()


def delivered(out_dir: Path) -> list[int]:
    """Sequence numbers written by file_roll so far, file by file (complete lines only)."""
    numbers: list[int] = []
    for path in sorted(out_dir.iterdir(), key=lambda p: p.name):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        numbers.extend(int(line) for line in complete.splitlines())
    return numbers


def transport_settings(mode: str, tmp_path: Path) -> tuple[dict[str, object], dict[str, object]]:
    """(sender sink overrides, receiver source overrides) for plain / deflate / tls modes."""
    sink: dict[str, object] = {}
    source: dict[str, object] = {}
    if "deflate" in mode:
        sink["sinks.k1.compression-type"] = source["sources.r1.compression-type"] = "deflate"
    if "tls" in mode:
        cert, key = make_cert(tmp_path)
        keystore = tmp_path / "keystore.pem"
        keystore.write_bytes(cert.read_bytes() + key.read_bytes())
        sink |= {"sinks.k1.ssl": "true", "sinks.k1.truststore": cert,
                 "sinks.k1.hostname": "localhost"}
        source |= {"sources.r1.ssl": "true", "sources.r1.keystore": keystore}
    return sink, source


def pair(tmp_path: Path, total: int, mode: str = "plain",
         receiver_metrics: bool = False) -> tuple[AgentProcess, AgentProcess, Path, int]:
    """Sender and receiver processes (not started), the output directory and the port."""
    port = free_port()
    out = tmp_path / "out"
    out.mkdir()
    sink, source = transport_settings(mode, tmp_path)
    sender = AgentProcess(SENDER_CONF, "a", {
        "sinks.k1.port": port, "sources.r1.totalEvents": total, **sink,
    }, tmp_path / "a.log")
    receiver = AgentProcess(RECEIVER_CONF, "b", {
        "sources.r1.port": port, "sinks.k1.sink.directory": out, **source,
    }, tmp_path / "b.log", free_port() if receiver_metrics else None)
    return sender, receiver, out, port


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["plain", "deflate", "tls", "tls+deflate"])
def test_every_event_arrives_exactly_once_in_order(mode: str, tmp_path: Path) -> None:
    sender, receiver, out, port = pair(tmp_path, EVENTS, mode)
    with agents(sender, receiver):
        receiver.start().wait_listening(port)
        sender.start()
        wait_until(lambda: len(delivered(out)) >= EVENTS, 15, f"{EVENTS} events in {out}",
                   lambda: sender.log_tail() + "\n" + receiver.log_tail())
        assert sender.stop() == 0, sender.log_tail()
        assert receiver.stop() == 0, receiver.log_tail()
    assert delivered(out) == list(range(EVENTS))
