"""The engine's errors, named and worded as Spark's so ported jobs see familiar messages."""

from __future__ import annotations

__all__ = ["CheckpointMismatch", "IllegalArgumentException", "IllegalStateException"]


class IllegalArgumentException(ValueError):
    """Spark's ``require(...)`` failures; the message keeps Spark's ``requirement failed:``."""


class IllegalStateException(RuntimeError):
    """Spark's IllegalStateException (e.g. adding operations after start)."""


class CheckpointMismatch(ValueError):
    """A checkpoint that does not belong to the graph the setup function built."""
