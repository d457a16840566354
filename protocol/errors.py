"""Protocol errors, split by who is at fault (the h11 convention)."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error the wire layer raises."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol forbids (a bug or misuse on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot accept: close that connection, keep serving others."""


class LimitExceeded(RemoteProtocolError):
    """The peer went past one of a listener's limits (``limit`` names its config key)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit
