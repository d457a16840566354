"""kill -9 the *agent* (pull mode) at random moments while the consumer keeps running.

What flumelet guarantees there, and what this test asserts:

* The spooling directory source records a file position only after the channel accepted the
  batch read up to it, and a restarted agent resumes every file from its recorded position:
  nothing a file holds is skipped, and a crash between a channel commit and the position record
  reads that one batch again (at most ``TXN`` duplicates per crash). Every file still ends up
  ``.COMPLETED``.
* The memory channel lives in the process: what it held when killed is gone (Flume's
  documented trade-off; a durable channel would close that gap). Taken-but-unacknowledged
  events count against its capacity, so at most ``AGENT_CAPACITY`` events are lost per crash.
* Events the consumer already holds when the agent dies are counted once: the ack fails, but
  the channel that would have served them again is gone with the agent.

So the final window may miss up to ``AGENT_KILLS * AGENT_CAPACITY`` events and hold up to
``AGENT_KILLS * TXN`` duplicates, and no other difference from the oracle.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.e2e.procs import (
    Proc,
    agent_metrics,
    all_completed,
    describe,
    free_port,
    start_consumer,
    wait_listening,
    wait_until,
)
from tests.e2e.test_consumer_crash import (
    CHUNKS,
    FILES,
    KILL_AFTER,
    SEED,
    TXN,
    WINDOW,
    Spool,
    generated_input,
    newest_window,
    start_fed_agent,
)

pytestmark = pytest.mark.e2e

AGENT_LINES = 100_000
AGENT_KILLS = 2
# The most a crash can lose. Acks wait for the consumer's checkpoint, so this is also the most
# the consumer counts per 1 s batch: it paces the run.
AGENT_CAPACITY = 10_000
SETTLE_SLIDES = 3  # the newest window unchanged over this many slides: nothing more is coming


def _settled(db: Path, history: list[tuple[int, int]]) -> bool:
    """The newest window's total has not moved for ``SETTLE_SLIDES`` slides."""
    end, counts = newest_window(db)
    if not history or history[-1][0] != end:
        history.append((end, sum(counts.values())))
    recent = history[-(SETTLE_SLIDES + 1):]
    return len(recent) > SETTLE_SLIDES and len({total for _, total in recent}) == 1


def test_pull_agent_kill_9_loses_at_most_the_channel_and_repeats_at_most_a_batch(
        tmp_path: Path) -> None:
    lines, expected = generated_input(AGENT_LINES)
    spool = Spool(tmp_path, lines)
    port, metrics = free_port(), free_port()
    db = tmp_path / "results.db"
    rng = random.Random(SEED + 2)
    consumer = start_consumer(
        ["--pull", f"127.0.0.1:{port}", "--checkpoint", str(tmp_path / "checkpoint"),
         "--sqlite", str(db), "--window", str(WINDOW), "--slide", "1", "--batch", "1"],
        tmp_path / "consumer.log", log_level="info")
    starts = 0

    def agent() -> Proc:
        nonlocal starts
        starts += 1
        proc = start_fed_agent("spooldir-spark.conf", spool.dir, port, metrics,
                               tmp_path / f"agent-{starts}.log", capacity=AGENT_CAPACITY)
        wait_listening(port, proc)
        wait_listening(metrics, proc)
        return proc

    current = agent()
    try:
        started = time.monotonic()
        completed_at_kill = []
        for _ in range(AGENT_KILLS):
            spool.land_chunk()
            time.sleep(rng.uniform(*KILL_AFTER))  # the random (seeded) moment
            assert current.alive(), describe([current])
            current.kill()
            completed_at_kill.append(sum(p.name.endswith(".COMPLETED")
                                         for p in spool.dir.iterdir()))
            current = agent()
        for _ in range(CHUNKS - AGENT_KILLS):
            spool.land_chunk()
        history: list[tuple[int, int]] = []
        wait_until(lambda: all_completed(spool.dir, FILES)
                   and int(agent_metrics(metrics)["CHANNEL.c1"]["ChannelSize"]) == 0
                   and _settled(db, history), 45, "the pipeline to drain", [consumer, current])
        assert consumer.stop() == 0, describe([consumer])
        elapsed = time.monotonic() - started
    finally:
        consumer.kill()
        assert current.stop() == 0, describe([current])
    _, got = newest_window(db)
    lost = sum(max(0, n - got.get(url, 0)) for url, n in expected.items())
    extra = sum(max(0, n - expected.get(url, 0)) for url, n in got.items())
    print(f"\nagent kills: {len(lines)} lines, {AGENT_KILLS} kills with {completed_at_kill} files "
          f"completed, {elapsed:.1f} s; final total {sum(got.values())} of "
          f"{sum(expected.values())}: {lost} lost, {extra} repeated")
    assert set(got) <= set(expected), f"URLs not in the input: {set(got) - set(expected)}"
    assert lost <= AGENT_KILLS * AGENT_CAPACITY
    assert extra <= AGENT_KILLS * TXN
    assert all_completed(spool.dir, FILES)
