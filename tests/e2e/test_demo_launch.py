"""``make demo`` picks a free port, then starts the listening process: when another program
takes the port in between, the demo picks another port instead of failing."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from scripts.demo import commands, launch

pytestmark = pytest.mark.e2e


def test_a_port_taken_after_it_was_picked_is_replaced(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    with socket.socket() as thief:  # "free" when picked, taken before the consumer binds
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        agent, consumer = launch("push", lambda p: commands("push", spool, 3, p), taken, env,
                                 None)
        try:
            assert f"port {taken} was taken meanwhile" in capsys.readouterr().out
            assert agent.proc.poll() is None and consumer.proc.poll() is None
            assert str(taken) not in " ".join(agent.proc.args)
        finally:
            agent.stop()  # may still be starting up: its exit code says nothing here
            assert consumer.stop() == 0
