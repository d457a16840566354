"""Real processes under attack, and the well-behaved clients that must not notice.

A :class:`Target` is a ``flume-agent`` or ``flume-consumer`` process started from a source
tree (this one by default; ``bench/hostile_rss.py`` points it at another to measure "before").
Well-behaved clients run in background threads and record when each of their calls
succeeded, so a case can ask how fast they went while an attack ran, and whether anything
they were told was accepted went missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.schemas import AVRO_SOURCE_PROTOCOL, SPARK_FLUME_PROTOCOL
from protocol.transport import RpcClient
from tests.e2e.procs import free_port, listening
from tests.wire import rss

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
BATCH = 100  # events per good call


def _status(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    raise ValueError(field_name)


class Target:
    """One server process. ``nofile``: its RLIMIT_NOFILE (soft and hard)."""

    def __init__(self, name: str, args: Sequence[str], log: Path, root: Path = ROOT,
                 nofile: int | None = None) -> None:
        self.name = name
        self.log = log
        prefix = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] if nofile else []
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(root)}
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([*prefix, sys.executable, *args], cwd=root,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _tree(self) -> list[int]:
        """The process and its children (a consumer's push job receives in a child)."""
        pids = [self.pid]
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            pids.extend(int(p) for p in (task / "children").read_text().split())
        return pids

    def rss(self) -> int:
        return sum(rss(p) for p in self._tree())

    def peak(self) -> int:
        """The highest RSS since the last reset_peak() (VmHWM), summed over the tree."""
        return sum(_status(p, "VmHWM") for p in self._tree())

    def reset_peak(self) -> None:
        for p in self._tree():
            Path(f"/proc/{p}/clear_refs").write_text("5")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


def wait_for(cond: Callable[[], bool], timeout: float, what: str,
             target: Target | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline or (target is not None and not target.alive()):
            tail = target.text()[-3000:] if target is not None else ""
            raise AssertionError(f"waiting for {what}: gave up\n{tail}")
        time.sleep(0.05)


def metrics(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


# ---- targets ---------------------------------------------------------------------------

@dataclass
class AgentPorts:
    avro: int = field(default_factory=lambda: free_port())
    deflate: int = field(default_factory=lambda: free_port())
    spark: int = field(default_factory=lambda: free_port())
    metrics: int = field(default_factory=lambda: free_port())


def avro_agent(tmp: Path, ports: AgentPorts, root: Path = ROOT, extra: str = "",
               nofile: int | None = None, limits: str = "") -> Target:
    """avro sources r1 (plain) and r2 (deflate) -> memory -> null, with /metrics. Events
    with header ``run = good`` go through c1/k1, anything else through c2/k2, so the good
    client's events are counted apart from whatever an attacker got accepted."""
    conf = tmp / "hostile-avro.conf"
    routes = "\n".join(f"""\
a1.sources.{r}.channels = c1 c2
a1.sources.{r}.selector.type = multiplexing
a1.sources.{r}.selector.header = run
a1.sources.{r}.selector.mapping.good = c1
a1.sources.{r}.selector.default = c2""" for r in ("r1", "r2"))
    sinks = "\n".join(f"""\
a1.channels.c{i}.type = memory
a1.channels.c{i}.capacity = 200000
a1.channels.c{i}.transactionCapacity = 10000
a1.sinks.k{i}.type = null
a1.sinks.k{i}.batchSize = 1000
a1.sinks.k{i}.channel = c{i}""" for i in (1, 2))
    conf.write_text(f"""\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {ports.avro}
a1.sources.r2.type = avro
a1.sources.r2.bind = 127.0.0.1
a1.sources.r2.port = {ports.deflate}
a1.sources.r2.compression-type = deflate
{limits}
{routes}
{sinks}
{extra}""")
    target = Target("flume-agent", ["-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                    "-Dflume.root.logger=INFO,console",
                                    "-Dflume.monitoring.type=http",
                                    f"-Dflume.monitoring.port={ports.metrics}"],
                    tmp / "hostile-avro.log", root, nofile)
    for port in (ports.avro, ports.deflate, ports.metrics):
        wait_for(lambda p=port: listening(p), 30, f"the agent on {port}", target)  # type: ignore[misc]
    return target


def spark_agent(tmp: Path, ports: AgentPorts, root: Path = ROOT) -> Target:
    """avro source r1 -> memory -> SparkSink k1."""
    conf = tmp / "hostile-spark.conf"
    conf.write_text(f"""\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {ports.avro}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 200000
a1.channels.c1.transactionCapacity = 10000
a1.sinks.k1.type = spark
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {ports.spark}
a1.sinks.k1.channel = c1
""")
    target = Target("flume-agent", ["-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                    "-Dflume.root.logger=INFO,console"],
                    tmp / "hostile-spark.log", root)
    for port in (ports.avro, ports.spark):
        wait_for(lambda p=port: listening(p), 30, f"the agent on {port}", target)  # type: ignore[misc]
    return target


def push_consumer(tmp: Path, port: int, out: Path, root: Path = ROOT,
                  deflate: bool = False, limits: dict[str, int] | None = None,
                  options: Sequence[str] = (), nofile: int | None = None) -> Target:
    """A YAML job counting events per batch by their ``run`` header, into JSON lines;
    ``options`` go to ``flume-consumer`` before ``run``, ``nofile`` as ``Target``'s."""
    job = tmp / f"hostile-push-{port}.yaml"
    extra = f", limits: {json.dumps(limits)}" if limits else ""
    job.write_text(f"""\
name: hostile
receiver: {{type: push, host: 127.0.0.1, port: {port}, deflate: {str(deflate).lower()}{extra}}}
parser: raw
key: header:run
aggregation: count
batch: 1
outputs:
  - {{type: jsonl, path: {out}}}
""")
    target = Target("flume-consumer", ["-m", "consumer.cli", "--log-level", "info", *options,
                                       "run", str(job)], tmp / f"hostile-push-{port}.log", root,
                    nofile=nofile)
    wait_for(lambda: listening(port), 30, "the consumer to listen", target)
    return target


def counted(out: Path, key: str = "good") -> int:
    """Events of ``key`` the consumer job has written out so far."""
    if not out.exists():
        return 0
    total = 0
    for line in out.read_text().splitlines():
        row = json.loads(line)
        if row.get("key") == key:
            total += int(row["value"])
    return total


# ---- well-behaved clients --------------------------------------------------------------

class Recorder:
    """When each success happened, and how many events it carried."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.counts: list[int] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def add(self, when: float, n: int) -> None:
        with self._lock:
            self.times.append(when)
            self.counts.append(n)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts)

    def rate(self, t0: float, t1: float) -> float:
        with self._lock:
            n = sum(c for t, c in zip(self.times, self.counts, strict=True) if t0 <= t < t1)
        return n / (t1 - t0)

    def longest_gap(self, t0: float, t1: float) -> float:
        """The longest time without a success within [t0, t1]."""
        with self._lock:
            stamps = [t0, *(t for t in self.times if t0 <= t <= t1), t1]
        return max(b - a for a, b in itertools.pairwise(stamps))


Report = Callable[[str, object], None]
_SPAWN = multiprocessing.get_context("spawn")


class _Background:
    """A client running in a process of its own (so an attack's work in the test process
    never slows it down), reporting each success to ``record`` in this one. Subclasses
    implement ``run``, which executes in the child; time.monotonic() is the same clock in
    both processes."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.record = Recorder()
        self.failed = 0
        self._proc: Any = None
        self._queue: Any = None
        self._stop: Any = None
        self._pump: threading.Thread | None = None

    def start(self) -> _Background:
        self._queue, self._stop = _SPAWN.Queue(), _SPAWN.Event()
        self._proc = _SPAWN.Process(target=_child, daemon=True,
                                    args=(type(self), self.params, self._queue, self._stop))
        self._proc.start()
        self._pump = threading.Thread(target=self._collect, daemon=True)
        self._pump.start()
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._stop.set()
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._queue.put(None)
        assert self._pump is not None
        self._pump.join(30)
        self._proc = None

    def _collect(self) -> None:
        while (item := self._queue.get()) is not None:
            kind, when, value = item
            if kind == "ok":
                self.record.add(when, value)
            else:
                self.failed += 1
                self.record.errors.append(str(value))

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        raise NotImplementedError


def _child(cls: type[_Background], params: dict[str, Any], queue: Any, stop: Any) -> None:
    client = cls(**params)

    def report(kind: str, value: object) -> None:
        queue.put((kind, time.monotonic(), value))

    try:
        asyncio.run(client.run(report, stop.is_set))
    finally:
        queue.put(None)


class GoodSender(_Background):
    """A Flume avro sink's behaviour: one appendBatch at a time, each waits for its OK."""

    def __init__(self, port: int, deflate: bool = False, batch: int = BATCH) -> None:
        super().__init__(port=port, deflate=deflate, batch=batch)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        p = self.params
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", p["port"], deflate=p["deflate"],
                           request_timeout=10)
        seq = 0
        try:
            while not stopping():
                events = [{"headers": {"run": "good", "seq": str(seq + i)},
                           "body": b"good event %08d " % (seq + i) + b"x" * 80}
                          for i in range(p["batch"])]
                try:
                    status = await client.call("appendBatch", {"events": events})
                except Exception as exc:  # reported: the case decides what it means
                    report("error", repr(exc))
                    await asyncio.sleep(0.05)
                    continue
                if status == "OK":
                    seq += p["batch"]
                    report("ok", p["batch"])
                else:
                    report("error", f"answered {status}")
        finally:
            await client.close()


class GoodPuller(_Background):
    """A Spark polling receiver's behaviour: getEventBatch, then ack."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        client = RpcClient(SPARK_FLUME_PROTOCOL, "127.0.0.1", self.params["port"],
                           request_timeout=2)
        try:
            while not stopping():
                try:
                    batch = await client.call("getEventBatch", {"n": 1000})
                    if batch["errorMsg"]:
                        await asyncio.sleep(0.05)
                        continue
                    await client.call("ack", {"sequenceNumber": batch["sequenceNumber"]})
                except (TimeoutError, ConnectionError, OSError) as exc:
                    report("error", repr(exc))
                    continue
                report("ok", sum(1 for e in batch["events"]
                                 if e["headers"].get("run") == "good"))
        finally:
            await client.close()


class MetricsPoller(_Background):
    """An operator's dashboard: GET /metrics every 20 ms."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)

    async def run(self, report: Report, stopping: Callable[[], bool]) -> None:
        while not stopping():
            try:
                await asyncio.to_thread(metrics, self.params["port"])
            except OSError as exc:
                report("error", repr(exc))
            else:
                report("ok", 1)
            await asyncio.sleep(0.02)


@contextlib.contextmanager
def running(*clients: _Background) -> Iterator[None]:
    for c in clients:
        c.start()
    try:
        yield
    finally:
        for c in clients:
            c.stop()


# ---- one case ----------------------------------------------------------------------------

@dataclass
class Outcome:
    name: str
    growth: int  # peak RSS during the attack minus RSS before, bytes
    rate: float  # the watched client's rate during the attack
    baseline: float  # the same client's rate around it (the lower of before and after)
    gap: float  # its longest time without a success during the attack
    seconds: float
    result: object = None  # what the attack returned

    def __str__(self) -> str:
        return (f"{self.name}: RSS +{self.growth / MiB:.0f} MiB, client "
                f"{self.rate:,.0f}/s vs {self.baseline:,.0f}/s around it, longest gap "
                f"{self.gap:.2f} s, {self.seconds:.1f} s")


def attack(target: Target, watched: Recorder, name: str, fn: Callable[[], object],
           settle: float = 0.3, window: float = 0.7) -> Outcome:
    """Run ``fn`` (the attack) and return what it cost: the target's RSS peak growth, and
    the watched client's rate and longest stall from the attack's start until ``settle``
    after it (at least a second, so a short attack is not judged on a few calls). The
    client's rate is compared with the lower of its rates in a ``window`` just before and
    just after: on a shared machine the load drifts, and the attack should not be blamed
    for the drift."""
    time.sleep(window)
    now = time.monotonic()
    before = watched.rate(now - window, now)
    base = target.rss()
    target.reset_peak()
    t0 = time.monotonic()
    result = fn()
    time.sleep(max(settle, t0 + 1.0 - time.monotonic()))
    t1 = time.monotonic()
    growth = max(0, target.peak() - base)
    time.sleep(window)
    after = watched.rate(t1, t1 + window)
    return Outcome(name, growth, watched.rate(t0, t1), min(before, after),
                   watched.longest_gap(t0, t1), t1 - t0, result)


# Of the watched client's rate around an attack, what it must keep during it. Low on
# purpose: on a 2-core machine shared with other work the rate of one second swings by 3x
# with no attack at all; a stall (the gap) is the sharp check. The code before the limits
# failed both by far (0 events/s, gaps of 10 to 113 s: see tests/hostile/measure.py).
MIN_SHARE = 0.1
MAX_GAP = 2.0


def assert_unharmed(out: Outcome, target: Target, rss_mib: float,
                    share: float = MIN_SHARE) -> None:
    """The four checks of a hostile case, but "nothing lost" (checked at the end)."""
    print(f"{target.name}: {out}")
    assert target.alive(), target.text()[-3000:]
    assert out.growth < rss_mib * MiB, str(out)
    assert out.gap < MAX_GAP, str(out)
    assert out.rate >= share * out.baseline, str(out)
