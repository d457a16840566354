"""Agent throughput on the paths a user runs: real ``flume-agent`` processes, files renamed
into a spool directory, a peer that is not our own code where one is available.

1. ``spool-memory``: 135-byte Apache lines in 10 files renamed into the spool dir ->
   spooldir -> memory channel -> avro sink (batches of 1000) -> a receiver that only counts
   and answers OK (Apache Avro's Java NettyServer when the Java peer is available, else a
   flumelet RpcServer in its own process). Timed from the first rename until the agent's
   sink has every line acknowledged. MiB/s and lines/s.
2. ``spool-file``: the same with a file channel at its default durability; reported as a
   share of (1).
3. ``java-client``: Apache Avro's Java NettyTransceiver (what Flume's avro sink runs) sends
   the same lines as appendBatch calls of 1000 to flumelet's avro source -> memory -> null,
   and, in the same run, to Apache Avro's Java NettyServer; reported as the ratio.
4. ``rss``: the agent's resident memory growth with a full 100,000-event memory channel,
   as a multiple of the body bytes the channel holds.

Baselines, same run: a raw read of the same files (1 MiB blocks), and a raw socket send of
the same bytes over loopback to another process that only reads them.

The Java peer is not part of this repository: Apache Avro 1.12's NettyServer and
NettyTransceiver (ipc-netty, with its avro, netty, jackson and slf4j jars) plus a driver class
that takes ``server PORT PROTOCOL_JSON`` (stops on stdin EOF) or ``client HOST PORT
PROTOCOL_JSON LINES_FILE BATCH`` (prints ``events_per_s R``). It is found through
``FLUMELET_JAVA_PEER`` (a directory holding ``lib/*.jar`` and ``classes/``) or
``FLUMELET_JAVA_PEER_CP`` (a class path), with ``FLUMELET_JAVA_PEER_CLASS`` (default
``FlumePeer``); without ``java`` or a peer the Java figure prints "skipped" with the reason,
and the receiver of (1) and (2) is a flumelet RpcServer in its own process.

Every figure is a row of ``make bench``'s table (``"row": "extra"``); the last JSON line is
spooldir -> memory -> avro.

    python bench/agent_throughput.py [--quick] [--lines N] [--only NAME ...] [--repeat K]
        [--profile DIR]   # py-spy flame data of each agent (needs py-spy on PATH)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import apache_line  # noqa: E402

LINE_BYTES = 135  # with its newline, as the figures
FILES = 10
BATCH = 1000
MIB = 1024 * 1024
PROTOCOL_JSON = ROOT / "protocol" / "AvroSourceProtocol.json"
START_TIMEOUT = 60.0
TARGET_MIBS = 35.0  # Fluent Bit's published file -> TCP figure on 2 vCPU
TARGET_FILE_SHARE = 0.5
TARGET_JAVA_RATIO = 1.0
TARGET_RSS_RATIO = 2.0
RSS_EVENTS = 100_000

SPOOL_CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.batchSize = {batch}
a1.sources.r1.channels = c1
a1.sinks.k1.type = avro
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {port}
a1.sinks.k1.batch-size = {batch}
a1.sinks.k1.channel = c1
"""
MEMORY_CHANNEL = """
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = {batch}
"""
FILE_CHANNEL = """
a1.channels.c1.type = file
a1.channels.c1.dataDirs = {data}
a1.channels.c1.transactionCapacity = {batch}
"""
AVRO_SOURCE_CONFIG = """
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = {batch}
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = {batch}
a1.sinks.k1.channel = c1
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_line(i: int, rng: random.Random) -> bytes:
    """A LINE_BYTES-byte Apache line (newline included): the user agent is padded."""
    line = apache_line(i, rng)
    pad = LINE_BYTES - 1 - len(line)
    if pad > 0:
        line = line[:-1] + b" " + b"x" * (pad - 1) + b'"'
    return line[: LINE_BYTES - 1] + b"\n"


def write_files(directory: Path, lines: int) -> int:
    """FILES files holding ``lines`` lines in all; their total size in bytes."""
    rng = random.Random(42)
    per_file = lines // FILES
    total = 0
    for f in range(FILES):
        data = b"".join(make_line(f * per_file + i, rng) for i in range(per_file))
        (directory / f"access-{f:02d}.log").write_bytes(data)
        total += len(data)
    return total


# ---- baselines ------------------------------------------------------------------------
def raw_read(directory: Path) -> float:
    """Seconds to read every file in 1 MiB blocks."""
    start = time.perf_counter()
    for path in sorted(directory.iterdir()):
        with open(path, "rb", buffering=0) as f:
            while f.read(MIB):
                pass
    return time.perf_counter() - start


def _drain(port_q: Any) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port_q.put(server.getsockname()[1])
        conn, _ = server.accept()
        got = 0
        while data := conn.recv(MIB):
            got += len(data)
        conn.sendall(str(got).encode())
        conn.close()


def raw_send(directory: Path) -> float:
    """Seconds to send every file's bytes over loopback to a process that only reads."""
    q: Any = mp.Queue()
    proc = mp.Process(target=_drain, args=(q,), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=START_TIMEOUT)
        blobs = [p.read_bytes() for p in sorted(directory.iterdir())]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            start = time.perf_counter()
            for blob in blobs:
                view = memoryview(blob)
                for i in range(0, len(view), MIB):
                    sock.sendall(view[i : i + MIB])
            sock.shutdown(socket.SHUT_WR)
            got = int(sock.recv(64))
            elapsed = time.perf_counter() - start
        assert got == sum(map(len, blobs)), (got, sum(map(len, blobs)))
        return elapsed
    finally:
        proc.join(10)


# ---- processes ------------------------------------------------------------------------
@dataclass
class JavaPeer:
    classpath: str
    main_class: str

    @classmethod
    def from_env(cls) -> JavaPeer | str:
        """The peer, or why there is none."""
        cp = os.environ.get("FLUMELET_JAVA_PEER_CP", "")
        home = os.environ.get("FLUMELET_JAVA_PEER")
        if home and not cp:
            jars = sorted(str(p) for p in Path(home, "lib").glob("*.jar"))
            cp = os.pathsep.join([*jars, str(Path(home, "classes"))]) if jars else ""
            if not cp:
                return f"no jars in {home}/lib"
        if not cp:
            return "set FLUMELET_JAVA_PEER (lib/*.jar + classes/) or FLUMELET_JAVA_PEER_CP"
        if shutil.which("java") is None:
            return "no java on PATH"
        return cls(cp, os.environ.get("FLUMELET_JAVA_PEER_CLASS", "FlumePeer"))

    def command(self, *args: str) -> list[str]:
        return ["java", "-cp", self.classpath, self.main_class, *args]

    def client(self, port: int, lines_file: Path) -> float:
        """events/s the Java client measured sending ``lines_file`` to ``port``."""
        out = subprocess.run(
            self.command("client", "127.0.0.1", str(port), str(PROTOCOL_JSON),
                         str(lines_file), str(BATCH)),
            capture_output=True, text=True, timeout=600, check=True).stdout
        match = re.search(r"events_per_s (\d+)", out)
        if match is None:
            raise RuntimeError(f"the Java client printed no rate: {out!r}")
        return float(match.group(1))

    @contextlib.contextmanager
    def server(self, port: int) -> Iterator[subprocess.Popen[bytes]]:
        proc = subprocess.Popen(self.command("server", str(port), str(PROTOCOL_JSON)),
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, proc)
            yield proc
        finally:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()  # the driver stops on stdin EOF
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _count_and_answer(port_q: Any) -> None:
    """A flumelet RpcServer that only counts events and answers OK."""
    import asyncio

    from protocol.schemas import AVRO_SOURCE_PROTOCOL
    from protocol.transport import RpcServer

    async def main() -> None:
        async def handler(call: Any, conn: Any) -> str:
            return "OK"

        server = RpcServer(AVRO_SOURCE_PROTOCOL, handler)
        await server.start()
        port_q.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


@contextlib.contextmanager
def receiver(java: JavaPeer | None) -> Iterator[tuple[int, str]]:
    """(port, name) of a receiver that only counts and answers."""
    if java is not None:
        port = free_port()
        with java.server(port):
            yield port, "Apache Avro's Java NettyServer"
        return
    q: Any = mp.Queue()
    proc = mp.Process(target=_count_and_answer, args=(q,), daemon=True)
    proc.start()
    try:
        yield q.get(timeout=START_TIMEOUT), "a flumelet RpcServer process"
    finally:
        proc.terminate()
        proc.join(10)


def wait_listening(port: int, proc: subprocess.Popen[Any], timeout: float = START_TIMEOUT
                   ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


class Agent:
    """A ``flume-agent`` process with HTTP metrics."""

    def __init__(self, work: Path, config: str, profile: Path | None = None) -> None:
        conf = work / "agent.conf"
        conf.write_text(config)
        self.metrics_port = free_port()
        self.log = work / "agent.log"
        cmd = [sys.executable, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
               "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={self.metrics_port}",
               "-Dflume.root.logger=WARN,console"]
        if profile is not None:
            cmd = ["py-spy", "record", "--format", "raw", "-r", "200", "-o", str(profile), "--",
                   *cmd]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})
        wait_listening(self.metrics_port, self.proc)

    def metrics(self) -> dict[str, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            data: dict[str, dict[str, Any]] = json.load(reply)
            return data

    def counter(self, component: str, key: str) -> int:
        return int(self.metrics()[component][key])

    def wait_for(self, component: str, key: str, value: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.counter(component, key)) < value:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited {self.proc.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{component}.{key} reached {got} of {value}: {self.tail()}")
            time.sleep(0.01)

    def rss(self) -> int:
        """Resident bytes of the agent's Python process."""
        pid = self.python_pid()
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def python_pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the agent process so far (every thread)."""
        fields = Path(f"/proc/{self.python_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- the runs ---------------------------------------------------------------------------
def spool_run(work: Path, staging: Path, lines: int, channel: str, java: JavaPeer | None,
              profile: Path | None) -> tuple[float, float, str]:
    """(seconds from the first rename until the sink has every line acknowledged, the
    agent's CPU seconds meanwhile, the receiver's name)."""
    run = Path(tempfile.mkdtemp(dir=work, prefix=f"{channel}-"))
    spool = run / "spool"
    spool.mkdir()
    with receiver(java) as (port, name):
        config = SPOOL_CONFIG.format(spool=spool, port=port, batch=BATCH)
        if channel == "memory":
            config += MEMORY_CHANNEL.format(capacity=100_000, batch=BATCH)
        else:
            config += FILE_CHANNEL.format(data=run / "data", batch=BATCH)
        agent = Agent(run, config, profile)
        try:
            cpu = agent.cpu_seconds() if profile is None else 0.0
            start = time.perf_counter()
            for path in sorted(staging.iterdir()):  # same filesystem: a rename each
                os.link(path, spool / path.name)
            agent.wait_for("SINK.k1", "EventDrainSuccessCount", lines, 600)
            elapsed = time.perf_counter() - start
            cpu = agent.cpu_seconds() - cpu if profile is None else 0.0
        finally:
            agent.stop()
    shutil.rmtree(run, ignore_errors=True)
    return elapsed, cpu, name


def java_client_run(work: Path, java: JavaPeer, lines_file: Path, lines: int,
                    profile: Path | None) -> tuple[float, float]:
    """(events/s into flumelet's avro source, events/s into Java's NettyServer)."""
    port = free_port()
    agent = Agent(work, AVRO_SOURCE_CONFIG.format(port=port, batch=BATCH), profile)
    try:
        wait_listening(port, agent.proc)
        ours = java.client(port, lines_file)
        agent.wait_for("SINK.k1", "EventDrainSuccessCount", lines, 60)
    finally:
        agent.stop()
    port = free_port()
    with java.server(port):
        theirs = java.client(port, lines_file)
    return ours, theirs


def rss_run(work: Path, staging: Path) -> tuple[float, int, int]:
    """(RSS growth / body bytes held, growth, body bytes held) with a full memory channel."""
    run = Path(tempfile.mkdtemp(dir=work, prefix="rss-"))
    spool = run / "spool"
    spool.mkdir()
    # the sink points at a port nobody listens on: the channel fills up and stays full
    config = SPOOL_CONFIG.format(spool=spool, port=free_port(), batch=BATCH)
    config += MEMORY_CHANNEL.format(capacity=RSS_EVENTS, batch=BATCH)
    agent = Agent(run, config)
    try:
        time.sleep(1.0)  # let start-up settle (imports, first scans)
        empty = agent.rss()
        for path in sorted(staging.iterdir()):
            os.link(path, spool / path.name)
        # full: the next source batch no longer fits
        agent.wait_for("CHANNEL.c1", "ChannelSize", RSS_EVENTS - BATCH + 1, 300)
        time.sleep(0.5)  # the source holds one refused batch; let it settle
        full = agent.rss()
        held = agent.counter("CHANNEL.c1", "ChannelSize") * (LINE_BYTES - 1)
    finally:
        agent.stop()
    shutil.rmtree(run, ignore_errors=True)
    return (full - empty) / held, full - empty, held


def result(name: str, value: float, metric: str, baseline: float, baseline_name: str,
           target: float | None, better: str = "higher", extra: bool = False) -> None:
    row = {"bench": name, "metric": metric, "value": round(value, 3),
           "baseline": round(baseline, 3), "baseline_name": baseline_name, "target": target,
           "better": better}
    print(json.dumps({**row, "row": "extra"} if extra else row))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200k lines, one run each")
    ap.add_argument("--lines", type=int, help="lines (default 1M, quick 200k)")
    ap.add_argument("--repeat", type=int, help="runs per figure, best kept (default 2, quick 1)")
    ap.add_argument("--only", nargs="+", default=("spool-memory", "spool-file", "java-client",
                                                   "rss"))
    ap.add_argument("--profile", type=Path, help="directory for py-spy profiles")
    args = ap.parse_args()
    lines = args.lines or (200_000 if args.quick else 1_000_000)
    lines = max(FILES, lines // FILES * FILES)
    repeat = args.repeat or (1 if args.quick else 2)
    peer = JavaPeer.from_env()
    java = peer if isinstance(peer, JavaPeer) else None
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def prof(name: str) -> Path | None:
        return args.profile / f"{name}.folded" if args.profile else None

    work = Path(tempfile.mkdtemp(prefix="bench-agent-throughput-"))
    try:
        staging = work / "staging"
        staging.mkdir()
        size = write_files(staging, lines)
        mib = size / MIB
        read_s = min(raw_read(staging) for _ in range(repeat))
        send_s = min(raw_send(staging) for _ in range(repeat))
        print(f"{lines:,} lines of {LINE_BYTES} bytes in {FILES} files ({mib:.1f} MiB); "
              f"batches of {BATCH}; best of {repeat}")
        print(f"baseline raw file read (1 MiB blocks): {mib / read_s:,.0f} MiB/s; "
              f"raw loopback socket send to another process: {mib / send_s:,.0f} MiB/s")
        results: list[tuple[Any, ...]] = []
        memory_mibs = None
        if "spool-memory" in args.only or "spool-file" in args.only:
            runs = [spool_run(work, staging, lines, "memory", java, prof("spool-memory"))
                    for _ in range(repeat)]
            seconds, cpu, name = min(runs)
            memory_mibs = mib / seconds
            print(f"spooldir -> memory -> avro sink -> {name}: {memory_mibs:.1f} MiB/s, "
                  f"{lines / seconds:,.0f} lines/s; agent CPU {cpu / lines * 1e6:.2f} µs/line")
            results.append(("agent_spool_memory", memory_mibs, "MiB/s", mib / send_s,
                            "raw loopback socket send, MiB/s", TARGET_MIBS))
        if "spool-file" in args.only:
            assert memory_mibs is not None
            runs = [spool_run(work, staging, lines, "file", java, prof("spool-file"))
                    for _ in range(repeat)]
            seconds, cpu, name = min(runs)
            file_mibs = mib / seconds
            print(f"spooldir -> file channel (default durability) -> avro sink -> {name}: "
                  f"{file_mibs:.1f} MiB/s, {lines / seconds:,.0f} lines/s; agent CPU "
                  f"{cpu / lines * 1e6:.2f} µs/line "
                  f"({file_mibs / memory_mibs:.0%} of the memory channel)")
            results.append(("agent_spool_file_share", file_mibs / memory_mibs,
                            "x memory channel", memory_mibs,
                            "memory channel, same run, MiB/s", TARGET_FILE_SHARE))
        if "java-client" in args.only:
            if java is None:
                print(f"java-client: skipped: no Java Avro peer ({peer})")
                print(json.dumps({"bench": "agent_java_client_ratio", "value": None,
                                  "skipped": f"no Java Avro peer: {peer}", "row": "extra"}))
            else:
                lines_file = work / "lines.txt"
                with open(lines_file, "wb") as out:
                    for path in sorted(staging.iterdir()):
                        out.write(path.read_bytes())
                runs = [java_client_run(work, java, lines_file, lines, prof("java-client"))
                        for _ in range(repeat)]
                ours = max(r[0] for r in runs)
                theirs = max(r[1] for r in runs)
                print(f"Apache Avro's Java client -> flumelet avro source -> memory -> null: "
                      f"{ours:,.0f} events/s; -> Apache Avro's Java NettyServer: "
                      f"{theirs:,.0f} events/s (ratio {ours / theirs:.2f})")
                results.append(("agent_java_client_ratio", ours / theirs, "x Java server",
                                theirs, "Java client -> Java NettyServer, events/s",
                                TARGET_JAVA_RATIO))
        if "rss" in args.only:
            rss_lines = (RSS_EVENTS + 2 * BATCH) // FILES * FILES + FILES
            rss_staging = work / "rss-staging"
            rss_staging.mkdir()
            write_files(rss_staging, rss_lines)
            ratio, growth, held = rss_run(work, rss_staging)
            print(f"RSS with a full {RSS_EVENTS:,}-event memory channel: +{growth / MIB:.1f} "
                  f"MiB over the idle agent, for {held / MIB:.1f} MiB of bodies held "
                  f"({ratio:.2f}x)")
            results.append(("agent_rss_full_channel", ratio, "x bytes held", held / MIB,
                            "body MiB held", TARGET_RSS_RATIO, "lower"))
        results.sort(key=lambda r: r[0] == "agent_spool_memory")  # the headline last
        for i, r in enumerate(results):
            result(*r, extra=i < len(results) - 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
