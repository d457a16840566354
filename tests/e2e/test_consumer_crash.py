"""kill -9 the consumer at random moments, restart it, and check the final window (real processes).

``flume-agent`` (spooldir -> memory channel -> SparkSink or avro sink) is fed ``LINES``
generated Apache lines while ``flume-consumer`` (the default top-URLs job, ``--checkpoint``,
``--sqlite``) is SIGKILLed ``KILLS`` times at seeded random moments, each time restarted on
the same checkpoint directory and SQLite file. The job's window (``WINDOW`` s) covers the whole
run, so once everything is delivered the newest window in SQLite must hold the count per URL of
the whole input:

* pull + checkpoint: exactly the oracle (acks only after the checkpoint; a batch redelivered
  after a crash between checkpoint and ack is recognised and counted once);
* push + write-ahead log: never below the oracle (at-least-once); the duplicates are reported.

The agent is never killed here, so its memory channel loses nothing.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest

from scripts.genlog import expected_counts, generate, write_spool_file
from tests.e2e.procs import (
    ROOT,
    HoldingProxy,
    Proc,
    agent_metrics,
    all_completed,
    describe,
    free_port,
    start_agent,
    start_consumer,
    wait_listening,
    wait_until,
)

pytestmark = pytest.mark.e2e

LINES = 200_000
KILLS = 4
CHUNKS = KILLS + 1  # one chunk of files lands before each kill and one after the last
FILES_PER_CHUNK = 4
FILES = CHUNKS * FILES_PER_CHUNK
SEED = 20240501
WINDOW = 600  # s: longer than any run, so the newest window covers all of it
TABLE = "apache_top_urls"
TXN = 1000  # memory channel transactionCapacity = spooldir batchSize = most events per poll
# Acks wait for the checkpoint, so taken-but-unacked events hold channel room until the next
# batch: at most CAPACITY events are counted per 1 s batch. 20x Flume's default keeps the
# channel from throttling the source while still spreading a chunk (40k lines) over at least
# two batches, so that kills land while events are in flight.
CAPACITY = 20_000
KILL_AFTER = (0.1, 1.5)  # s after the (re)started consumer's first slide, uniform (seeded)
DRAIN_TIMEOUT = 45.0


def generated_input(n: int = LINES) -> tuple[list[str], Counter[str]]:
    lines = list(generate(n, SEED, malformed_rate=0.01, start=1_700_000_000, span=600))
    return lines, expected_counts(lines)


class Spool:
    """The spool directory, fed one chunk of files at a time (each written elsewhere, then
    renamed in whole), so events are still flowing when each kill comes."""

    def __init__(self, tmp: Path, lines: list[str]) -> None:
        self.dir, self.staging = tmp / "spool", tmp / "staging"
        self.dir.mkdir()
        self.staging.mkdir()
        self.lines = lines
        self.landed = 0
        self.landed_good = 0  # well-formed lines landed so far: what the window can count


    def land_chunk(self) -> None:
        per = -(-len(self.lines) // FILES)
        for i in range(self.landed, self.landed + FILES_PER_CHUNK):
            chunk = self.lines[i * per:(i + 1) * per]
            written = write_spool_file(self.staging, f"access-{i:03d}.log", chunk)
            written.rename(self.dir / written.name)
            self.landed_good += sum(expected_counts(chunk).values())
        self.landed += FILES_PER_CHUNK


def start_fed_agent(conf: str, spool: Path, port: int, metrics: int, log: Path,
                    capacity: int = CAPACITY) -> Proc:
    """The seed config ``configs/CONF`` on ``spool``, its sink on ``port``, with a channel
    large enough not to throttle the source."""
    return start_agent(ROOT / "configs" / conf, "a1", log, {
        "sources.r1.spoolDir": str(spool),
        "sources.r1.batchSize": str(TXN),
        "channels.c1.capacity": str(capacity),
        "channels.c1.transactionCapacity": str(TXN),
        "sinks.k1.hostname": "127.0.0.1",
        "sinks.k1.port": str(port),
    }, metrics_port=metrics)


def newest_window(db: Path) -> tuple[int, dict[str, int]]:
    """``(window_end, {url: count})`` of the newest window written (``(0, {})`` if none)."""
    if not db.exists():
        return 0, {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute(f"SELECT MAX(window_end) FROM {TABLE}").fetchone()
        if row is None or row[0] is None:
            return 0, {}
        end = int(row[0])
        rows = conn.execute(f"SELECT key, value FROM {TABLE} WHERE window_end = ?", (end,))
        return end, {key: int(value) for key, value in rows}
    except sqlite3.OperationalError as exc:  # the table does not exist yet
        if "no such table" in str(exc):
            return 0, {}
        raise
    finally:
        conn.close()


class CrashLoop:
    """Runs the consumer, SIGKILLs and restarts it ``KILLS`` times, then lets it finish."""

    def __init__(self, tmp: Path, options: list[str], listen: int | None) -> None:
        self.tmp = tmp
        self.options = options
        self.listen = listen  # push: the port the consumer listens on
        self.agent: Proc | None = None
        self.db = tmp / "results.db"
        self.starts = 0
        self.progress_at_kill: list[int] = []
        self.in_flight_at_kill = 0  # kills that came before the window counted what had landed
        self.consumer = self._start()

    @property
    def procs(self) -> list[Proc]:
        return [self.consumer] + ([self.agent] if self.agent else [])

    def _start(self) -> Proc:
        self.starts += 1
        consumer = start_consumer(
            [*self.options, "--checkpoint", str(self.tmp / "checkpoint"), "--sqlite",
             str(self.db), "--window", str(WINDOW), "--slide", "1", "--batch", "1"],
            self.tmp / f"consumer-{self.starts}.log", log_level="info")
        if self.listen is not None:
            wait_listening(self.listen, consumer)
        return consumer

    def logged(self, pattern: str) -> list[str]:
        """Every consumer log line (all starts) matching ``pattern``."""
        return [line for i in range(1, self.starts + 1)
                for line in (self.tmp / f"consumer-{i}.log").read_text().splitlines()
                if re.search(pattern, line)]

    def _wait_running(self) -> None:
        """Until the (re)started consumer prints a slide: it has restored and is running."""
        wait_until(lambda: "\nTime: " in self.consumer.tail(), 30,
                   "a slide from the (re)started consumer", self.procs)

    def run(self, rng: random.Random, spool: Spool) -> None:
        for _ in range(KILLS):
            self._wait_running()
            spool.land_chunk()
            time.sleep(rng.uniform(*KILL_AFTER))  # the random (seeded) moment
            assert self.consumer.alive(), describe(self.procs)
            self.consumer.kill()
            counted = sum(newest_window(self.db)[1].values())
            self.progress_at_kill.append(counted)
            self.in_flight_at_kill += counted < spool.landed_good
            self.consumer = self._start()
        self._wait_running()
        spool.land_chunk()

    def drain(self, spool: Path, metrics: int, expected_total: int) -> None:
        """Every file consumed, the channel empty and the newest window at least complete
        (more than complete means duplicates: the caller's assertions say which), then a
        graceful stop (the last batch is processed, checkpointed, acknowledged, written)."""
        def done() -> bool:
            if not all_completed(spool, FILES):
                return False
            if int(agent_metrics(metrics)["CHANNEL.c1"]["ChannelSize"]) != 0:
                return False
            return sum(newest_window(self.db)[1].values()) >= expected_total
        try:
            wait_until(done, DRAIN_TIMEOUT, "the pipeline to drain", self.procs)
        except AssertionError as exc:  # the final comparison shows what is missing
            print(exc)
        assert self.consumer.stop() == 0, describe(self.procs)


def diff(got: dict[str, int], expected: Counter[str]) -> str:
    keys = sorted(set(got) | set(expected))
    bad = [(k, got.get(k, 0), expected.get(k, 0)) for k in keys if got.get(k, 0) != expected[k]]
    return "\n".join(f"{k}: got {g}, expected {e}" for k, g, e in bad[:20]) + (
        f"\n... {len(bad)} URLs differ in all" if len(bad) > 20 else "")


def test_pull_with_checkpoint_survives_kill_9_exactly_once(tmp_path: Path) -> None:
    lines, expected = generated_input()
    spool = Spool(tmp_path, lines)
    port, metrics = free_port(), free_port()
    agent = start_fed_agent("spooldir-spark.conf", spool.dir, port, metrics, tmp_path / "agent.log")
    loop: CrashLoop | None = None
    try:
        wait_listening(port, agent)
        started = time.monotonic()
        loop = CrashLoop(tmp_path, ["--pull", f"127.0.0.1:{port}"], None)
        loop.agent = agent
        loop.run(random.Random(SEED), spool)
        loop.drain(spool.dir, metrics, sum(expected.values()))
        elapsed = time.monotonic() - started
        _, got = newest_window(loop.db)
        dropped = loop.logged(r"redelivered events were already counted")
        print(f"\npull: {LINES} lines, {KILLS} kills at window totals {loop.progress_at_kill} "
              f"({loop.in_flight_at_kill} in flight), "
              f"{elapsed:.1f} s; final total {sum(got.values())} of {sum(expected.values())}; "
              f"redelivered-and-dropped: {dropped}")
        assert got == dict(expected), diff(got, expected)
        assert loop.in_flight_at_kill > 0, "every kill came when the consumer was idle"
    finally:
        if loop is not None:
            loop.consumer.kill()
        assert agent.stop() == 0, describe([agent])


def test_push_with_write_ahead_log_survives_kill_9_at_least_once(tmp_path: Path) -> None:
    lines, expected = generated_input()
    spool = Spool(tmp_path, lines)
    port, metrics = free_port(), free_port()
    loop = CrashLoop(tmp_path, ["--port", str(port)], port)
    agent = start_fed_agent("spooldir-avro.conf", spool.dir, port, metrics,
                            tmp_path / "agent.log")
    loop.agent = agent
    try:
        wait_listening(metrics, agent)
        started = time.monotonic()
        loop.run(random.Random(SEED + 1), spool)
        loop.drain(spool.dir, metrics, sum(expected.values()))
        elapsed = time.monotonic() - started
        _, got = newest_window(loop.db)
        below = {k: (got.get(k, 0), n) for k, n in expected.items() if got.get(k, 0) < n}
        extra = set(got) - set(expected)
        duplicates = sum(got.values()) - sum(expected.values())
        print(f"\npush: {LINES} lines, {KILLS} kills at window totals {loop.progress_at_kill} "
              f"({loop.in_flight_at_kill} in flight), "
              f"{elapsed:.1f} s; final total {sum(got.values())} of {sum(expected.values())}: "
              f"{duplicates} duplicates; replays: {loop.logged('replayed')}")
        assert not below, f"lost events (got, expected): {below}"
        assert not extra, f"URLs that are not in the input: {extra}"
        assert loop.in_flight_at_kill > 0, "every kill came when the consumer was idle"
    finally:
        loop.consumer.kill()
        assert agent.stop() == 0, describe([agent])


HOLD_LINES = 60_000


def _checkpoints(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("checkpoint-*")) if directory.exists() else []


def _recognised(log: Path) -> list[str]:
    """The restarted consumer's lines saying it dropped a redelivery it had counted."""
    return [line for line in log.read_text().splitlines()
            if "redelivered events were already counted" in line]


def test_pull_crash_between_checkpoint_and_ack_counts_redelivered_events_once(
        tmp_path: Path) -> None:
    """The narrow case random kills rarely hit, made deterministic: a proxy between consumer
    and agent keeps back the acks that follow a checkpoint, then the consumer is killed before
    its next checkpoint. The agent rolls back the covered batches (and any received after the
    checkpoint) and serves them again; the restarted consumer must drop exactly the events
    that checkpoint counted."""
    lines, expected = generated_input(HOLD_LINES)
    spool = Spool(tmp_path, lines)
    port, metrics = free_port(), free_port()
    agent = start_fed_agent("spooldir-spark.conf", spool.dir, port, metrics,
                            tmp_path / "agent.log")
    proxy = HoldingProxy(port, b"\x06ack")  # the Avro call of message "ack"
    rng = random.Random(SEED + 3)
    ckpt = tmp_path / "checkpoint"
    options = ["--checkpoint", str(ckpt), "--sqlite", str(tmp_path / "results.db"),
               "--window", str(WINDOW), "--slide", "1", "--batch", "1"]
    consumer = start_consumer(["--pull", f"127.0.0.1:{proxy.port}", *options],
                              tmp_path / "consumer-1.log", log_level="info")
    try:
        wait_listening(port, agent)
        spool.land_chunk()
        spool.land_chunk()
        wait_until(lambda: sum(newest_window(tmp_path / "results.db")[1].values()) > 0, 30,
                   "a first counted batch", [consumer, agent])
        proxy.holding.set()
        wait_until(proxy.held.is_set, 10, "an ack to hold back", [consumer, agent])
        at_hold = _checkpoints(ckpt)
        time.sleep(rng.uniform(0.05, 0.4))  # before the next checkpoint (1 s batches)
        consumer.kill()
        proxy.close()
        assert _checkpoints(ckpt)[-1:] == at_hold[-1:], "a second checkpoint came before the kill"
        consumer = start_consumer(["--pull", f"127.0.0.1:{port}", *options],
                                  tmp_path / "consumer-2.log", log_level="info")
        while spool.landed < FILES:
            spool.land_chunk()
        # The held batches come back only after the sink's grace for the vanished connection,
        # which can be after the rest has drained: wait for the redelivery too.
        wait_until(lambda: all_completed(spool.dir, FILES)
                   and int(agent_metrics(metrics)["CHANNEL.c1"]["ChannelSize"]) == 0
                   and sum(newest_window(tmp_path / "results.db")[1].values())
                   >= sum(expected.values())
                   and bool(_recognised(tmp_path / "consumer-2.log")), 45,
                   "the pipeline to drain and the held batches to come back", [consumer, agent])
        assert consumer.stop() == 0, describe([consumer])
    finally:
        proxy.close()
        consumer.kill()
        assert agent.stop() == 0, describe([agent])
    _, got = newest_window(tmp_path / "results.db")
    dropped = _recognised(tmp_path / "consumer-2.log")
    print(f"\nheld acks: final total {sum(got.values())} of {sum(expected.values())}; {dropped}")
    assert got == dict(expected), diff(got, expected)
    assert dropped, "the restarted consumer never recognised a redelivered batch"
