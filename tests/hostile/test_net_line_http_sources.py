"""Hostile clients against a real agent's netcat, syslogtcp and http sources (issue 21's
limits on the listeners of issue 15) while a well-behaved client keeps sending to each:
slow-loris connections, over-long lines, an oversized body, a flood of connections. Each
attack costs a bounded amount of memory, the good clients barely notice, and at the end every
event they were told was accepted is in the sink's file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.procs import free_port, listening
from tests.hostile import attacks
from tests.hostile.net_targets import (
    Report,
    Target,
    _Background,
    assert_unharmed,
    attack,
    running,
    wait_for,
)

pytestmark = pytest.mark.e2e
MiB = 2**20
CONNS = 40  # max-connections of each source here


@dataclass
class Ports:
    netcat: int
    syslog: int
    http: int


def _agent(tmp: Path, ports: Ports) -> Target:
    """netcat, syslogtcp and http -> memory -> file_roll (one body per line), under small
    limits so that the attacks reach them fast."""
    limits = "\n".join(f"""\
a1.sources.{r}.max-connections = {CONNS}
a1.sources.{r}.max-buffered-bytes = {MiB}
a1.sources.{r}.idle-timeout = 3000
a1.sources.{r}.frame-timeout = 1000
a1.sources.{r}.channels = c1""" for r in ("nc", "sl", "ht"))
    (tmp / "out").mkdir()
    conf = tmp / "sources.conf"
    conf.write_text(f"""\
a1.sources = nc sl ht
a1.channels = c1
a1.sinks = k1
a1.sources.nc.type = netcat
a1.sources.nc.bind = 127.0.0.1
a1.sources.nc.port = {ports.netcat}
a1.sources.nc.max-line-length = 512
a1.sources.sl.type = syslogtcp
a1.sources.sl.host = 127.0.0.1
a1.sources.sl.port = {ports.syslog}
a1.sources.ht.type = http
a1.sources.ht.bind = 127.0.0.1
a1.sources.ht.port = {ports.http}
{limits}
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {tmp / "out"}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
""")
    target = Target("flume-agent", ["-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                    "-Dflume.root.logger=INFO,console"], tmp / "sources.log")
    for port in (ports.netcat, ports.syslog, ports.http):
        wait_for(lambda p=port: listening(p), 30, f"the agent on {port}", target)  # type: ignore[misc]
    return target


# ---- well-behaved clients ------------------------------------------------------------------

class GoodNetcat(_Background):
    """Lines of 10, each answered OK (ack-every-event) before the next 10 go."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        seq = 0
        while not stopping():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.params["port"])
                while not stopping():
                    writer.write(b"".join(b"good-nc %d\n" % (seq + i) for i in range(10)))
                    for _ in range(10):
                        async with asyncio.timeout(10):
                            line = await reader.readline()
                        if line != b"OK\n":
                            raise ConnectionError(f"answered {line!r}")
                        seq += 1
                    report("ok", 10)
                writer.close()
            except (OSError, TimeoutError) as exc:
                report("error", repr(exc))
                await asyncio.sleep(0.05)


class GoodSyslog(_Background):
    """RFC 5424 lines, 10 per write; syslog answers nothing, so a write TCP took counts
    (the source stops reading while its channel refuses, so TCP would hold a stalled write)."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        seq = 0
        _, writer = await asyncio.open_connection("127.0.0.1", self.params["port"])
        try:
            while not stopping():
                writer.write(b"".join(b"<13>1 - host app - - - good-sl %d\n" % (seq + i)
                                      for i in range(10)))
                await writer.drain()
                seq += 10
                report("ok", 10)
                await asyncio.sleep(0.002)
        finally:
            writer.close()


class GoodHttp(_Background):
    """POSTs of 10 JSON events with keep-alive; 200 counts them."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        import aiohttp

        seq = 0
        url = f"http://127.0.0.1:{self.params['port']}/"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while not stopping():
                body = json.dumps([{"body": f"good-ht {seq + i}"} for i in range(10)])
                try:
                    async with session.post(url, data=body) as resp:
                        await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    report("error", repr(exc))
                    continue
                if status == 200:
                    seq += 10
                    report("ok", 10)
                else:
                    report("error", f"status {status}")


@dataclass
class Agent:
    target: Target
    ports: Ports
    clients: dict[str, _Background]
    out: Path


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    tmp = tmp_path_factory.mktemp("sources")
    ports = Ports(free_port(), free_port(), free_port())
    target = _agent(tmp, ports)
    clients = {"netcat": GoodNetcat(ports.netcat), "syslog": GoodSyslog(ports.syslog),
               "http": GoodHttp(ports.http)}
    try:
        with running(*clients.values()):
            wait_for(lambda: all(c.record.total for c in clients.values()), 60,
                     "every good client's first success", target)
            yield Agent(target, ports, clients, tmp / "out")
    finally:
        target.stop()


# ---- attacks ----------------------------------------------------------------------------------

def _hold(socks: list[socket.socket], seconds: float, drip: bytes = b"") -> int:
    """Keep ``socks`` open for ``seconds``, sending ``drip`` on each every 0.2 s; how many
    the server closed (or refused) meanwhile."""
    closed: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(closed) < len(socks):
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                sock.setblocking(False)
                if drip:
                    sock.send(drip)
                if sock.recv(65536) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    for sock in socks:
        sock.close()
    return len(closed)


def _connect(port: int, n: int, first: bytes = b"") -> list[socket.socket]:
    socks = []
    for _ in range(n):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        with contextlib.suppress(OSError):
            sock.sendall(first)
        socks.append(sock)
    return socks


def slow_loris(port: int, head: bytes) -> int:
    """``CONNS - 5`` connections each sending a line (or request) a byte at a time: closed by
    frame-timeout (1 s here), while the good client keeps its connection."""
    return _hold(_connect(port, CONNS - 5, head), 4.0, drip=b"a")


def connection_flood(port: int) -> int:
    """300 silent connections: past max-connections they are refused, and the rest are
    closed by idle-timeout (3 s here)."""
    return _hold(_connect(port, 300), 5.0)


def over_long_lines(port: int, size: int) -> int:
    """20 connections each sending a line of ``size`` bytes, past max-line-length (netcat:
    the connection is closed) or eventSize (syslog: cut into eventSize pieces, each an
    ``Incomplete`` event, as Flume does: accepted data, so the test sends less of it)."""
    line = b"<13>1 - host app - - - " + b"x" * size + b"\n"
    socks = _connect(port, 20)
    threads = [threading.Thread(target=attacks._send, args=(s, line)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return _hold(socks, 2.0)


def oversized_bodies(port: int) -> int:
    """10 connections each announcing a 60 MiB body (under the handler's 64 MiB) and sending
    4 MiB of it: past max-buffered-bytes (1 MiB here), the largest are closed."""
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n[" % (60 * MiB)
    socks = _connect(port, 10, head)
    threads = [threading.Thread(target=attacks._send, args=(s, b"{" * (4 * MiB)))
               for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return _hold(socks, 2.0)


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    run: Callable[[Ports], int]
    closed_at_least: int
    rss_mib: int = 40


CASES = [
    Case("netcat slow loris", "netcat", lambda p: slow_loris(p.netcat, b"abc"), CONNS - 5),
    Case("syslog slow loris", "syslog", lambda p: slow_loris(p.syslog, b"<13>1 - h "),
         CONNS - 5),
    Case("http slow loris", "http", lambda p: slow_loris(p.http, b"POST / HTTP/1.1\r\nX-A: "),
         CONNS - 5),
    Case("netcat connection flood", "netcat", lambda p: connection_flood(p.netcat), 250),
    Case("syslog connection flood", "syslog", lambda p: connection_flood(p.syslog), 250),
    Case("http connection flood", "http", lambda p: connection_flood(p.http), 250),
    Case("netcat over-long lines", "netcat", lambda p: over_long_lines(p.netcat, 2 * MiB),
         20),
    Case("syslog over-long lines", "syslog", lambda p: over_long_lines(p.syslog, MiB // 4),
         0),
    Case("http oversized bodies", "http", lambda p: oversized_bodies(p.http), 9),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack(agent: Agent, case: Case) -> None:
    client = agent.clients[case.source]
    out = attack(agent.target, client.record, case.name, lambda: case.run(agent.ports))
    assert_unharmed(out, agent.target, case.rss_mib)
    assert isinstance(out.result, int) and out.result >= case.closed_at_least, str(out)


def test_no_accepted_event_lost_and_few_log_lines(agent: Agent) -> None:
    for client in agent.clients.values():
        client.stop()
    accepted = {name: client.record.total for name, client in agent.clients.items()}
    assert agent.target.stop() == 0
    text = "".join(p.read_text(errors="replace") for p in agent.out.iterdir())
    for name, marker in (("netcat", "good-nc "), ("syslog", "good-sl "), ("http", "good-ht ")):
        # syslog bodies keep what follows the host name (Flume's keepFields = none)
        delivered = {line.split(marker, 1)[1] for line in text.splitlines() if marker in line}
        assert accepted[name] > 0
        assert len(delivered) >= accepted[name], (name, len(delivered), accepted[name])
    log = agent.target.text()
    assert "Traceback" not in log and "Unhandled exception" not in log, log[-3000:]
    assert len(log.splitlines()) < 300, log[-3000:]
