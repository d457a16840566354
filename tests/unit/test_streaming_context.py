"""StreamingContext lifecycle, Spark's start-time checks, inputs, and the receiver interface
under the real background loop driven by a manual clock (no sleeps)."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime

import pytest

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.errors import IllegalArgumentException, IllegalStateException
from consumer.streaming import StreamingContext


def ssc_at(ms: int = 0, batch: float = 1) -> tuple[StreamingContext, ManualClock]:
    clock = ManualClock(ms / 1000)
    return StreamingContext(SparkContext(), batch, clock=clock), clock


def test_no_output_operation_fails_start_with_sparks_message():
    ssc, _ = ssc_at()
    ssc.queueStream([[1]]).map(lambda x: x)
    with pytest.raises(IllegalArgumentException, match=r"^requirement failed: No output "
                                                       "operations registered"):
        ssc.start()


def test_checkpoint_after_graph_and_dstream_checkpoint_interval_rules(tmp_path):
    ssc, _ = ssc_at()
    ssc.queueStream([[1]]).map(lambda x: x).checkpoint(3).pprint()
    with pytest.raises(IllegalArgumentException, match="checkpoint directory has not been set"):
        ssc.step()
    ssc.checkpoint(str(tmp_path))  # after the graph is built, before start: allowed
    ssc2, _ = ssc_at(batch=2)
    ssc2.checkpoint(str(tmp_path))
    ssc2.queueStream([[1]]).checkpoint(3).pprint()
    with pytest.raises(IllegalArgumentException, match="not a multiple of its slide time"):
        ssc2.step()


def test_adding_operations_after_start_is_rejected():
    ssc, _ = ssc_at()
    s = ssc.queueStream([[1]])
    s.pprint()
    ssc.step()
    with pytest.raises(IllegalStateException, match="after starting a context"):
        s.map(lambda x: x)


def test_transform_foreach_with_time_union_count_and_slice():
    ssc, _ = ssc_at(5_200)
    ssc.remember(10)
    a = ssc.queueStream([[1, 2], [3]])
    b = ssc.queueStream([["x"], []])
    seen = []
    a.transform(lambda t, rdd: rdd.map(lambda x: (t.timestamp(), x))) \
        .foreachRDD(lambda t, rdd: seen.append(rdd.collect()))
    unioned = []
    ssc.union(a, b).foreachRDD(lambda rdd: unioned.append(rdd.collect()))
    counts = []
    b.count().foreachRDD(lambda rdd: counts.append(rdd.collect()))
    joined = []
    a.map(lambda x: (x % 2, x)).join(a.map(lambda x: (x % 2, -x))) \
        .foreachRDD(lambda rdd: joined.append(sorted(rdd.collect())))
    assert ssc.step() == 6000
    ssc.step()
    assert seen == [[(6.0, 1), (6.0, 2)], [(7.0, 3)]]
    assert unioned == [[1, 2, "x"], [3]]
    assert counts == [[1], [0]]  # an empty parallelized batch still counts 0
    assert joined[1] == [(1, (3, -3))]
    assert [r.collect() for r in a.slice(datetime.fromtimestamp(6), 7.0)] == [[1, 2], [3]]


def test_empty_receiver_batch_counts_nothing_like_pyspark():
    ssc, _ = ssc_at()
    stream = ssc.receiverStream(Recorder())
    counts = []
    stream.count().foreachRDD(lambda rdd: counts.append(rdd.collect()))
    ssc.step()
    stream.receiver_context.store(["r"])
    ssc.step()
    assert counts == [[], [1]]


def test_text_file_stream_reads_new_files_only(tmp_path):
    ssc, _ = ssc_at()
    (tmp_path / "old.txt").write_text("ignored\n")
    lines = []
    ssc.textFileStream(str(tmp_path)).foreachRDD(lambda rdd: lines.append(rdd.collect()))
    ssc.step()
    (tmp_path / "new.txt").write_text("l1\nl2\n")
    (tmp_path / ".hidden").write_text("no\n")
    ssc.step()
    ssc.step()
    assert lines == [[], ["l1", "l2"], []]


def test_save_as_text_files_names_directories_by_batch_time(tmp_path):
    ssc, _ = ssc_at(1_000)
    ssc.queueStream([["a", "b"]]).saveAsTextFiles(str(tmp_path / "out"), "txt")
    ssc.step()
    assert (tmp_path / "out-2000.txt" / "part-00000").read_text() == "a\nb\n"


class Recorder:
    """A receiver that records every interaction; it stores when told to."""

    def __init__(self, reliable: bool = False):
        self.reliable = reliable
        self.ctx = None
        self.events: list = []
        self.started = threading.Event()

    async def start(self, ctx):
        self.ctx = ctx
        self.events.append(("start", threading.current_thread().name))
        self.started.set()

    async def stop(self):
        self.events.append(("stop",))

    async def on_batch_done(self, tokens):
        await asyncio.sleep(0)
        self.events.append(("done", list(tokens)))

    def on_batch_failed(self, tokens, error):
        self.events.append(("failed", list(tokens), str(error)))


def test_receiver_runs_on_the_loop_and_tokens_ack_after_outputs_and_checkpoint(tmp_path):
    ssc, clock = ssc_at(1_000_400)
    receiver = Recorder(reliable=True)
    outputs = []
    stream = ssc.receiverStream(receiver)
    stream.map(lambda r: r[1]).foreachRDD(lambda t, rdd: outputs.append(
        (int(t.timestamp() * 1000), rdd.collect(), sorted(os.listdir(tmp_path)))))
    ssc.checkpoint(str(tmp_path))
    ssc.start()
    try:
        assert receiver.started.wait(5)
        assert receiver.events[0] == ("start", "flumelet-streaming")
        receiver.ctx.store([({"h": "1"}, "one"), ({}, "two")], token="seq-1")
        receiver.ctx.store([({}, "three")], token="seq-2")
        clock.set_ms(1_001_000)
        assert ssc.awaitBatchCompleted(1_001_000)
        receiver.ctx.store([({}, "four")])  # no token: never acknowledged
        clock.set_ms(1_002_000)
        assert ssc.awaitBatchCompleted(1_002_000)
    finally:
        ssc.stop(stopSparkContext=False)
    assert outputs[0][:2] == (1_001_000, ["one", "two", "three"])
    assert outputs[1][:2] == (1_002_000, ["four"])
    # the checkpoint for batch 1 did not exist yet while its outputs ran ...
    assert "checkpoint-1001000" not in outputs[0][2]
    # ... but tokens are acknowledged only after it was written
    assert ("done", ["seq-1", "seq-2"]) in receiver.events
    assert os.path.exists(tmp_path / "checkpoint-1001000")
    assert receiver.events[-1] == ("stop",)
    ssc.awaitTermination(1)  # already stopped: returns, no error


def test_failed_batch_nacks_stops_the_context_and_await_termination_raises():
    ssc, clock = ssc_at(0)
    receiver = Recorder()

    def explode(rdd):
        if rdd.count():
            raise RuntimeError("boom")

    ssc.receiverStream(receiver).foreachRDD(explode)
    ssc.start()
    assert receiver.started.wait(5)
    receiver.ctx.store(["x"], token=7)
    clock.set_ms(1_000)
    with pytest.raises(RuntimeError, match="boom"):
        ssc.awaitTermination(5)
    assert ("failed", [7], "boom") in receiver.events
    assert receiver.events[-1] == ("stop",)


def test_graceful_stop_processes_data_already_received():
    ssc, _clock = ssc_at(0)
    receiver = Recorder()
    got = []
    ssc.receiverStream(receiver).foreachRDD(lambda rdd: got.extend(rdd.collect()))
    ssc.start()
    assert receiver.started.wait(5)
    receiver.ctx.store(["late"], token="t")
    ssc.stop(stopSparkContext=False, stopGraceFully=True)
    assert got == ["late"]
    assert ("done", ["t"]) in receiver.events


def test_receiver_start_failure_surfaces_from_start():
    class Broken(Recorder):
        async def start(self, ctx):
            raise OSError("port 9092 in use")

    ssc, _ = ssc_at(0)
    ssc.receiverStream(Broken()).pprint()
    with pytest.raises(OSError, match="9092"):
        ssc.start()


def test_checkpoint_interval_holds_acks_until_a_checkpoint_covers_them(tmp_path):
    ssc, clock = ssc_at(1_000_400)
    receiver = Recorder(reliable=True)
    stream = ssc.receiverStream(receiver)
    totals = stream.map(lambda r: (r[1], 1)).updateStateByKey(
        lambda new, old: sum(new) + (old or 0))
    totals.checkpoint(3)  # every 3 s instead of every batch
    totals.foreachRDD(lambda rdd: None)
    ssc.checkpoint(str(tmp_path))
    ssc.start()
    try:
        assert receiver.started.wait(5)
        for i, t in enumerate((1_001_000, 1_002_000, 1_003_000, 1_004_000), start=1):
            receiver.ctx.store([({}, "x")], token=f"seq-{i}")
            clock.set_ms(t)
            assert ssc.awaitBatchCompleted(t)
            done = [e for e in receiver.events if e[0] == "done"]
            if t < 1_003_000:
                assert done == []  # processed, but no checkpoint covers it yet
        receiver.ctx.store([({}, "x")], token="seq-5")
    finally:
        ssc.stop(stopSparkContext=False, stopGraceFully=True)
    done = [e for e in receiver.events if e[0] == "done"]
    # 1 s..3 s acked together with the 3 s checkpoint; the rest by the final one at stop
    assert done[0] == ("done", ["seq-1", "seq-2", "seq-3"])
    assert [tok for _, toks in done[1:] for tok in toks] == ["seq-4", "seq-5"]
    checkpoints = sorted(n for n in os.listdir(tmp_path) if n.startswith("checkpoint-"))
    assert "checkpoint-1001000" not in checkpoints and "checkpoint-1002000" not in checkpoints


def test_a_failing_user_function_is_one_log_line_naming_where(caplog):
    """The traceback is printed once, by whoever awaitTermination() (here step()) raises it
    to; the log line names the user's line."""
    ssc, _ = ssc_at()
    ssc.queueStream([[1]]).map(lambda x: x / 0).pprint()
    with caplog.at_level("INFO"), pytest.raises(ZeroDivisionError):
        ssc.step()
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert not record.exc_info
    message = record.getMessage()
    assert "failed: ZeroDivisionError: division by zero (at " in message
    assert f"{__file__}:" in message
