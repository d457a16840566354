"""Run the chaos pipeline under a schedule of SIGKILLs and compare every window with the oracle.

Kills alternate: agent, pull consumer, agent, push consumer, ... each at a seeded random
moment after the killed role's previous start (files land between kills, so events are in
flight). Every killed process is restarted at once on the same directories. Before an agent
restarts, its channel logs are read: lines the spooldir source put twice (a crash between a
channel commit and the position record re-reads one batch) are real input duplicates, and
the oracle adds them. At the end the last file is a sentinel line far in the future whose
watermark finalises every window; it lands only once both channels are empty (everything
acked), so nothing of the data can be late.
"""

from __future__ import annotations

import collections
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos import pipeline
from tests.chaos.pipeline import BATCH, TABLE, ChannelLog, Counts, Spool, WindowKey
from tests.e2e.procs import (
    ROOT,
    Proc,
    agent_metrics,
    describe,
    free_port,
    start_agent,
    start_consumer,
    wait_listening,
    wait_until,
)

ROLES = ("agent", "pull", "agent", "push")
KILL_AFTER = (0.05, 1.5)  # seconds after the latest files landed, uniform (seeded)
FILES = 40  # at least; one per kill on long schedules, so most kills find events in flight
DRAIN_TIMEOUT = 240.0


@dataclass
class Verdict:
    """One consumer's windows against the oracle."""

    windows: int = 0  # windows of the data
    reported: int = 0  # of which reported
    lost: int = 0
    extra: int = 0
    wrong: list[str] = field(default_factory=list)  # the first differences, for the message


@dataclass
class Report:
    seed: int
    kills: collections.Counter[str]
    lines: int
    counted: int  # well-formed lines: what the windows count
    rereads: dict[str, int]  # per channel: lines the agent put twice
    pull: Verdict
    push: Verdict
    seconds: float
    in_flight: int  # agent kills that found events not yet acknowledged

    def summary(self) -> str:
        k = self.kills
        return (f"chaos seed {self.seed}: {sum(k.values())} SIGKILLs ({k['agent']} agent "
                f"({self.in_flight} with events in flight), {k['pull']} pull consumer, "
                f"{k['push']} push consumer), {self.lines} lines "
                f"({self.counted} counted in {self.pull.windows} windows), "
                f"{self.seconds:.0f} s; lines the agent put twice: {self.rereads}; "
                f"pull: {self.pull.reported}/{self.pull.windows} windows, "
                f"{self.pull.lost} lost, {self.pull.extra} double counted; "
                f"push: {self.push.reported}/{self.push.windows} windows, "
                f"{self.push.lost} lost, {self.push.extra} duplicates")


class ChaosRun:
    def __init__(self, root: Path, seed: int, kills: int, lines: int = 200_000,
                 say: Callable[[str], None] = print) -> None:
        self.root = root
        self.seed = seed
        self.kills_planned = kills
        self.rng = random.Random(seed)
        self.say = say
        self.input = pipeline.generated_input(lines, seed)
        self.files = max(FILES, kills)
        self.spool = Spool(root, self.input, self.files)
        self.pull_port, self.push_port, self.metrics = free_port(), free_port(), free_port()
        self.conf = pipeline.agent_conf(root, self.spool.dir, self.pull_port, self.push_port)
        self.jobs = {
            "pull": pipeline.job_yaml(root, "pull", "{type: pull, addresses: "
                                      f"['127.0.0.1:{self.pull_port}'], max_batch_size: "
                                      f"{BATCH}, parallelism: 5}}"),
            "push": pipeline.job_yaml(root, "push", "{type: push, host: 127.0.0.1, "
                                      f"port: {self.push_port}}}"),
        }
        self.channels = {"pull": ChannelLog(root / "channel-pull"),
                         "push": ChannelLog(root / "channel-push")}
        self.starts: collections.Counter[str] = collections.Counter()
        self.kills: collections.Counter[str] = collections.Counter()
        self.procs: dict[str, Proc] = {}
        self.in_flight = 0  # agent kills with events in its channels (not yet acknowledged)

    # ---- processes -----------------------------------------------------------------------
    def start(self, role: str) -> Proc:
        self.starts[role] += 1
        log = self.root / f"{role}-{self.starts[role]}.log"
        if role == "agent":
            proc = start_agent(self.conf, "a1", log, {}, metrics_port=self.metrics)
            self.procs[role] = proc
            wait_listening(self.pull_port, proc, 60)
            wait_listening(self.metrics, proc, 60)
        else:
            proc = start_consumer(["run", str(self.jobs[role])], log, log_level="info")
            self.procs[role] = proc
            if role == "push":
                wait_listening(self.push_port, proc, 60)
            else:
                wait_until(lambda: "flume receiver" in proc.tail() or "job " in proc.tail(),
                           60, "the pull consumer to start", [proc])
        return proc

    def all_procs(self) -> list[Proc]:
        return list(self.procs.values())

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        assert proc.alive(), describe(self.all_procs())
        proc.kill()
        self.kills[role] += 1
        if role == "agent":  # what it committed before dying, before a restart rewrites it
            live = sum(channel.read() for channel in self.channels.values())
            self.in_flight += live > 0

    # ---- the run -------------------------------------------------------------------------
    def run(self) -> Report:
        kills = self.kills_planned
        started = time.monotonic()
        self.say(f"chaos seed {self.seed}: {kills} kills, {len(self.input)} lines "
                 f"(replay with CHAOS_SEED={self.seed})")
        for role in ("agent", "pull", "push"):
            self.start(role)
        try:
            for i in range(kills):
                role = ROLES[i % len(ROLES)]
                self.spool.land_until(-(-self.files * (i + 1) // kills))
                time.sleep(self.rng.uniform(*KILL_AFTER))  # the random (seeded) moment
                self.kill(role)
                self.start(role)
            self.spool.land_until(self.files)
            self.drain()
            self.stop_all()
        finally:
            for proc in self.all_procs():
                proc.kill()
        for channel in self.channels.values():
            channel.read()
        return self.report(time.monotonic() - started)

    def drain(self) -> None:
        """Everything consumed and acknowledged, then the sentinel, then every window."""
        procs = self.all_procs()

        def channels_empty() -> bool:
            if not self.spool.all_completed():
                return False
            metrics = agent_metrics(self.metrics)
            if any(int(metrics[f"CHANNEL.c{name}"]["ChannelSize"]) for name in self.channels):
                return False
            return all(c.read() == 0 for c in self.channels.values())  # taken and committed

        wait_until(channels_empty, DRAIN_TIMEOUT, "every event to be acknowledged", procs,
                   interval=0.5)
        self.spool.land_sentinel()
        windows = len(pipeline.count(self.input))
        wait_until(lambda: all(len(reported(self.root / f"{r}.db")) >= windows
                               for r in ("pull", "push")),
                   DRAIN_TIMEOUT, "every window to be reported", procs, interval=0.5)

    def stop_all(self) -> None:
        for role in ("pull", "push", "agent"):
            proc = self.procs[role]
            code = proc.stop(60)
            assert code == 0, f"{role} exited {code}\n{describe([proc])}"

    # ---- the verdict ---------------------------------------------------------------------
    def report(self, seconds: float) -> Report:
        expected = pipeline.count(self.input)
        rereads = {name: c.put_again([*self.input, pipeline.sentinel()])
                   for name, c in self.channels.items()}
        verdicts = {}
        for role in ("pull", "push"):
            oracle = merge(expected, pipeline.count(rereads[role]))
            verdicts[role] = compare(reported(self.root / f"{role}.db"), oracle)
        return Report(self.seed, self.kills, len(self.input),
                      sum(sum(c.values()) for c in expected.values()),
                      {name: len(lines) for name, lines in rereads.items()},
                      verdicts["pull"], verdicts["push"], seconds, self.in_flight)


def merge(a: Counts, b: Counts) -> Counts:
    out: Counts = collections.defaultdict(collections.Counter)
    for counts in (a, b):
        for w, c in counts.items():
            out[w].update(c)
    return out


def reported(db: Path) -> dict[WindowKey, dict[str, int]]:
    """Every window the job wrote, with its full per-URL counts."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(f"SELECT window_start, window_end, key, value FROM {TABLE}")
        out: dict[WindowKey, dict[str, int]] = collections.defaultdict(dict)
        for start, end, key, value in rows:
            if key != pipeline.SENTINEL_URL:
                out[(int(start), int(end))][key] = int(value)
        return out
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    finally:
        conn.close()


def compare(got: dict[WindowKey, dict[str, int]], oracle: Counts) -> Verdict:
    v = Verdict(windows=len(oracle), reported=sum(1 for w in oracle if w in got))
    for w in sorted(set(got) | set(oracle)):
        g, e = got.get(w, {}), oracle.get(w, collections.Counter())
        for key in sorted(set(g) | set(e)):
            diff = g.get(key, 0) - e.get(key, 0)
            if diff < 0:
                v.lost -= diff
            elif diff > 0:
                v.extra += diff
            if diff and len(v.wrong) < 10:
                v.wrong.append(f"window {w[0]}: {key}: got {g.get(key, 0)}, "
                               f"expected {e.get(key, 0)}")
    return v


__all__ = ["BATCH", "ROOT", "ChaosRun", "Report", "Verdict"]
