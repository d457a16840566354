"""The stream graph: the nodes a context built, which of them are inputs and outputs, the
batch duration and the clock batch times live on.

A :class:`StreamGraph` is owned by its ``StreamingContext``; DStream constructors add
themselves to it, and the scheduler (:mod:`consumer.engine.scheduler`) runs it. The engine
knows nodes only through the :class:`Node` protocol, never the DStream classes, so it does not
import the API layer (``consumer.streaming``) that sits on top of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from common.clock import Clock
from consumer.engine.errors import CheckpointMismatch, IllegalStateException
from consumer.engine.rdd import RDD
from consumer.engine.receiver import Block, BlockBuffer, ReceiverContext

__all__ = ["Node", "ReceiverNode", "StreamGraph"]


class Node(Protocol):
    """What the engine needs from a graph node (a DStream). The names are underscored so they
    never clash with PySpark's DStream methods; they are the engine's contract all the same."""

    @property
    def _id(self) -> int: ...  # creation order, so a re-run setup rebuilds the same ids

    @property
    def _parents(self) -> Sequence[Node]: ...

    @property
    def _is_input(self) -> bool: ...

    @property
    def _is_output(self) -> bool: ...

    @property
    def _slide_ms(self) -> int: ...

    @property
    def _must_checkpoint(self) -> bool: ...  # needs a checkpoint directory (Spark's rule)

    @property
    def _checkpoint_ms(self) -> int | None: ...  # dstream.checkpoint(interval), if set

    @property
    def _generated(self) -> dict[int, RDD]: ...  # remembered RDDs by batch time

    def _initialize(self, zero_ms: int) -> None: ...

    def _step(self, t_ms: int, parent_rdds: list[RDD]) -> RDD | None: ...

    def _has_state(self) -> bool: ...

    def _snapshot(self) -> Any: ...

    def _restore(self, data: Any) -> None: ...

    def _describe(self) -> str: ...  # one fingerprint line: type, parents, slide


@runtime_checkable
class ReceiverNode(Node, Protocol):
    """An input node fed by a receiver (see :mod:`consumer.engine.receiver`)."""

    receiver: Any
    buffer: BlockBuffer
    receiver_context: ReceiverContext

    def _feed(self, block: Block) -> None: ...


class StreamGraph:
    """Nodes in creation (= topological) order; inputs and outputs in registration order."""

    def __init__(self, batch_ms: int, clock: Clock) -> None:
        self.batch_ms = batch_ms
        self.clock = clock
        self.remember_ms = 0
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self.outputs: list[Node] = []
        self._closed_by = ""

    def add(self, node: Node) -> int:
        """Register a node; returns its id. Refused once the context started or stopped."""
        if self._closed_by:
            raise IllegalStateException(
                "Adding new inputs, transformations, and output operations after "
                f"{self._closed_by} a context is not supported")
        self.nodes.append(node)
        return len(self.nodes) - 1

    def add_input(self, node: Node) -> None:
        self.inputs.append(node)

    def add_output(self, node: Node) -> None:
        self.outputs.append(node)

    def close(self, by: str) -> None:
        """No more nodes: ``by`` is "starting" or "stopping" (for the error message)."""
        self._closed_by = by

    def receiver_inputs(self) -> list[ReceiverNode]:
        return [n for n in self.inputs if isinstance(n, ReceiverNode)]

    def fingerprint(self) -> list[str]:
        """The graph's shape, stored in checkpoints: restoring state into another graph would
        silently mis-assign it."""
        return [n._describe() for n in self.nodes]

    def check_fingerprint(self, recorded: Any, source: str) -> None:
        if recorded != self.fingerprint():
            raise CheckpointMismatch(
                f"{source}: checkpoint was written by a different DStream graph; "
                "StreamingContext.getOrCreate re-runs the setup function, which must build "
                "the same graph (or delete the checkpoint directory)")
