"""Event-time windows: a watermark makes results independent of arrival jitter."""

from __future__ import annotations

import operator
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.windows import EventTimeWindows, EventWindow
from consumer.streaming import StreamingContext

EVENTS = [(t, "/a" if t % 3 else "/b") for t in range(0, 120, 2)]  # (event second, url)


def run_events(batches, window=20, slide=10, lateness=15):
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
    stream = ssc.queueStream(batches).eventTimeWindow(
        timestamp=lambda e: e[0], windowDuration=window, slideDuration=slide,
        allowedLateness=lateness, key=lambda e: e[1])
    out = []
    stream.foreachRDD(lambda rdd: out.extend(rdd.collect()))
    for _ in batches:
        ssc.step()
    return out, stream


def test_results_do_not_depend_on_arrival_jitter():
    in_order = [EVENTS[i:i + 5] for i in range(0, len(EVENTS), 5)]
    rng = random.Random(3)
    jittered = sorted(EVENTS, key=lambda e: e[0] + rng.uniform(-6, 6))
    shuffled = [jittered[i:i + 3] for i in range(0, len(jittered), 3)]
    a, sa = run_events(in_order)
    b, sb = run_events(shuffled)
    assert a == b and a
    assert sa.lateRecords == sb.lateRecords == 0
    assert a[0] == EventWindow(-10.0, 10.0, "/a", 3)  # events 2, 4, 8 of [0, 10)
    assert all(w.end - w.start == 20.0 for w in a)


def test_too_late_records_are_dropped_and_counted():
    out, stream = run_events([[(100, "/x")], [(5, "/x"), (95, "/x")], [(200, "/x")]],
                             window=10, slide=10, lateness=10)
    assert stream.lateRecords == 1  # t=5 arrived after the watermark passed 90
    assert stream.watermark == 190.0
    assert [(w.start, w.value) for w in out] == [(90.0, 1), (100.0, 1)]


def test_pure_windows_snapshot_restore_continue_identically():
    a = EventTimeWindows(10_000, 5_000, 0)
    b = EventTimeWindows(10_000, 5_000, 0)
    for ts in (1_000, 7_000, 12_000):
        a.add(ts, None, 1)
        b.add(ts, None, 1)
    assert a.advance() == b.advance()
    c = EventTimeWindows(10_000, 5_000, 0)
    c.restore(b.snapshot())
    a.add(30_000, None, 1)
    c.add(30_000, None, 1)
    assert a.advance() == c.advance() == [
        EventWindow(5.0, 15.0, None, 2), EventWindow(10.0, 20.0, None, 1)]


_records = st.lists(st.tuples(st.integers(0, 200), st.sampled_from(["/a", "/b", "/c", None]),
                              st.integers(-5, 5) | st.booleans() | st.just(2**70)),
                    max_size=30)


@settings(max_examples=150, deadline=None)
@given(st.lists(_records, min_size=1, max_size=5), st.sampled_from([(20, 10), (30, 20), (10, 10)]),
       st.integers(0, 30), st.booleans())
def test_sums_grouped_per_pane_equal_adding_record_by_record(batches, sizes, lateness, keyed):
    """The default reduce (+) on int values merges per pane and key: the same windows, late
    counts and watermark as a reduce that takes records one by one."""
    window, slide = sizes

    def run(reduce):
        ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
        stream = ssc.queueStream(batches).eventTimeWindow(
            timestamp=lambda e: e[0], windowDuration=window, slideDuration=slide,
            allowedLateness=lateness, key=(lambda e: e[1]) if keyed else None,
            value=lambda e: e[2], reduce=reduce)
        out = []
        stream.foreachRDD(lambda rdd: out.append(rdd.collect()))
        for _ in batches:
            ssc.step()
        return out, stream.lateRecords, stream.watermark

    grouped, one_by_one = run(operator.add), run(lambda a, b: a + b)
    assert grouped == one_by_one
    assert [[type(w.value) for w in ws] for ws in grouped[0]] == \
        [[type(w.value) for w in ws] for ws in one_by_one[0]]
