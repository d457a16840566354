"""The exec source: runs ``command`` and makes every line of its standard output an event.

As Flume's ExecSource: ``shell`` (e.g. ``/bin/sh -c``) runs the command through a shell, else
it is split on whitespace; ``restart`` starts it again ``restartThrottle`` ms after it exits;
lines go to the channels ``batchSize`` at a time, or after ``batchTimeout`` ms; stderr is read
and logged when ``logStdErr``, discarded otherwise. Lines end at ``\\n``, ``\\r\\n`` or ``\\r``
(Java's readLine); bodies are the line's bytes, unchanged (``charset`` must be ASCII-compatible).

Differences, both deliberate: when the channels refuse a batch, Flume kills the command; here
the batch is held and retried, and the command is simply not read meanwhile (its pipe fills and
it blocks), so nothing it printed is lost while the agent runs. The command runs in its own
process group, and stopping the agent ends the whole group and reaps it: no orphans, no
zombies. Like Flume, exec cannot replay: lines held in memory when the agent dies are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from typing import TYPE_CHECKING, Any

from agent.components import EventDrivenSource
from agent.config.converters import charset, integer, to_bool
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.sources.listener import Delivery
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

_EOL = re.compile(rb"\r\n|\r|\n")
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


class ExecLines:
    """Java's readLine over a byte stream: ``\\n``, ``\\r\\n`` and ``\\r`` end a line."""

    def __init__(self) -> None:
        self._pending = b""
        self._skip_lf = False  # the last chunk ended with \r: a \n next belongs to it

    def feed(self, data: bytes) -> list[bytes]:
        if self._skip_lf and data[:1] == b"\n":
            data = data[1:]
        self._skip_lf = False
        buf = self._pending + data if self._pending else data
        parts = buf.split(b"\n") if b"\r" not in buf else _EOL.split(buf)
        self._pending = parts.pop()
        if not self._pending and buf.endswith(b"\r"):
            self._skip_lf = True
        return parts

    def finish(self) -> list[bytes]:
        rest, self._pending = self._pending, b""
        return [rest] if rest else []


def command_line(command: str, shell: str | None) -> list[str]:
    """The argv Flume builds: the shell's words plus the command as one argument, or the
    command split on whitespace."""
    if shell:
        return [*shell.split(), command]
    return command.split()


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    if not settings["command"].strip():
        return [Problem(IssueCode.BAD_VALUE, "'command' is empty", "command")]
    if "a\r\n".encode(settings["charset"]) != b"a\r\n":
        return [Problem(IssueCode.BAD_VALUE, f"charset {settings['charset']} is not "
                        "ASCII-compatible: the command's lines could not be split", "charset")]
    return []


class ExecSource(EventDrivenSource):
    SCHEMA = Schema(
        keys=(
            Key("command", required=True),
            Key("shell"),
            Key("restartThrottle", integer(0, bits=64), 10_000),
            Key("restart", to_bool, False),
            Key("logStdErr", to_bool, False),
            Key("batchSize", integer(1), 20),
            Key("batchTimeout", integer(0, bits=64), 3000),
            Key("charset", charset, "UTF-8"),
        ),
        rules=_rules,
        batch_key="batchSize",
    )

    def __init__(self, name: str, command: str, *, shell: str | None = None,
                 restart: bool = False, restart_throttle_ms: int = 10_000,
                 log_stderr: bool = False, batch_size: int = 20, batch_timeout_ms: int = 3000,
                 charset: str = "UTF-8", counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        if not command.strip():
            raise ValueError(f"source {name}: 'command' is empty")
        if batch_size < 1:
            raise ValueError(f"source {name}: batchSize must be >= 1")
        if "a\r\n".encode(charset) != b"a\r\n":
            raise ValueError(f"source {name}: charset {charset} is not ASCII-compatible; "
                             "lines could not be split")
        self.argv = command_line(command, shell)
        self.restart = restart
        self.restart_throttle = restart_throttle_ms / 1000
        self.log_stderr = log_stderr
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout_ms / 1000
        self.charset = charset
        self.counter = counter if counter is not None else CounterGroup("SOURCE", name)
        self.delivery = Delivery(name, self.counter)
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0  # how many times the command was started
        self.exit_codes: list[int] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> ExecSource:
        s = spec.settings
        return cls(spec.name, s["command"], shell=s["shell"] or None, restart=s["restart"],
                   restart_throttle_ms=s["restartThrottle"], log_stderr=s["logStdErr"],
                   batch_size=s["batchSize"], batch_timeout_ms=s["batchTimeout"],
                   charset=s["charset"], counter=ctx.metrics.source(spec.name))

    async def start(self) -> None:
        if self._task is None:
            self.delivery.processor = self.channel_processor
            self.delivery.stopping.clear()
            self._task = asyncio.create_task(self._run(), name=f"exec:{self.name}")

    async def stop(self) -> None:
        self.delivery.stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        self._signal(signal.SIGTERM)
        done, _ = await asyncio.wait([task], timeout=KILL_GRACE)
        if not done:
            self._signal(signal.SIGKILL)
            done, _ = await asyncio.wait([task], timeout=KILL_GRACE)
        if not done:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def _signal(self, sig: int) -> None:
        """Signal the command's process group, while its leader is not yet reaped (so the
        group id cannot belong to anyone else)."""
        proc = self.process
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)

    async def _run(self) -> None:
        stopping = self.delivery.stopping
        while not stopping.is_set():
            try:
                await self._run_once()
            except OSError as exc:
                log.error("source %s: cannot run %s: %s", self.name, self.argv, exc)
            if not self.restart or stopping.is_set():
                break
            log.info("source %s: restarting %s in %.0f ms", self.name, self.argv,
                     self.restart_throttle * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.restart_throttle)

    async def _run_once(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if self.log_stderr else asyncio.subprocess.DEVNULL,
            start_new_session=True)
        self.process = proc
        self.starts += 1
        stderr_task = None
        if proc.stderr is not None:
            stderr_task = asyncio.create_task(self._log_stderr(proc.stderr))
        try:
            assert proc.stdout is not None
            await self._pump(proc.stdout)
        finally:
            self._signal(signal.SIGTERM)  # stdout closed: Flume destroys the process too
            try:
                code = await asyncio.wait_for(proc.wait(), KILL_GRACE)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                code = await proc.wait()
            if stderr_task is not None:
                await asyncio.gather(stderr_task, return_exceptions=True)
        self.exit_codes.append(code)
        log.info("source %s: command %s exited with %s", self.name, self.argv, code)

    async def _pump(self, stdout: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        lines = ExecLines()
        batch: list[Event] = []
        last_push = loop.time()
        while True:
            timeout = None
            if batch:
                timeout = max(self.batch_timeout - (loop.time() - last_push), 0)
            try:
                data = await asyncio.wait_for(stdout.read(65536), timeout)
            except TimeoutError:
                data = None
            if data:
                for line in lines.feed(data):
                    batch.append(Event({}, line))
                    if len(batch) >= self.batch_size:
                        await self._push(batch)
                        batch, last_push = [], loop.time()
            elif data == b"":
                batch.extend(Event({}, line) for line in lines.finish())
                if batch:
                    await self._push(batch)
                return
            if batch and loop.time() - last_push >= self.batch_timeout:
                await self._push(batch)
                batch, last_push = [], loop.time()

    async def _push(self, batch: list[Event]) -> None:
        await self.delivery.until_accepted(batch, f"command {self.argv[0]}")

    async def _log_stderr(self, stderr: asyncio.StreamReader) -> None:
        lines, count = ExecLines(), 0
        while True:
            data = await stderr.read(65536)
            for line in lines.feed(data) if data else lines.finish():
                count += 1
                log.info("source %s: StderrLogger[%d] = '%s'", self.name, count,
                         line.decode(self.charset, "replace"))
            if not data:
                return
