"""Pure: counting the stop requests a process receives as signals.

The first SIGINT/SIGTERM asks for a graceful stop, a second one for an immediate one. But one
request can arrive as two signals: ``timeout(1)`` sends SIGTERM to its child and then to the
child's process group, so the child gets it twice within microseconds, and a terminal's Ctrl-C
reaches every process of the foreground group. So the same signal again within
``SAME_REQUEST_S`` is the same request, not a second one; a person who means it sends it again.
"""

from __future__ import annotations

__all__ = ["SAME_REQUEST_S", "StopRequests"]

SAME_REQUEST_S = 0.5


class StopRequests:
    def __init__(self, window: float = SAME_REQUEST_S) -> None:
        self.window = window
        self.count = 0
        self._last: tuple[int, float] | None = None

    def receive(self, signum: int, now: float) -> int | None:
        """The request number this signal makes (1: the first...), or None when it repeats
        the previous request (the same signal within ``window`` seconds)."""
        last = self._last
        self._last = (signum, now)
        if last is not None and last[0] == signum and now - last[1] < self.window:
            return None
        self.count += 1
        return self.count
