"""Window semantics on hand-built batch sequences, driven batch by batch with step()."""

from __future__ import annotations

import operator
import random

import pytest

from common.clock import ManualClock
from consumer import SparkContext
from consumer.streaming import StreamingContext

START_MS = 1_700_000_000_500  # first batch time is then ...001000 with a 1 s interval


def make_ssc(tmp_path, batch: float = 1, checkpoint: bool = True) -> StreamingContext:
    ssc = StreamingContext(SparkContext(appName="t"), batch, clock=ManualClock(START_MS / 1000))
    if checkpoint:
        ssc.checkpoint(str(tmp_path / "ckpt"))
    return ssc


def collect(stream) -> list[tuple[int, list]]:
    out: list[tuple[int, list]] = []

    def grab(t, rdd):
        out.append((int(t.timestamp() * 1000), rdd.collect()))

    stream.foreachRDD(grab)
    return out


def run(ssc: StreamingContext, n: int) -> list[int]:
    return [ssc.step() for _ in range(n)]


def test_window_durations_must_be_multiples_of_parent_slide(tmp_path):
    ssc = make_ssc(tmp_path, batch=2)
    s = ssc.queueStream([[1]])
    with pytest.raises(ValueError, match=r"^windowDuration must be multiple of the slide "
                                         r"duration \(2000 ms\)$"):
        s.window(3, 2)
    with pytest.raises(ValueError, match=r"^slideDuration must be multiple of the slide "
                                         r"duration \(2000 ms\)$"):
        s.map(lambda x: (x, 1)).reduceByKeyAndWindow(operator.add, operator.sub, 4, 3)
    # a windowed stream's own slide is the parent slide for the next window
    with pytest.raises(ValueError, match=r"\(4000 ms\)"):
        s.window(8, 4).window(12, 6)


def test_first_batch_time_is_next_multiple_and_slid_windows_fire_on_slide(tmp_path):
    ssc = make_ssc(tmp_path)
    s = ssc.queueStream([[i] for i in range(1, 9)])
    every = collect(s)
    slid = collect(s.window(4, 2))
    times = run(ssc, 8)
    assert times[0] == 1_700_000_001_000
    assert times == [times[0] + 1000 * i for i in range(8)]
    assert [t for t, _ in every] == times
    # zero time = first batch - 1 s, so a 2 s slide fires on the 2nd, 4th, ... batch
    assert [t for t, _ in slid] == times[1::2]
    assert [v for _, v in slid] == [[1, 2], [1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]]


BATCHES = [["a", "b", "a"], ["b"], [], ["c", "a"], [], ["a"], [], [], [], [], [], ["b"], []]


@pytest.mark.parametrize("window,slide", [(5, 1), (6, 1), (10, 2), (3, 1), (4, 2)])
def test_inverse_and_recompute_paths_agree_on_every_nonzero_count(tmp_path, window, slide):
    ssc = make_ssc(tmp_path)
    pairs = ssc.queueStream(BATCHES).map(lambda w: (w, 1))
    inc = collect(pairs.reduceByKeyAndWindow(operator.add, operator.sub, window, slide))
    full = collect(pairs.reduceByKeyAndWindow(operator.add, None, window, slide))
    run(ssc, len(BATCHES))
    assert [t for t, _ in inc] == [t for t, _ in full]
    for (_, a), (_, b) in zip(inc, full, strict=True):
        assert {k: v for k, v in a if v != 0} == dict(b)


def test_zero_count_keys_follow_pyspark_incremental_path(tmp_path):
    ssc = make_ssc(tmp_path)
    pairs = ssc.queueStream(BATCHES).map(lambda w: (w, 1))
    inc = collect(pairs.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1))
    filt = collect(pairs.reduceByKeyAndWindow(operator.add, operator.sub, 5, 1,
                                              filterFunc=lambda kv: kv[1] > 0))
    run(ssc, len(BATCHES))
    # batch 7: window covers batches 3..7 -> b left the window: stays with 0
    assert dict(inc[6][1]) == {"a": 2, "b": 0, "c": 1}
    assert dict(filt[6][1]) == {"a": 2, "c": 1}
    # once a key is in the incremental result it stays (at 0) until filtered
    assert dict(inc[10][1]) == {"a": 0, "b": 0, "c": 0}
    assert filt[10][1] == []
    assert dict(inc[11][1]) == {"a": 0, "b": 1, "c": 0}


def test_small_windows_recompute_so_zero_keys_vanish_but_filter_still_applies(tmp_path):
    # window < 5 * slide: PySpark recomputes even with an inverse function
    ssc = make_ssc(tmp_path)
    pairs = ssc.queueStream(BATCHES).map(lambda w: (w, 1))
    small = collect(pairs.reduceByKeyAndWindow(operator.add, operator.sub, 4, 1))
    odd = collect(pairs.reduceByKeyAndWindow(operator.add, operator.sub, 4, 1,
                                             filterFunc=lambda kv: kv[0] != "a"))
    run(ssc, len(BATCHES))
    assert all(v != 0 for _, batch in small for _, v in batch)
    assert dict(small[5][1]) == {"c": 1, "a": 2}
    assert dict(odd[5][1]) == {"c": 1}
    assert small[10][1] == []  # nothing in the window: no zero-count keys either


def test_incremental_path_cost_is_batch_plus_keys(tmp_path):
    """With 300 s / 1 s, each slide touches only the entering and leaving batch."""
    ssc = make_ssc(tmp_path)
    calls = {"add": 0, "sub": 0}

    def add(a, b):
        calls["add"] += 1
        return a + b

    def sub(a, b):
        calls["sub"] += 1
        return a - b

    rng = random.Random(7)
    batches = [[f"k{rng.randrange(20)}" for _ in range(10)] for _ in range(320)]
    pairs = ssc.queueStream(batches).map(lambda w: (w, 1))
    out = collect(pairs.reduceByKeyAndWindow(add, sub, 300, 1))
    run(ssc, 305)
    calls["add"] = calls["sub"] = 0
    run(ssc, 1)
    # per-batch reduce (<= 10 records) + merge (<= 10 keys) + subtract (<= 10 keys)
    assert calls["add"] <= 20 and calls["sub"] <= 10
    expected: dict[str, int] = {}
    for b in batches[6:306]:
        for k in b:
            expected[k] = expected.get(k, 0) + 1
    assert {k: v for k, v in out[-1][1] if v} == expected


def test_count_by_window_and_count_by_value_and_window(tmp_path):
    ssc = make_ssc(tmp_path)
    s = ssc.queueStream(BATCHES)
    cw = collect(s.countByWindow(5, 1))
    cvw = collect(s.countByValueAndWindow(5, 1))
    ckw = collect(s.countByKeyAndWindow(5, 1))
    run(ssc, len(BATCHES))
    assert [v for _, v in cw][:9] == [[3], [4], [4], [6], [6], [4], [3], [3], [1]]
    assert [v for _, v in cw][10] == [0]  # data left the window: 0, not nothing
    for (_, a), (_, b) in zip(cvw, ckw, strict=True):
        assert dict(a) == dict(b)
        assert all(v > 0 for _, v in a)
    assert dict(cvw[6][1]) == {"a": 2, "c": 1}


def test_reduce_by_window_without_inverse_and_group_by_key_and_window(tmp_path):
    ssc = make_ssc(tmp_path)
    s = ssc.queueStream([[1, 2], [3], [4, 5], [6]])
    sums = collect(s.reduceByWindow(operator.add, None, 2, 1))
    grouped = collect(s.map(lambda x: (x % 2, x)).groupByKeyAndWindow(2, 1))
    run(ssc, 4)
    assert [v for _, v in sums] == [[3], [6], [12], [15]]
    assert [sorted((k, sorted(v)) for k, v in b) for _, b in grouped][2] == \
        [(0, [4]), (1, [3, 5])]


def test_group_by_key_and_window_incremental_is_not_corrupted_by_in_place_extend(tmp_path):
    ssc = make_ssc(tmp_path)
    s = ssc.queueStream([[1], [2], [3], [4], [5], [6], [7], [8]])
    grouped = collect(s.map(lambda x: ("k", x)).groupByKeyAndWindow(5, 1))
    run(ssc, 8)
    assert [sorted(b[0][1]) for _, b in grouped] == [
        [1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6],
        [3, 4, 5, 6, 7], [4, 5, 6, 7, 8]]
