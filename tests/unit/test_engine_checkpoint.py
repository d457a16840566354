"""Checkpoint files (format, atomicity, fallback) and crash/resume written as data: the
results of an interrupted and resumed run equal those of an uninterrupted one."""

from __future__ import annotations

import logging
import operator
import os

import pytest

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.checkpoint import CheckpointStore
from consumer.engine.checkpoint_format import CheckpointCorrupt, decode, encode
from consumer.engine.errors import CheckpointMismatch
from consumer.streaming import StreamingContext


def test_encode_decode_roundtrip_and_corruption_is_named():
    payload = {"nodes": {3: [("a", 1)]}, "last_ms": 5}
    data = encode(payload)
    assert decode(data) == payload
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CheckpointCorrupt, match=r"f\.ckpt: checksum mismatch"):
        decode(flipped, "f.ckpt")
    with pytest.raises(CheckpointCorrupt, match="bad magic"):
        decode(b"X" * 60)
    with pytest.raises(CheckpointCorrupt, match="truncated"):
        decode(data[:10])


def test_store_keeps_last_two_and_falls_back_when_newest_is_corrupt(tmp_path, caplog):
    store = CheckpointStore(str(tmp_path))
    for t in (1000, 2000, 3000):
        store.write(t, {"t": t})
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-2000", "checkpoint-3000"]
    (tmp_path / "checkpoint-3000").write_bytes(b"FLCKPT garbage")
    # the logger by name: another test may have called sc.setLogLevel("ERROR") on "consumer"
    with caplog.at_level(logging.WARNING, logger="consumer.engine.checkpoint"):
        payload, path = store.load_latest()
    assert payload == {"t": 2000} and path.endswith("checkpoint-2000")
    assert "checkpoint-3000" in caplog.text
    assert CheckpointStore(str(tmp_path / "none")).load_latest() is None


class ListReceiver:
    """A receiver fed by the test (step mode never starts receivers)."""

    reliable = True

    def __init__(self):
        self.acked: list = []

    async def start(self, ctx):
        return None

    async def stop(self):
        return None

    def on_batch_done(self, tokens):
        self.acked.extend(tokens)


INPUT = [
    ["a", "b", "a"], ["b", "c"], [], ["a"], ["c", "c", "d"], [], ["a", "b"], ["d"], [], [],
    ["e"], ["a", "a"], [], ["b"],
]


def graph(kind: str):
    """Return a setup function building one graph shape, and where its outputs go."""

    def setup(ckpt: str, out: list, receiver: ListReceiver):
        def build():
            ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(10.5))
            words = ssc.receiverStream(receiver)
            pairs = words.map(lambda w: (w, 1))
            if kind == "incremental":
                result = pairs.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1)
            elif kind == "slid":
                result = pairs.reduceByKeyAndWindow(operator.add, operator.sub, 10, 2,
                                                    filterFunc=lambda kv: kv[1] > 0)
            elif kind == "window":
                result = words.window(4, 2).countByValue()
            elif kind == "state":
                result = pairs.updateStateByKey(lambda vs, old: sum(vs) + (old or 0))
            elif kind == "values":
                result = words.countByValueAndWindow(6, 1)
            else:
                raise AssertionError(kind)
            result.foreachRDD(lambda t, rdd: out.append((t, sorted(rdd.collect()))))
            ssc.checkpoint(ckpt)
            return ssc
        return build

    return setup


def feed_and_step(ssc, batches):
    stream = ssc.graph.inputs[0]
    for i, batch in enumerate(batches):
        stream.receiver_context.store(batch, token=f"tok{len(stream.receiver.acked)}-{i}")
        ssc.step()


@pytest.mark.parametrize("kind", ["incremental", "slid", "window", "state", "values"])
@pytest.mark.parametrize("crash_after", [1, 4, 9])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, kind, crash_after):
    setup = graph(kind)
    expected: list = []
    receiver = ListReceiver()
    ssc = StreamingContext.getOrCreate(str(tmp_path / "a"),
                                       setup(str(tmp_path / "a"), expected, receiver))
    feed_and_step(ssc, INPUT)

    got: list = []
    first = StreamingContext.getOrCreate(str(tmp_path / "b"),
                                         setup(str(tmp_path / "b"), got, ListReceiver()))
    feed_and_step(first, INPUT[:crash_after])
    del first  # crash: nothing but the checkpoint directory survives
    resumed = StreamingContext.getOrCreate(str(tmp_path / "b"),
                                           setup(str(tmp_path / "b"), got, ListReceiver()))
    assert resumed._restore_from is not None
    feed_and_step(resumed, INPUT[crash_after:])
    assert got == expected


def test_crash_inside_a_batch_replays_it_from_the_last_checkpoint(tmp_path):
    """The batch that failed wrote no checkpoint and acked nothing; upstream redelivers it."""
    out: list = []
    boom = {"at": 3}

    def build():
        ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
        receiver = ListReceiver()
        pairs = ssc.receiverStream(receiver).map(lambda w: (w, 1))
        counts = pairs.updateStateByKey(lambda vs, old: sum(vs) + (old or 0))

        def output(t, rdd):
            if boom["at"] == int(t.timestamp()):
                boom["at"] = None
                raise RuntimeError("sink down")
            out.append((int(t.timestamp()), sorted(rdd.collect())))

        counts.foreachRDD(output)
        return ssc

    ckpt = str(tmp_path / "c")
    ssc = StreamingContext.getOrCreate(ckpt, build)
    stream = ssc.graph.inputs[0]
    stream.receiver_context.store(["a"], token=1)
    ssc.step()
    stream.receiver_context.store(["a", "b"], token=2)
    ssc.step()
    stream.receiver_context.store(["b"], token=3)
    with pytest.raises(RuntimeError, match="sink down"):
        ssc.step()
    assert stream.receiver.acked == [1, 2]  # batch 3 was not acknowledged
    resumed = StreamingContext.getOrCreate(ckpt, build)
    rstream = resumed.graph.inputs[0]
    rstream.receiver_context.store(["b"], token=3)  # redelivered
    assert resumed.step() == 3000
    assert rstream.receiver.acked == [3]
    assert out == [(1, [("a", 1)]), (2, [("a", 2), ("b", 1)]), (3, [("a", 2), ("b", 2)])]


def test_get_or_create_refuses_a_checkpoint_from_another_graph(tmp_path):
    ckpt = str(tmp_path / "c")

    def first():
        ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
        ssc.queueStream([[("a", 1)]]).updateStateByKey(lambda vs, o: 1).pprint()
        return ssc

    def second():
        ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
        ssc.queueStream([[1]]).map(lambda x: (x, 1)).updateStateByKey(lambda vs, o: 1).pprint()
        return ssc

    StreamingContext.getOrCreate(ckpt, first).step()
    with pytest.raises(CheckpointMismatch, match="different DStream graph"):
        StreamingContext.getOrCreate(ckpt, second)


def test_untokened_input_cut_but_not_run_is_checkpointed_and_replayed(tmp_path):
    out: list = []

    def build():
        ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
        receiver = ListReceiver()
        ssc.receiverStream(receiver).map(lambda w: (w, 1)) \
            .updateStateByKey(lambda vs, old: sum(vs) + (old or 0)) \
            .foreachRDD(lambda t, rdd: out.append(sorted(rdd.collect())))
        return ssc

    ckpt = str(tmp_path / "c")
    ssc = StreamingContext.getOrCreate(ckpt, build)
    pipeline = ssc._pipeline if ssc._pipeline else None
    assert pipeline is None
    ssc._prepare("manual")
    ssc.graph.inputs[0].receiver_context.store(["x"])
    blocks_1 = ssc._pipeline.cut()
    ssc.graph.inputs[0].receiver_context.store(["y", "y"])
    blocks_2 = ssc._pipeline.cut()  # cut at the next boundary while batch 1 still runs
    ssc._pipeline.run(1000, blocks_1, queued=[(2000, blocks_2)])
    resumed = StreamingContext.getOrCreate(ckpt, build)
    assert resumed.step() == 2000  # the pending batch is replayed first
    assert out[-1] == [("x", 1), ("y", 2)]
