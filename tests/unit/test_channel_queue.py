"""The memory channel's chunked queue behaves exactly as a deque of events."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.channels.queue import ChunkedQueue

ops = st.lists(
    st.one_of(
        st.tuples(st.just("extend"), st.integers(0, 7)),
        st.tuples(st.just("append"), st.just(1)),
        st.tuples(st.just("take"), st.integers(0, 9)),
        st.tuples(st.just("push_front"), st.integers(0, 5)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_same_as_a_deque(operations: list[tuple[str, int]]) -> None:
    model: deque[int] = deque()
    queue: ChunkedQueue[int] = ChunkedQueue()
    taken: list[int] = []
    counter = 0
    for op, n in operations:
        if op in ("extend", "append"):
            items = list(range(counter, counter + n))
            counter += n
            if op == "append":
                queue.append(items[0])
            else:
                queue.extend_owned(items)
            model.extend(items)
        elif op == "take":
            got = queue.take(n)
            want = [model.popleft() for _ in range(min(n, len(model)))]
            assert got == want
            taken = got
        else:  # give back the head of the last take, as a rollback does
            back = taken[:n]
            queue.push_front(back)
            model.extendleft(reversed(back))
            taken = []
        assert len(queue) == len(model)
        assert list(queue) == list(model)
        if model:
            assert queue[0] == model[0] and queue[-1] == model[-1]


def test_a_take_that_lines_up_hands_over_the_committed_list() -> None:
    queue: ChunkedQueue[int] = ChunkedQueue()
    batch = [1, 2, 3]
    queue.extend_owned(batch)
    assert queue.take(3) is batch
    assert not queue


def test_empty_queue() -> None:
    queue: ChunkedQueue[int] = ChunkedQueue()
    assert queue.take(5) == [] and list(queue) == []
    with pytest.raises(IndexError):
        queue.popleft()
    with pytest.raises(IndexError):
        queue[0]
