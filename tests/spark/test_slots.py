"""Executor and driver code of the flume source against a live flumelet SparkSink (no Spark):
slots are filled once, re-runs read the staged rows, unproven acks are recognised when the
agent serves their events again, and the driver's probe leaves the channel as it was."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow", reason="the spark extra (pyarrow) is not installed")

from consumer.spark import pull, slots  # noqa: E402
from consumer.spark.offsets import SlotRange  # noqa: E402
from consumer.spark.options import SourceOptions, parse_options  # noqa: E402
from consumer.spark.probe import Prober  # noqa: E402
from consumer.spark.slots import fill_slot, read_slots, to_output  # noqa: E402
from consumer.spark.staging import SlotStore, events_to_batch  # noqa: E402
from tests.spark.sinks import SinkThread  # noqa: E402

OUT = pa.schema([pa.field("headers", pa.map_(pa.string(), pa.string())),
                 pa.field("body", pa.binary()), pa.field("agent", pa.string())])
RUN = "run1"


@pytest.fixture(params=[True, False], ids=["flumelet-sink", "spark-2.4-sink"])
def agent(request: pytest.FixtureRequest) -> Iterator[SinkThread]:
    """A flumelet SparkSink, and one that answers acks without proof as Spark's own does."""
    sink = SinkThread(proof=request.param)
    yield sink
    sink.close()


def options(agent: SinkThread, tmp: Path, **kw: Any) -> SourceOptions:
    base = parse_options({"addresses": agent.address, "stagingDir": str(tmp / "staging"),
                          "pollTimeoutMs": "300"})
    return dataclasses.replace(base, **kw)


def rows(agent: SinkThread, opts: SourceOptions, slot: int, limit: int = 100_000
         ) -> list[bytes]:
    rng = SlotRange(RUN, agent.address, slot, slot, limit)
    return [b for batch in read_slots(rng, opts, OUT) for b in batch.column(1).to_pylist()]


def bodies(events: list[Any]) -> list[bytes]:
    return [e.body for e in events]


def test_a_slot_pulls_stages_acks_and_a_rerun_reads_the_staged_rows(
        agent: SinkThread, tmp_path: Path) -> None:
    sent = agent.put(2500)
    opts = options(agent, tmp_path, max_batch_size=300, max_unacked_batches=3)
    first = rows(agent, opts, 1, limit=1000)
    assert first == bodies(sent[:1000])  # the budget, in order, in batches of 300
    assert agent.size() == 1500 and agent.outstanding() == 0  # all four batches acked
    seal = SlotStore(opts.staging_dir, RUN, agent.address).seal(1)
    assert seal is not None
    assert [p.rows for p in seal.parts] == [900, 100]  # staged three batches at a time
    assert [len(p.seqs) for p in seal.parts] == [3, 1]
    assert all(p.confirmed for p in seal.parts) and not seal.pending
    # a re-run of the micro-batch: same rows, and the agent is not touched
    assert rows(agent, opts, 1, limit=5) == first
    assert agent.size() == 1500
    # the next slot goes on where the first stopped; a partial batch ends it
    assert rows(agent, opts, 2) == bodies(sent[1000:])
    assert agent.size() == 0


def test_an_agent_with_nothing_gives_an_empty_slot_and_keeps_later_events(
        agent: SinkThread, tmp_path: Path) -> None:
    opts = options(agent, tmp_path, poll_timeout=0.2)
    assert rows(agent, opts, 1) == []
    sent = agent.put(10)
    assert rows(agent, opts, 1) == []  # sealed empty: a re-run stays empty
    assert rows(agent, opts, 2) == bodies(sent)


def test_output_columns_body_as_text_and_agent() -> None:
    batch = events_to_batch([{"headers": {"h": "v"}, "body": b"caf\xc3\xa9"},
                             {"headers": {}, "body": b"\xff"}])
    text = pa.schema([OUT.field("headers"), pa.field("body", pa.string()), OUT.field("agent")])
    out = to_output(batch, "h:1", text)
    assert out.schema == text
    assert out.column(1).to_pylist() == ["café", "\ufffd"]
    assert out.column(2).to_pylist() == ["h:1", "h:1"]
    assert out.column(0).to_pylist() == [[("h", "v")], []]
    assert to_output(batch, "h:1", OUT).column(1).to_pylist() == [b"caf\xc3\xa9", b"\xff"]


def test_an_unproven_ack_makes_the_next_slot_drop_the_redelivered_events(
        agent: SinkThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection drops before the ack gets through (an agent or network failure): the
    sink rolls the batch back and serves it again; the next slot counts it once."""
    sent = agent.put(300)
    opts = options(agent, tmp_path, max_batch_size=100, max_unacked_batches=1)
    real_settle = pull.SinkConnection.settle
    calls = 0

    async def failing_second_ack(self: pull.SinkConnection, batch: pull.SinkBatch,
                                 verb: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            await self._poller.close()  # lost before the ack: the sink rolls the batch back
        return await real_settle(self, batch, verb)

    monkeypatch.setattr(pull.SinkConnection, "settle", failing_second_ack)
    first = rows(agent, opts, 1)
    monkeypatch.setattr(pull.SinkConnection, "settle", real_settle)
    assert first[:200] == bodies(sent[:200])  # the second batch was staged, so it is counted
    store = SlotStore(opts.staging_dir, RUN, agent.address)
    seal = store.seal(1)
    assert seal is not None and [p.confirmed for p in seal.parts][:2] == [True, False]
    second = rows(agent, opts, 2)
    third = rows(agent, opts, 3)
    # 100..199 came back (in slot 1 on a new connection, or later) and were dropped once
    assert sorted(first + second + third) == sorted(bodies(sent))
    assert agent.size() == 0 and agent.outstanding() == 0
    last = store.seal(3)
    assert last is not None and not last.pending


def test_an_attempt_killed_after_staging_is_adopted_by_its_rerun(
        agent: SinkThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = agent.put(250)
    opts = options(agent, tmp_path, max_batch_size=100, max_unacked_batches=1)
    store = SlotStore(opts.staging_dir, RUN, agent.address)

    class Killed(BaseException):
        pass

    async def die(self: pull.SinkConnection, batch: pull.SinkBatch, verb: str) -> bool:
        raise Killed  # staged, never acked, never sealed

    monkeypatch.setattr(pull.SinkConnection, "settle", die)
    with pytest.raises(Killed):
        rows(agent, opts, 1)
    monkeypatch.undo()
    assert store.seal(1) is None and len(store.unsealed_parts(1)) == 1
    agent.call(lambda: None)
    rerun = rows(agent, opts, 1)
    assert sorted(rerun) == sorted(bodies(sent))  # the adopted part once, then the rest
    assert agent.size() == 0 and agent.outstanding() == 0


def test_two_attempts_of_one_task_return_the_same_rows(
        agent: SinkThread, tmp_path: Path) -> None:
    sent = agent.put(1000)
    opts = options(agent, tmp_path, max_batch_size=50)
    results: list[list[bytes]] = []
    threads = [threading.Thread(target=lambda: results.append(rows(agent, opts, 1, 600)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results[0] == results[1] == bodies(sent[:600])
    assert agent.size() == 400


def test_commit_keeps_only_the_seal_of_the_committed_slot(
        agent: SinkThread, tmp_path: Path) -> None:
    agent.put(30)
    opts = options(agent, tmp_path, max_batch_size=10)
    for slot in (1, 2, 3):
        rows(agent, opts, slot, limit=10)
    store = SlotStore(opts.staging_dir, RUN, agent.address)
    store.prune(2)
    assert store.slots() == [2, 3]
    assert sorted(p.name for p in Path(store.path(2)).iterdir()) == ["lock", "sealed.json"]
    assert rows(agent, opts, 3, limit=10)  # slot 3 untouched


def test_pending_digests_carry_over_an_empty_slot(agent: SinkThread, tmp_path: Path) -> None:
    """A slot that pulled nothing keeps what the previous one still expected."""
    opts = options(agent, tmp_path, poll_timeout=0.2)
    store = SlotStore(opts.staging_dir, RUN, agent.address)

    async def main() -> None:
        agent.put(5)
        seal = await fill_slot(store, 1, 100, opts)
        seal.pending.expect(0.0, [b"x" * 16])
        store.write_seal(1, seal)
        empty = await fill_slot(store, 2, 100, opts)
        assert len(empty.pending) == 1

    asyncio.run(main())


def test_the_probe_reports_agents_with_events_and_leaves_them_in_place(tmp_path: Path) -> None:
    busy, idle = SinkThread(), SinkThread()
    prober = Prober([busy.address, idle.address])
    try:
        assert prober.ready(0.2) == []
        sent = busy.put(5)
        assert prober.ready(5.0) == [busy.address]
        assert busy.size() == 5 and busy.outstanding() == 0  # nacked: all still there
        assert bodies(busy.take_all()) == bodies(sent)  # in order
        assert prober.ready(0.2) == []
    finally:
        prober.close()
        busy.close()
        idle.close()


def test_slots_module_is_what_the_reader_runs() -> None:
    assert slots.read_slots is read_slots
