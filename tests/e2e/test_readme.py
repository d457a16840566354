"""README's "Running it yourself", run as written in a temporary directory.

The directory gets what a clone has at its root (``configs/``, ``scripts/``, the ``.venv``
that ``make setup`` made, as symbolic links) and each line of the block runs there in
``bash`` after the block's own ``. .venv/bin/activate``. ``make setup`` itself is left out
(``make test`` already made the venv), a line ending in ``&`` starts in the background, the
foreground ``flume-consumer`` is stopped with Ctrl-C (SIGINT) once its table shows the
generated log's top URLs, and ``kill %1`` is SIGTERM to the background agent. Both must then
exit 0. One thing is changed: both are pointed at a free port instead of 9092, which on a
shared machine can be another program's (another checkout's demo once pushed its own events
into this test's consumer there).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.demo import last_table, matches
from scripts.genlog import expected_counts, generate
from tests.e2e.procs import ENV, ROOT, free_port

pytestmark = pytest.mark.e2e

ACTIVATE = ". .venv/bin/activate"


def readme_commands() -> list[str]:
    """The lines of the first ``sh`` block under "## Running it yourself", comments removed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running it yourself", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = (re.split(r"\s+#\s", line, maxsplit=1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def test_the_readme_block_is_what_this_test_expects() -> None:
    commands = readme_commands()
    assert commands[0] == "make setup" and commands[1] == ACTIVATE
    assert commands[-1] == "kill %1"
    assert sum(c.endswith("&") for c in commands) == 1
    assert sum(c.startswith("flume-consumer") for c in commands) == 1


def _shell(command: str, cwd: Path, name: str) -> subprocess.Popen[bytes]:
    """``command`` in bash after the activation; its stdout and stderr in ``cwd/name.*``."""
    with open(cwd / f"{name}.out", "ab") as out, open(cwd / f"{name}.err", "ab") as err:
        return subprocess.Popen(["bash", "-c", f"{ACTIVATE} && exec {command}"], cwd=cwd,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=ENV)


def _logs(where: Path) -> str:
    return "\n".join(f"--- {name}:\n{(where / name).read_text(errors='replace')[-2000:]}"
                     for name in ("agent.log", "consumer.err") if (where / name).exists())


def _wait(proc: subprocess.Popen[bytes], cond: Callable[[], bool], what: str, where: Path,
          timeout: float = 80) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{what}: gave up (exit {proc.poll()})\n{_logs(where)}")
        time.sleep(0.1)


def test_running_it_yourself_works_as_written(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("needs the .venv that make setup creates")
    for name in (".venv", "configs", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    port = free_port()
    background: subprocess.Popen[bytes] | None = None
    consumer: subprocess.Popen[bytes] | None = None
    consumer_out = tmp_path / "consumer.out"
    expected = expected_counts(generate(100_000, 0))  # genlog's defaults: seed 0
    try:
        for command in readme_commands():
            if command in ("make setup", ACTIVATE):
                continue
            if command == "kill %1":
                assert background is not None
                background.send_signal(signal.SIGTERM)
                assert background.wait(30) == 0, _logs(tmp_path)
                background = None
            elif command.endswith("&"):
                command = command[:-1].strip()
                command = command.replace(" -n a1", f" -n a1 -Da1.sinks.k1.port={port}")
                background = _shell(command, tmp_path, "background")
            elif command.startswith("flume-consumer"):
                consumer = _shell(f"{command} --port {port}", tmp_path, "consumer")
                _wait(consumer, lambda: matches(last_table(consumer_out.read_text()),
                                                expected, 10),
                      "the consumer's table to show the top 10 URLs of the generated log",
                      tmp_path)
                consumer.send_signal(signal.SIGINT)  # Ctrl-C
                assert consumer.wait(30) == 0, _logs(tmp_path)
            else:
                done = subprocess.run(["bash", "-c", f"{ACTIVATE} && {command}"], cwd=tmp_path,
                                      env=ENV, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, f"{command}: {done.stderr}"
    finally:
        for proc in (background, consumer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert (tmp_path / "demo-run" / "spool" / "access.log.COMPLETED").exists()
    agent_log = (tmp_path / "agent.log").read_text()
    assert "Traceback" not in agent_log, agent_log
    assert "Traceback" not in (tmp_path / "consumer.err").read_text()
