"""The consumer's web UI under a low descriptor limit: idle browser connections cannot take
the process's descriptors from its receiver, and the UI itself stays reachable (a new
connection evicts the oldest idle one when the UI is full)."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.procs import free_port, listening
from tests.hostile.net_targets import GoodSender, counted, push_consumer, wait_for
from tests.wire import open_fds

pytestmark = pytest.mark.e2e
NOFILE = 256


def test_idle_ui_connections_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    push, ui = free_port(), free_port()
    out = tmp_path / "out.jsonl"
    target = push_consumer(tmp_path, push, out, options=["--ui-port", str(ui)], nofile=NOFILE)
    socks: list[socket.socket] = []
    sender = None
    try:
        wait_for(lambda: listening(ui), 30, "the web UI", target)
        for _ in range(400):  # more idle connections than the process has descriptors
            try:
                socks.append(socket.create_connection(("127.0.0.1", ui), timeout=5))
            except OSError:
                break
        wait_for(lambda: open_fds(target.pid) < NOFILE - 6, 10,
                 "the refused connections to close", target)
        # the receiver still takes events ...
        sender = GoodSender(push)
        sender.start()
        wait_for(lambda: counted(out) >= 1000, 30, "events through the receiver", target)
        # ... and the UI still answers a new client
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/api/state", timeout=10) as resp:
            state = json.loads(resp.read())
        assert state["totals"]["batches"] >= 1
        assert target.alive()
    finally:
        if sender is not None:
            sender.stop()
        for s in socks:
            s.close()
        target.stop()
    log = target.text()
    assert "Too many open files" not in log and "Traceback" not in log, log[-3000:]
    refusals = [line for line in log.splitlines() if "refusing the connection" in line]
    assert 1 <= len(refusals) <= 3, log[-3000:]  # one line, not one per connection
    assert "max-connections" in refusals[0] or "file descriptors" in refusals[0], refusals
