"""The memory channel's queue: events kept in the batches they were committed in.

Sources commit batches and sinks take batches, mostly of the same size, so the queue holds
whole lists and hands them over without touching each event: a put of 1000 events appends
one list, a take of 1000 from a 1000-event chunk pops it. Only a take that does not line up
with the chunks slices one. On this machine kind that makes a put plus a take of 1000
events ~25 times cheaper than one ``deque`` operation per event (bench/agent_throughput.py
shows the whole path).

It behaves as the sequence of events it holds: ``len``, iteration in order, ``[0]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from itertools import chain, islice
from typing import Generic, TypeVar

T = TypeVar("T")


class ChunkedQueue(Generic[T]):
    __slots__ = ("_chunks", "_head", "_len")

    def __init__(self) -> None:
        self._chunks: deque[list[T]] = deque()
        self._head = 0  # events already taken from _chunks[0]
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[T]:
        chunks = iter(self._chunks)
        first = next(chunks, None)
        if first is None:
            return iter(())
        return chain(islice(first, self._head, None), *chunks)

    def __getitem__(self, index: int) -> T:
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("queue index out of range")
        index += self._head
        for chunk in self._chunks:
            if index < len(chunk):
                return chunk[index]
            index -= len(chunk)
        raise AssertionError("length out of step with the chunks")

    def append(self, item: T) -> None:
        self._chunks.append([item])
        self._len += 1

    def extend_owned(self, items: list[T]) -> None:
        """Add ``items`` at the tail, keeping the list itself: the caller must not use it
        again."""
        if items:
            self._chunks.append(items)
            self._len += len(items)

    def extend(self, items: list[T]) -> None:
        self.extend_owned(list(items))

    def push_front(self, items: list[T]) -> None:
        """Put ``items`` back at the head, in their order (a rolled-back take)."""
        if not items:
            return
        self._trim_head()
        self._chunks.appendleft(list(items))
        self._len += len(items)

    def take(self, n: int) -> list[T]:
        """Remove and return up to ``n`` events from the head."""
        if n <= 0 or not self._len:
            return []
        chunks = self._chunks
        first = chunks[0]
        head = self._head
        if head == 0 and len(first) == n:  # the common case: batches line up
            chunks.popleft()
            self._len -= n
            return first
        out: list[T] = []
        while n > 0 and chunks:
            first = chunks[0]
            available = len(first) - head
            if available <= n:
                out += first[head:] if head else first
                chunks.popleft()
                head = 0
                n -= available
            else:
                out += first[head : head + n]
                head += n
                n = 0
        self._head = head
        self._len -= len(out)
        return out

    def popleft(self) -> T:
        taken = self.take(1)
        if not taken:
            raise IndexError("pop from an empty queue")
        return taken[0]

    def clear(self) -> None:
        self._chunks.clear()
        self._head = 0
        self._len = 0

    def _trim_head(self) -> None:
        if self._head:
            self._chunks[0] = self._chunks[0][self._head :]
            self._head = 0
