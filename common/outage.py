"""Pure: a peer's failure in a few words, and when an outage begins, changes or ends.

A sink whose peer is down, or a receiver whose agent is down, fails every few seconds until
the peer is back. Logging every attempt (with a traceback) buries the one thing an operator
needs: *what* is wrong and *when it stopped being wrong*. :class:`Outage` answers "should this
be said?" for a series of attempts: the first failure, a failure for another reason, and the
first success after failures; everything in between is a repeat. Time is a parameter.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

__all__ = ["Outage", "Throttle", "error_text", "format_duration", "peer_problem"]

_UNREACHABLE = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def peer_problem(exc: BaseException) -> str:
    """What ``exc`` (raised connecting to or calling a peer) says about the peer, in words an
    operator reads at a glance: ``unreachable (connection refused)``, ``not answering
    (timed out)``, ``closed the connection``..."""
    if isinstance(exc, ConnectionRefusedError):
        return "unreachable (connection refused)"
    if type(exc).__name__ == "gaierror":  # socket.gaierror, without importing socket
        return f"unreachable (cannot resolve the host name: {getattr(exc, 'strerror', exc)})"
    code = getattr(exc, "errno", None)
    if code in _UNREACHABLE:
        return f"unreachable ({_UNREACHABLE[code]})"
    text = str(exc)
    # asyncio's connect to a name with several addresses (localhost: ::1 and 127.0.0.1)
    # raises a plain OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ...")
    if text.startswith("Multiple exceptions") and f"[Errno {errno.ECONNREFUSED}]" in text:
        return "unreachable (connection refused)"
    if isinstance(exc, TimeoutError) or "timed out" in text:
        return "not answering (timed out)"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)) or "closed by peer" in text:
        return "closed the connection"
    return text or type(exc).__name__


def error_text(exc: BaseException) -> str:
    """An exception as one line without Python's decoration: an OSError's text without its
    ``[Errno 98]`` prefix (but with the file it names), anything else as ``str``."""
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        return ": ".join([exc.strerror, *names])
    return str(exc) or type(exc).__name__


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``: how long an outage lasted."""
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{max(seconds, 0.0):.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class Outage:
    """One peer's (or component's) state across attempts: working, or failing since when and
    why. ``failed`` and ``recovered`` say whether the call is news worth a log line."""

    since: float | None = None  # when the current outage began (None: working)
    reason: str | None = None  # what the last failure said
    failures: int = 0  # failed attempts in the current outage

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, reason: str, now: float) -> bool:
        """Record a failed attempt; True if it is news: the first failure, or a new reason."""
        news = self.since is None or reason != self.reason
        if self.since is None:
            self.since = now
        self.reason = reason
        self.failures += 1
        return news

    def recovered(self, now: float) -> float | None:
        """Record a successful attempt; the outage's length if one just ended, else None."""
        if self.since is None:
            return None
        lasted = now - self.since
        self.since, self.reason, self.failures = None, None, 0
        return lasted

    def for_how_long(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since


@dataclass
class Throttle:
    """At most one report every ``interval`` seconds about a recurring event (a channel
    refusing batches under back-pressure); ``due`` counts the occurrences held back."""

    interval: float = 30.0
    last: float | None = None
    held: int = 0

    def due(self, now: float) -> int | None:
        """Record an occurrence; None: stay quiet; else report now (the number of
        occurrences held back since the last report)."""
        if self.last is not None and now - self.last < self.interval:
            self.held += 1
            return None
        held, self.held, self.last = self.held, 0, now
        return held
