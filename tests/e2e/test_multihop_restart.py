"""kill -9 the receiving agent mid-run and restart it on the same port (real processes).

1. Receiver idle at the kill: the sender is frozen (SIGSTOP) and the receiver has written
   everything it acknowledged, then it is killed. After the restart and SIGCONT every event
   must arrive; the only duplicates allowed are one batch whose answer never reached the
   sender (it resends it).
2. Receiver killed under load: its memory channel loses what it had acknowledged but not yet
   written (Flume's documented memory-channel trade-off). Since file_roll writes its channel
   in order and the sender resends from its first unanswered batch, the first receiver's
   file is a prefix 0..x, the second's a suffix y..end, and the only gap is (x, y); the only
   duplicates are one batch (y <= x when the lost answer's batch had been written).
3. The same with a file channel in the receiver: nothing it acknowledged is lost, so every
   event arrives; at most two batches repeat (the unanswered one, and file_roll's batch that
   was written but not yet taken from the log).

A failed delivery costs the sender the runner's fixed 5 s error back-off, hence the budgets.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.test_multihop import AgentProcess, agents, delivered, pair, wait_until

pytestmark = pytest.mark.e2e

EVENTS = 20_000
BATCH = 100  # sender sink batch-size in tests/fixtures/multihop/sender.conf


def counters(receiver: AgentProcess) -> tuple[int, int, int]:
    """(events the source accepted, events the sink wrote, events in the channel)."""
    m = receiver.metrics()
    return (int(m["SOURCE.r1"]["EventAcceptedCount"]), int(m["SINK.k1"]["EventDrainSuccessCount"]),
            int(m["CHANNEL.c1"]["ChannelSize"]))


def assert_duplicates_form_at_most_one_batch(numbers: list[int]) -> None:
    dups = sorted(n for n, k in Counter(numbers).items() if k > 1)
    assert all(Counter(numbers)[n] == 2 for n in dups), "an event arrived three times"
    assert len(dups) <= BATCH, f"{len(dups)} duplicates: more than one batch"
    if dups:
        assert dups == list(range(dups[0], dups[0] + len(dups))), f"not one batch: {dups}"


def restart(receiver: AgentProcess, tmp_path: Path) -> AgentProcess:
    again = AgentProcess(receiver.conf, receiver.name, {}, tmp_path / "b2.log",
                         receiver.metrics_port)
    again.args = receiver.args  # same port, directory and metrics port
    return again


@pytest.mark.timeout(20)
def test_receiver_killed_while_idle_loses_nothing(tmp_path: Path) -> None:
    sender, receiver, out, port = pair(tmp_path, EVENTS, receiver_metrics=True)
    second = restart(receiver, tmp_path)
    logs = lambda: "\n".join(p.log_tail() for p in (sender, receiver, second))  # noqa: E731
    with agents(sender, receiver, second):
        receiver.start().wait_listening(port)
        receiver.wait_listening(receiver.metrics_port or 0)
        sender.start()
        wait_until(lambda: len(delivered(out)) >= EVENTS // 4, 10, "a quarter of the events",
                   logs)
        sender.signal(signal.SIGSTOP)
        # Everything the receiver acknowledged is written, and it stays so for 0.2 s (a
        # request already in the socket buffer would show up within that time).
        seen: dict[str, object] = {}

        def quiet() -> bool:
            accepted, written, queued = now = counters(receiver)
            if not (accepted == written == len(delivered(out)) and queued == 0):
                seen.clear()
                return False
            if seen.get("counters") != now:
                seen.update(counters=now, since=time.monotonic())
                return False
            return time.monotonic() - float(seen["since"]) >= 0.2  # type: ignore[arg-type]

        wait_until(quiet, 5, "the receiver to be idle with everything written", logs)
        before = len(delivered(out))
        assert 0 < before < EVENTS
        receiver.kill9()
        second.start().wait_listening(port)
        sender.signal(signal.SIGCONT)
        wait_until(lambda: set(delivered(out)) >= set(range(EVENTS)), 15,
                   "every event after the restart", logs)
        assert sender.stop() == 0, sender.log_tail()
        assert second.stop() == 0, second.log_tail()
    numbers = delivered(out)
    assert set(numbers) == set(range(EVENTS))
    assert_duplicates_form_at_most_one_batch(numbers)


@pytest.mark.timeout(20)
def test_receiver_killed_under_load_loses_only_its_unwritten_tail(tmp_path: Path) -> None:
    sender, receiver, out, port = pair(tmp_path, EVENTS, receiver_metrics=True)
    second = restart(receiver, tmp_path)
    logs = lambda: "\n".join(p.log_tail() for p in (sender, receiver, second))  # noqa: E731
    with agents(sender, receiver, second):
        receiver.start().wait_listening(port)
        sender.start()
        wait_until(lambda: len(delivered(out)) >= EVENTS // 4, 10, "a quarter of the events",
                   logs)
        # Freeze the receiver mid-flow, then kill it: SIGKILL of a stopped process is a kill
        # at the instant it stopped, and what it had written can be read in between.
        receiver.signal(signal.SIGSTOP)
        wait_until(lambda: stopped(receiver), 5, "the receiver to stop", logs)
        at_kill = len(delivered(out))
        receiver.kill9()
        assert at_kill < EVENTS, "the sender had finished before the kill: not under load"
        second.start().wait_listening(port)
        second.wait_listening(second.metrics_port or 0)

        def sender_done() -> bool:
            # The sender delivers in order, so once the last event is written and the second
            # receiver holds nothing, everything the sender will ever send has arrived.
            accepted, written, queued = counters(second)
            return accepted == written and queued == 0 and EVENTS - 1 in delivered(out)

        wait_until(sender_done, 15, "the sender to deliver the rest", logs)
        assert sender.stop() == 0, sender.log_tail()
        assert second.stop() == 0, second.log_tail()
    first, second_file = sorted(out.iterdir(), key=lambda p: p.name)  # one file per run
    before, after = numbers_in(first), numbers_in(second_file)
    assert before == list(range(len(before))), "first receiver: not a prefix in order"
    assert after and after == list(range(after[0], EVENTS)), "second receiver: not a suffix"
    assert len(before) == at_kill, "the first receiver's file changed after its kill"
    x, y = len(before) - 1, after[0]  # x: the last event it wrote
    assert x - BATCH < y, f"resent from {y} though {x} was written: more than one batch again"
    assert len(before) >= EVENTS // 4  # the count the kill waited for (x is one less)


def stopped(agent: AgentProcess) -> bool:
    """The process is stopped by a signal (state T in /proc): a signal is delivered
    asynchronously, so a write may still land after ``send_signal`` returns."""
    assert agent.proc is not None
    stat = Path(f"/proc/{agent.proc.pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"


def numbers_in(path: Path) -> list[int]:
    data = path.read_bytes()
    return [int(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


@pytest.mark.timeout(20)
def test_receiver_with_a_file_channel_killed_under_load_loses_nothing(tmp_path: Path) -> None:
    """With a durable channel the second hop keeps what it acknowledged: every event arrives.
    Duplicates: the sender's unanswered batch, and the file_roll batch written but not yet
    taken from the log when the receiver died (replayed on restart)."""
    sender, receiver, out, port = pair(tmp_path, EVENTS, receiver_metrics=True)
    receiver.args += ["-Db.channels.c1.type=file", f"-Db.channels.c1.dataDirs={tmp_path / 'data'}",
                      f"-Db.channels.c1.checkpointDir={tmp_path / 'checkpoint'}"]
    second = restart(receiver, tmp_path)
    logs = lambda: "\n".join(p.log_tail() for p in (sender, receiver, second))  # noqa: E731
    with agents(sender, receiver, second):
        receiver.start().wait_listening(port)
        sender.start()
        wait_until(lambda: len(delivered(out)) >= EVENTS // 4, 10, "a quarter of the events",
                   logs)
        receiver.kill9()
        second.start().wait_listening(port)
        wait_until(lambda: set(delivered(out)) >= set(range(EVENTS)), 15,
                   "every event after the restart", logs)
        assert sender.stop() == 0, sender.log_tail()
        assert second.stop() == 0, second.log_tail()
    assert any((tmp_path / "data").iterdir()), "the receiver did not use a file channel"
    numbers = delivered(out)
    assert set(numbers) == set(range(EVENTS))
    repeated = Counter(numbers) - Counter(range(EVENTS))
    # Both duplicate sources can hit the same batch: the file channel's group commit lets
    # file_roll take and write a batch while its put's fsync and the OK to the sender are
    # still pending, so a kill then both replays the take and makes the sender resend.
    assert max(repeated.values(), default=1) <= 2, "an event arrived four times"
    assert sum(repeated.values()) <= 2 * BATCH, f"{sum(repeated.values())} duplicates"
