"""What a listener lets one peer, and all of them together, cost: pure accounting.

Every server socket (the avro source, the consumer's push receiver, the SparkSink, the
metrics endpoint, and any later listener) takes a :class:`ListenerLimits`. The I/O layer
(:mod:`protocol.transport`) asks the objects here what to do and does it; nothing here knows
about sockets or clocks (times are plain numbers passed in), so all of it is unit-tested
without a network.

- :class:`ListenerLimits`: the limits and their config keys.
- :class:`InputBudget`: buffered input across the connections of a listener; when it is
  exceeded the connection holding the most is the one closed.
- :class:`ConnectionGuard`: the connection cap of each listener, and a process-wide ceiling
  that keeps a reserve of file descriptors for the process's own work (files, outgoing
  connections, /metrics).
- :class:`Activity`: the idle and incomplete-frame timeouts of one connection.
- :class:`LogLimiter`: one log line per reason per interval, with a count of the rest.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

MiB = 1024 * 1024


@dataclass(frozen=True)
class ListenerLimits:
    """One listener's limits. Durations are seconds (0 disables a timeout); the config keys
    (``KEYS``) are milliseconds, as Flume's own timeouts are."""

    max_connections: int = 1000
    max_frame_bytes: int = 64 * MiB  # one Netty data pack (the whole call) on the wire
    max_events_per_call: int = 100_000
    max_call_bytes: int = 128 * MiB  # a call's decoded size (see protocol.eventarray)
    max_buffered_bytes: int = 256 * MiB  # input held by all connections together
    max_pending_calls: int = 4  # calls read ahead of their replies, per connection
    max_protocol_bytes: int = 64 * 1024  # a client protocol's text in a handshake
    protocol_cache_size: int = 16  # client protocols remembered, besides the server's own
    idle_timeout: float = 600.0  # nothing received or sent, no call running
    frame_timeout: float = 60.0  # a frame begun and not finished
    # accepted but not yet processed, for a listener that answers before the work is done
    # (the consumer's push receiver); past it, calls wait (the agent's channel plays this
    # part for the avro source)
    max_backlog_bytes: int = 256 * MiB

    # config key -> (field, scale from the key's unit to the field's)
    KEYS: ClassVar[dict[str, tuple[str, float]]] = {
        "max-connections": ("max_connections", 1),
        "max-frame-bytes": ("max_frame_bytes", 1),
        "max-events-per-call": ("max_events_per_call", 1),
        "max-call-bytes": ("max_call_bytes", 1),
        "max-buffered-bytes": ("max_buffered_bytes", 1),
        "max-pending-calls": ("max_pending_calls", 1),
        "max-protocol-bytes": ("max_protocol_bytes", 1),
        "protocol-cache-size": ("protocol_cache_size", 1),
        "idle-timeout": ("idle_timeout", 0.001),
        "frame-timeout": ("frame_timeout", 0.001),
        "max-backlog-bytes": ("max_backlog_bytes", 1),
    }
    AGENT_KEYS: ClassVar[tuple[str, ...]] = tuple(k for k in KEYS if k != "max-backlog-bytes")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and not f.name.endswith("timeout")):
                raise ValueError(f"{f.name} must be positive, got {value}")
        if self.max_buffered_bytes < self.max_frame_bytes:
            raise ValueError(f"max-buffered-bytes ({self.max_buffered_bytes}) must be at least "
                             f"max-frame-bytes ({self.max_frame_bytes})")

    def with_settings(self, settings: Mapping[str, Any]) -> ListenerLimits:
        """These limits with the config keys present in ``settings`` applied."""
        changes: dict[str, Any] = {}
        for key, (name, scale) in self.KEYS.items():
            value = settings.get(key)
            if value is not None:
                changes[name] = int(value) if scale == 1 else float(value) * scale
        return replace(self, **changes) if changes else self

    def key_of(self, name: str) -> str:
        return next(k for k, (n, _) in self.KEYS.items() if n == name)


class InputBudget:
    """Bytes of input held across connections, and who holds them.

    ``hold(holder, n)`` records what a holder holds now and returns the holders to close so
    the total fits again, largest first: a client building a huge frame (or many of them)
    is closed before small, well-behaved ones feel anything.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._held: dict[Hashable, int] = {}

    def hold(self, holder: Hashable, nbytes: int) -> list[Hashable]:
        self.used += nbytes - self._held.get(holder, 0)
        if nbytes:
            self._held[holder] = nbytes
        else:
            self._held.pop(holder, None)
        victims: list[Hashable] = []
        if self.used > self.limit:
            for h in sorted(self._held, key=self._held.__getitem__, reverse=True):
                victims.append(h)
                self.release(h)
                if self.used <= self.limit:
                    break
        return victims

    def release(self, holder: Hashable) -> None:
        self.used -= self._held.pop(holder, 0)

    def held(self, holder: Hashable) -> int:
        return self._held.get(holder, 0)


def default_fd_reserve(fd_limit: int) -> int:
    """Descriptors kept free for the process's own work: an eighth of the limit, at least
    160 (asyncio accepts up to 100 connections in one go before any is looked at), and
    never more than half."""
    return min(max(160, fd_limit // 8), fd_limit // 2)


class ConnectionGuard:
    """Admission of new connections, shared by every listener of a process.

    A listener admits at most its own ``max_connections``. Listeners that are ``shared``
    (every data listener) together stay under ``fd_limit - fd_reserve``; a small,
    unshared listener such as /metrics draws from the reserve instead, so a flood of idle
    clients on a data port never takes the operator's view away.
    """

    def __init__(self, fd_limit: int, fd_reserve: int | None = None) -> None:
        self.fd_limit = fd_limit
        self.fd_reserve = default_fd_reserve(fd_limit) if fd_reserve is None else fd_reserve
        self.shared_open = 0
        self._open: dict[str, int] = {}

    @property
    def shared_capacity(self) -> int:
        return max(self.fd_limit - self.fd_reserve, 0)

    def open_on(self, listener: str) -> int:
        return self._open.get(listener, 0)

    def admit(self, listener: str, max_connections: int, shared: bool = True) -> str | None:
        """None if the connection may go on (and is now counted), else why it may not."""
        n = self._open.get(listener, 0)
        if n >= max_connections:
            return f"{n} connections open, the limit (max-connections)"
        if shared and self.shared_open >= self.shared_capacity:
            return (f"{self.shared_open} connections open on this process's listeners: the "
                    f"rest of its {self.fd_limit} file descriptors are kept for its own work")
        self._open[listener] = n + 1
        if shared:
            self.shared_open += 1
        return None

    def release(self, listener: str, shared: bool = True) -> None:
        n = self._open.get(listener, 0)
        if n <= 0:
            return
        self._open[listener] = n - 1
        if shared:
            self.shared_open -= 1


class Activity:
    """When one connection last made progress, and since when it holds an unfinished frame.

    ``busy``: calls being handled (a long poll is not idleness).
    """

    __slots__ = ("busy", "frame_since", "last")

    def __init__(self, now: float) -> None:
        self.last = now
        self.frame_since: float | None = None
        self.busy = 0

    def progressed(self, now: float) -> None:
        """Bytes came in, or a reply went out."""
        self.last = now

    def input_state(self, now: float, incomplete: bool, completed: bool) -> None:
        """After reading: ``incomplete`` if a frame is begun and waits for more bytes,
        ``completed`` if at least one frame was finished by this read."""
        if not incomplete:
            self.frame_since = None
        elif completed or self.frame_since is None:
            self.frame_since = now

    def expired(self, now: float, limits: ListenerLimits) -> tuple[str, str] | None:
        """(config key, reason) when a timeout has passed, else None."""
        ft = limits.frame_timeout
        if ft and self.frame_since is not None and now - self.frame_since > ft:
            return "frame-timeout", f"a frame unfinished for more than {ft:g} s (frame-timeout)"
        it = limits.idle_timeout
        if it and not self.busy and now - self.last > it:
            return "idle-timeout", f"idle for more than {it:g} s (idle-timeout)"
        return None


class LogLimiter:
    """At most one line per key per ``interval`` seconds; the lines held back are counted
    and reported with the next one, so a flood of bad clients costs a few lines a minute."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """None: stay quiet. Otherwise log now, mentioning the returned number of lines
        suppressed since the last one."""
        if now < self._next.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._next[key] = now + self.interval
        return self._held.pop(key, 0)

    @staticmethod
    def suffix(suppressed: int) -> str:
        return f" ({suppressed} more like it not logged)" if suppressed else ""
