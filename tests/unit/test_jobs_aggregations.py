"""Aggregations: per-batch partials, combine/inverse algebra and final values."""

from __future__ import annotations

from collections import Counter
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.engine.windows import fresh
from consumer.jobs.aggregations import (
    AGGREGATIONS,
    make_aggregation,
    rank_top_k,
    rank_top_k_all,
)

PAIRS = [("a", 3), ("b", 1), ("a", 5), ("a", 3), ("b", 2)]


def final(name: str, pairs=PAIRS, k: int = 10) -> dict:
    agg = make_aggregation(name, k)
    return {key: agg.finalize(acc) for key, acc in agg.batch(pairs).items()}


def test_final_values_of_every_aggregation():
    assert final("count") == {"a": 3, "b": 2}
    assert final("sum") == {"a": 11, "b": 3}
    assert final("avg") == {"a": pytest.approx(11 / 3), "b": 1.5}
    assert final("min") == {"a": 3, "b": 1}
    assert final("max") == {"a": 5, "b": 2}
    assert final("distinct_count") == {"a": 2, "b": 2}
    assert final("top_k", k=1) == {"a": [(3, 2)], "b": [(1, 1)]}  # b: tie 1 vs 2 -> "1" first


def test_needs_value_and_numeric_flags():
    flags = {n: (make_aggregation(n).needs_value, make_aggregation(n).numeric)
             for n in AGGREGATIONS}
    assert flags["count"] == (False, False)
    assert all(flags[n] == (True, True) for n in ("sum", "avg", "min", "max"))
    assert flags["distinct_count"] == flags["top_k"] == (True, False)


def test_min_max_have_no_inverse_so_windows_are_recomputed():
    assert make_aggregation("min").inverse is None
    assert make_aggregation("max").inverse is None
    assert all(make_aggregation(n).inverse is not None
               for n in ("count", "sum", "avg", "distinct_count", "top_k"))


def test_combine_never_mutates_its_arguments():
    for name in ("sum", "distinct_count", "top_k"):
        agg = make_aggregation(name)
        a = agg.batch([("k", 1), ("k", 2)])["k"]
        b = agg.batch([("k", 2)])["k"]
        before = (repr(a), repr(b))
        merged = agg.combine(a, b)
        assert agg.inverse is not None
        agg.inverse(merged, b)
        assert (repr(a), repr(b)) == before


def test_keep_drops_keys_whose_records_all_left_the_window():
    for name in ("count", "sum", "avg", "distinct_count", "top_k"):
        agg = make_aggregation(name)
        acc = agg.batch([("k", 4)])["k"]
        assert agg.inverse is not None
        emptied = agg.inverse(fresh(acc), acc)  # inverse may update its first argument
        assert agg.keep(acc) and not agg.keep(emptied), name
        assert not agg.keep(agg.inverse(acc, acc)), name


def test_sum_keeps_a_key_whose_sum_is_zero_but_has_records():
    agg = make_aggregation("sum")
    acc = agg.batch([("k", 5), ("k", -5)])["k"]
    assert agg.keep(acc) and agg.finalize(acc) == 0


def test_lift_and_combine_equal_batch():
    for name in AGGREGATIONS:
        agg = make_aggregation(name, 2)
        values = [3, 1, 3, 2]
        folded = reduce(agg.combine, [agg.lift(v) for v in values])
        batched = agg.batch([("k", v) for v in values])["k"]
        assert agg.finalize(folded) == agg.finalize(batched), name


def test_combine_and_inverse_update_only_their_first_argument():
    """Counters merge in place (O(size of the partial)); the partial is left as it was."""
    for name in AGGREGATIONS:
        agg = make_aggregation(name, 3)
        a, b = agg.batch([("k", 1), ("k", 2)])["k"], agg.batch([("k", 2), ("k", 5)])["k"]
        b_before = fresh(b)
        merged = agg.combine(fresh(a), b)
        assert b == b_before, name
        if agg.inverse is not None:
            assert agg.inverse(fresh(merged), b) == a, name
            assert b == b_before, name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.text(max_size=2), st.integers(-20, 20)),
                          st.integers(1, 4)), max_size=30), st.integers(0, 8))
def test_rank_top_k_is_the_plain_sort(pairs, k):
    counts = Counter(dict(pairs))
    assert rank_top_k(counts, k) == sorted(counts.items(),
                                           key=lambda vc: (-vc[1], str(vc[0])))[:k]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.text(max_size=2), st.integers(1, 4)), max_size=12),
                min_size=60, max_size=90), st.integers(0, 4), st.booleans())
def test_rank_top_k_all_ranks_each_counter_as_rank_top_k(groups, k, as_ints):
    accs = [Counter({(len(v) * 7 + ord(v[0]) if v else 0) if as_ints else v: n
                     for v, n in pairs}) for pairs in groups]
    assert rank_top_k_all(accs, k) == [rank_top_k(acc, k) for acc in accs]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(1, 3)),
                                  min_size=1, max_size=4), min_size=1, max_size=3),
                min_size=60, max_size=80), st.integers(1, 4))
def test_bags_of_counters_finalize_as_their_merged_counter(bags, k):
    """Event-time top_k/distinct_count keep the partial counters and merge them once."""
    as_bags = [[Counter(dict(pairs)) for pairs in bag] for bag in bags]
    merged = [sum(bag, Counter()) for bag in as_bags]
    top_k = make_aggregation("top_k", k, event_time=True)
    distinct = make_aggregation("distinct_count", event_time=True)
    assert top_k.finalize_all(as_bags) == [rank_top_k(m, k) for m in merged]
    assert [top_k.finalize(b) for b in as_bags] == [rank_top_k(m, k) for m in merged]
    assert distinct.finalize_all(as_bags) == [len(m) for m in merged]
    assert [distinct.finalize(b) for b in as_bags] == [len(m) for m in merged]


def test_rank_top_k_orders_by_count_then_value_text():
    assert rank_top_k(Counter({"b": 2, "a": 2, "c": 5, "d": 1}), 3) == \
        [("c", 5), ("a", 2), ("b", 2)]


def test_unknown_aggregation():
    with pytest.raises(ValueError, match="unknown aggregation 'median'"):
        make_aggregation("median")


batches = st.lists(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-5, 5)),
                            max_size=6), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(batches=batches, name=st.sampled_from(["count", "sum", "avg", "distinct_count",
                                              "top_k"]), width=st.integers(1, 4))
def test_incremental_window_equals_recomputation(batches, name, width):
    """Add the new batch, subtract the one that left: same as reducing the window afresh.
    (Accumulators are copied before their first merge, as the engine does.)"""
    agg = make_aggregation(name, 2)
    assert agg.inverse is not None
    partials = [agg.batch(b) for b in batches]
    running: dict = {}
    for i, new in enumerate(partials):
        for key, acc in new.items():
            running[key] = agg.combine(running[key], acc) if key in running else fresh(acc)
        if i >= width:
            for key, acc in partials[i - width].items():
                running[key] = agg.inverse(running[key], acc)
        incremental = {k: agg.finalize(v) for k, v in running.items() if agg.keep(v)}
        again: dict = {}
        for part in partials[max(0, i - width + 1):i + 1]:
            for key, acc in part.items():
                again[key] = agg.combine(again[key], acc) if key in again else fresh(acc)
        expected = {k: agg.finalize(v) for k, v in again.items()}
        if name == "avg":
            assert incremental.keys() == expected.keys()
            assert all(incremental[k] == pytest.approx(expected[k]) for k in expected)
        else:
            assert incremental == expected
