"""Flume's transaction life cycle as a checked state machine with template hooks.

NEW --begin--> OPEN --commit/rollback--> COMPLETED --close--> CLOSED (NEW may also close).
put/take are legal only while OPEN. Every other call raises ``IllegalTransactionState``
naming the call and the state, so misuse by a source or sink shows up at once instead of
silently corrupting the channel (Flume's ``BasicTransactionSemantics`` does the same with
``IllegalStateException``).
"""

from __future__ import annotations

import enum

from protocol.event import Event


class TransactionState(enum.Enum):
    NEW = "NEW"
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"


class IllegalTransactionState(RuntimeError):
    """A transaction method was called in a state that does not allow it (a caller bug)."""


_NEW = TransactionState.NEW
_OPEN = TransactionState.OPEN
_COMPLETED = TransactionState.COMPLETED
_CLOSED = TransactionState.CLOSED


class BasicTransaction:
    """Enforces the life cycle; subclasses implement the ``_do_*`` hooks."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = _NEW

    def _illegal(self, call: str, allowed: str) -> IllegalTransactionState:
        return IllegalTransactionState(
            f"{call}() called when transaction is {self.state.value}; it requires {allowed}"
        )

    def begin(self) -> None:
        if self.state is not _NEW:
            raise self._illegal("begin", "NEW (a transaction is used once)")
        self.state = _OPEN

    def put(self, event: Event) -> None:
        if self.state is not _OPEN:
            raise self._illegal("put", "OPEN")
        self._do_put(event)

    def take(self) -> Event | None:
        if self.state is not _OPEN:
            raise self._illegal("take", "OPEN")
        return self._do_take()

    def commit(self) -> None:
        if self.state is not _OPEN:
            raise self._illegal("commit", "OPEN")
        self._do_commit()
        self.state = _COMPLETED

    def rollback(self) -> None:
        if self.state is not _OPEN:
            raise self._illegal("rollback", "OPEN")
        self.state = _COMPLETED
        self._do_rollback()

    def close(self) -> None:
        if self.state is _OPEN:
            raise self._illegal("close", "NEW or COMPLETED (commit or rollback first)")
        if self.state is _CLOSED:
            raise self._illegal("close", "NEW or COMPLETED")
        self.state = _CLOSED

    # -- hooks ---------------------------------------------------------------------------
    def _do_put(self, event: Event) -> None:
        raise NotImplementedError

    def _do_take(self) -> Event | None:
        raise NotImplementedError

    def _do_commit(self) -> None:
        """Raise to refuse the commit; the transaction then stays OPEN for a rollback."""

    def _do_rollback(self) -> None:
        pass
