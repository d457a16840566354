"""A window given as columns ranks exactly as its rows do (the console's, the web UI's and
the terminal view's top N of event-time windows)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumer.engine.windows import EventWindow
from consumer.jobs.ranking import top_of_window, top_per_window

KEYS = st.one_of(st.text(max_size=3), st.integers(-3, 3))
VALUES = st.one_of(st.integers(-3, 5), st.floats(allow_nan=False, width=16),
                   st.text(max_size=2), st.booleans())


def _same_as_rows(keys: list, values: list, n: int) -> None:
    rows = [EventWindow(60.0, 360.0, k, v) for k, v in zip(keys, values, strict=True)]
    expected = top_per_window(rows, n) or [None]
    got = top_of_window(60.0, 360.0, keys, values, n)
    if not keys:
        assert got.top == () and got.keys == 0
        return
    assert [got] == expected


@given(st.dictionaries(KEYS, st.integers(0, 6), max_size=40), st.integers(0, 12))
def test_counts_rank_as_rows_do(counts: dict, n: int) -> None:
    """Integer values (the fast path): many ties at the cut, keys whose texts tie (1, "1")."""
    _same_as_rows(list(counts), list(counts.values()), n)


@given(st.dictionaries(KEYS, VALUES, max_size=30), st.integers(0, 8))
def test_any_values_rank_as_rows_do(pairs: dict, n: int) -> None:
    _same_as_rows(list(pairs), list(pairs.values()), n)


def test_a_wide_window_keeps_its_top_and_its_size() -> None:
    keys = [f"/u/{i}" for i in range(10_000)]
    values = [1] * 10_000
    values[7], values[9_000] = 50, 3
    top = top_of_window(0.0, 300.0, keys, values, 3)
    assert (top.start_ms, top.end_ms, top.keys) == (0, 300_000, 10_000)
    assert top.pairs() == [("/u/7", 50), ("/u/9000", 3), ("/u/0", 1)]
