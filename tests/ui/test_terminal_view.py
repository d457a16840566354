"""The live terminal view, driven under a pseudo-terminal as a user runs it: the consumer
draws a table of the top URLs, and Ctrl-C (the terminal's interrupt character, so the tty
driver sends SIGINT) stops it cleanly: exit 0, the last table drawn, the cursor given back.
Without a terminal (or with ``--plain``) stdout keeps the pprint format."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import RpcClient
from tests.e2e.procs import ENV, ROOT, free_port, listening

pytestmark = pytest.mark.e2e
LINE = '10.0.0.1 - - [10/Oct/2023:13:55:00 +0000] "GET {url} HTTP/1.1" 200 5 "-" "curl/8"'
URLS = ["/alpha"] * 5 + ["/beta"] * 3 + ["/gamma"]


def send(port: int) -> None:
    async def main() -> None:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
        try:
            assert await client.call("appendBatch", {"events": [
                {"headers": {}, "body": LINE.format(url=u).encode()} for u in URLS]}) == "OK"
        finally:
            await client.close()

    asyncio.run(main())


class Terminal:
    """A child process on a pseudo-terminal (80x30); everything it wrote is kept."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        env = {**ENV, "COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
        # a session of its own with the pty as its controlling terminal, so the interrupt
        # character makes the tty driver send SIGINT, as on a real terminal
        self.proc = subprocess.Popen(args, cwd=ROOT, stdin=slave, stdout=slave, stderr=slave,
                                     env=env, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.seen = b""

    def read(self, timeout: float = 0.2) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.seen += os.read(self.master, 65536)
            except OSError:  # the child closed its end
                pass

    def wait_for(self, what: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while what not in self.seen:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {what!r} on the terminal:\n"
                                     f"{self.seen.decode(errors='replace')[-3000:]}")
            self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


def test_live_table_renders_and_ctrl_c_exits_cleanly() -> None:
    port = free_port()
    term = Terminal([sys.executable, "-m", "consumer.cli", "--port", str(port), "--ui-port",
                     "0", "--top", "2"])
    try:
        term.wait_for(b"events/s", 60)
        deadline = time.monotonic() + 30
        while not listening(port):
            assert time.monotonic() < deadline
            term.read(0.1)
        send(port)
        term.wait_for(b"/beta", 30)
        screen = term.seen.decode(errors="replace")
        assert "apache_top_urls" in screen and "events/s" in screen
        assert "/alpha" in screen and "/gamma" not in screen  # top 2
        assert "Time: " not in screen  # no pprint blocks under the table
        term.seen = b""
        os.write(term.master, b"\x03")  # Ctrl-C
        deadline = time.monotonic() + 30
        while term.proc.poll() is None:
            assert time.monotonic() < deadline, term.seen.decode(errors="replace")
            term.read()
        term.read()
        assert term.proc.returncode == 0, term.seen.decode(errors="replace")
        tail = term.seen.decode(errors="replace")
        assert "stopped cleanly" in tail
        assert "\x1b[?25h" in tail  # the cursor is shown again
    finally:
        term.close()


def test_plain_keeps_pprint_on_a_terminal(tmp_path: Path) -> None:
    port = free_port()
    term = Terminal([sys.executable, "-m", "consumer.cli", "--port", str(port), "--ui-port",
                     "0", "--top", "2", "--plain", "--duration", "30"])
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert time.monotonic() < deadline and term.proc.poll() is None
            term.read(0.1)
        send(port)
        term.wait_for(b"('/beta', 3)", 30)
        assert b"('/alpha', 5)\r\n('/beta', 3)\r\n...\r\n" in term.seen
    finally:
        term.close()
