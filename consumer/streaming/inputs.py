"""Input DStreams: the graph's sources (``queueStream``, ``textFileStream``, receivers).

Each batch the scheduler feeds an input node what arrived for it (a receiver's block) and
asks for its RDD; inputs have no parents and slide with the batch interval.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consumer.engine.rdd import RDD
from consumer.engine.receiver import Block, BlockBuffer, ReceiverContext
from consumer.streaming.dstream import DStream

if TYPE_CHECKING:
    from consumer.streaming.context import StreamingContext

__all__ = ["InputDStream", "QueueInputDStream", "ReceiverInputDStream", "TextFileInputDStream"]


class InputDStream(DStream):
    _is_input = True

    def __init__(self, ssc: StreamingContext) -> None:
        super().__init__(ssc, [], ssc.graph.batch_ms)
        ssc.graph.add_input(self)


class QueueInputDStream(InputDStream):
    """``queueStream``: one queued RDD per batch (or all at once), else the default RDD.

    Spark refuses to checkpoint a graph with a queue stream; flumelet allows it (tests and
    demos want windows over queued data) but the queue itself is not checkpointed.
    """

    def __init__(self, ssc: StreamingContext, rdds: list[RDD], one_at_a_time: bool,
                 default: RDD | None) -> None:
        super().__init__(ssc)
        self._queue = list(rdds)
        self._one_at_a_time = one_at_a_time
        self._default = default

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        if self._queue:
            if self._one_at_a_time:
                return self._queue.pop(0)
            taken, self._queue = self._queue, []
            return self.ctx.union(taken)
        if self._default is not None:
            return self._default
        return self.ctx.emptyRDD()


class ReceiverInputDStream(InputDStream):
    """Records stored by a receiver (see :mod:`consumer.engine.receiver`) during each batch."""

    def __init__(self, ssc: StreamingContext, receiver: Any,
                 stop_context: Callable[[str, BaseException | None], None] | None = None,
                 ) -> None:
        super().__init__(ssc)
        self.receiver = receiver
        self.buffer = BlockBuffer()
        self.receiver_context = ReceiverContext(self._id, ssc.graph.batch_ms, ssc.graph.clock,
                                                self.buffer, stop_context)
        self._block: Block | None = None

    def _feed(self, block: Block) -> None:
        self._block = block

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        block, self._block = self._block, None
        if block is None or not block.records:
            return RDD([], self.ctx, 0)
        return RDD(block.records, self.ctx, 1)

    def _describe(self) -> str:
        return f"{super()._describe()}/{type(self.receiver).__name__}"


class TextFileInputDStream(InputDStream):
    """``textFileStream``: lines of files that appear in ``directory`` after the context starts
    (files already there are ignored, as Spark's ``newFilesOnly``; names starting with ``.`` or
    ``_`` are skipped like Hadoop's default filter). Move files in atomically, as Spark asks.
    The set of files already read is checkpointed."""

    def __init__(self, ssc: StreamingContext, directory: str) -> None:
        super().__init__(ssc)
        self._directory = directory
        self._seen: set[str] = set()
        self._restored = False

    def _list(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self._directory) if not n.startswith((".", "_")))
        except FileNotFoundError:
            return []

    def _initialize(self, zero_ms: int) -> None:
        super()._initialize(zero_ms)
        if not self._restored:
            self._seen = set(self._list())

    def _compute(self, t_ms: int, parent_rdds: list[RDD]) -> RDD:
        lines: list[str] = []
        for name in self._list():
            path = os.path.join(self._directory, name)
            if name in self._seen or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as fh:
                lines.extend(fh.read().splitlines())
            self._seen.add(name)
        return RDD(lines, self.ctx, 1 if lines else 0)

    def _has_state(self) -> bool:
        return True

    def _snapshot(self) -> Any:
        return sorted(self._seen)

    def _restore(self, data: Any) -> None:
        self._seen = set(data)
        self._restored = True
