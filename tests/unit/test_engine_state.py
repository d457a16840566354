"""updateStateByKey and the mapWithState-style API on hand-built batches."""

from __future__ import annotations

import pytest

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.errors import IllegalArgumentException
from consumer.engine.state import State, StateError, StateSpec
from consumer.streaming import StreamingContext


def make(tmp_path, batches, checkpoint=True):
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
    if checkpoint:
        ssc.checkpoint(str(tmp_path / "c"))
    return ssc, ssc.queueStream(batches)


def collect(stream):
    out = []
    stream.foreachRDD(lambda rdd: out.append(rdd.collect()))
    return out


def test_update_state_by_key_calls_for_new_and_existing_keys_and_deletes_on_none(tmp_path):
    calls = []

    def update(values, old):
        calls.append((tuple(values), old))
        total = (old or 0) + sum(values)
        return None if total >= 5 else total

    ssc, s = make(tmp_path, [[("a", 1), ("b", 2), ("a", 1)], [("b", 3)], [], [("a", 1)]])
    out = collect(s.updateStateByKey(update))
    for _ in range(4):
        ssc.step()
    assert out == [[("a", 2), ("b", 2)], [("a", 2)], [("a", 2)], [("a", 3)]]
    assert calls[:2] == [((1, 1), None), ((2,), None)]
    assert ((), 2) in calls  # existing key without new values still gets called


def test_update_state_by_key_initial_rdd(tmp_path):
    ssc, s = make(tmp_path, [[("a", 1)]])
    init = ssc.sparkContext.parallelize([("a", 10), ("z", 1)])
    out = collect(s.updateStateByKey(lambda vs, old: sum(vs) + (old or 0), initialRDD=init))
    ssc.step()
    assert dict(out[0]) == {"a": 11, "z": 1}


def test_stateful_streams_require_checkpoint_dir_with_sparks_message(tmp_path):
    ssc, s = make(tmp_path, [[("a", 1)]], checkpoint=False)
    s.updateStateByKey(lambda vs, old: 1).pprint()
    with pytest.raises(IllegalArgumentException) as info:
        ssc.start()
    assert str(info.value) == ("requirement failed: The checkpoint directory has not been set. "
                               "Please set it by StreamingContext.checkpoint().")


def test_map_with_state_per_record_snapshots_and_timeout(tmp_path):
    def track(key, value, state):
        if state.isTimingOut():
            return (key, "timeout", state.get())
        total = (state.get() if state.exists() else 0) + value
        state.update(total)
        return (key, total)

    batches = [[("a", 1), ("a", 2), ("b", 5)], [("a", 1)], [], [], []]
    ssc, s = make(tmp_path, batches)
    mapped = s.mapWithState(StateSpec.function(track).timeout(2).initialState([("c", 7)]))
    out = collect(mapped)
    snaps = collect(mapped.stateSnapshots())
    for _ in range(5):
        ssc.step()
    assert out[0] == [("a", 1), ("a", 3), ("b", 5)]
    assert out[1] == [("a", 4)]
    # no data for > 2 s: b (last seen batch 1) and c (initial, stamped at batch 1) time out
    # at batch 4; a (last seen batch 2) at batch 5
    assert sorted(out[3]) == [("b", "timeout", 5), ("c", "timeout", 7)]
    assert out[4] == [("a", "timeout", 4)]
    assert dict(snaps[1]) == {"a": 4, "b": 5, "c": 7}
    assert snaps[4] == []


def test_map_with_state_remove_and_four_arg_form(tmp_path):
    seen_times = []

    def f(time, key, value, state):
        seen_times.append(time)
        if value == "drop":
            state.remove()
            return None
        state.update(value)
        return value

    ssc, s = make(tmp_path, [[("k", "v1")], [("k", "drop")]])
    mapped = s.mapWithState(StateSpec.function(f))
    snaps = collect(mapped.stateSnapshots())
    ssc.step()
    ssc.step()
    assert snaps == [[("k", "v1")], []]
    assert seen_times[0].timestamp() == 1.0


def test_state_object_rules():
    st = State(False)
    with pytest.raises(StateError, match="State is not set"):
        st.get()
    timing = State(True, 3, timing_out=True)
    with pytest.raises(StateError, match="timing out"):
        timing.update(4)
    st.update(1)
    st.remove()
    with pytest.raises(StateError, match="already been removed"):
        st.remove()
