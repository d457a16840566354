"""PURE: the agent's periodic progress line, from two snapshots of its counters.

Every interval (30 s by default) the runtime logs, at INFO, how many events per second each
source accepted and each sink delivered, and how full each channel is::

    agent a1: sources r1 1520.3 events/s; sinks k1 1498.0 events/s; channels c1 12.5% full
    (125/1000)

Flume logs nothing of the sort; without it a healthy agent and a stuck one look the same in
the log. An idle agent stays quiet: a line is written while anything moves or a channel holds
events, and once more when it all stops (showing the zeros).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ProgressLine"]

Snapshot = Mapping[str, Mapping[str, str]]


def _count(attributes: Mapping[str, str], key: str) -> int:
    try:
        return int(attributes.get(key, "0"))
    except ValueError:
        return 0


class ProgressLine:
    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._last: tuple[float, Snapshot] | None = None
        self._was_busy = False

    def next(self, now_s: float, snapshot: Snapshot) -> str | None:
        """The line for the time since the previous call (None the first time, or when the
        agent was idle then and still is)."""
        last, self._last = self._last, (now_s, snapshot)
        if last is None:
            return None
        before_s, before = last
        elapsed = max(now_s - before_s, 1e-9)
        parts: dict[str, list[str]] = {"SOURCE": [], "SINK": [], "CHANNEL": []}
        busy = False
        for group, attributes in sorted(snapshot.items()):
            type_, name = group.split(".", 1)
            key = {"SOURCE": "EventAcceptedCount", "SINK": "EventDrainSuccessCount"}.get(type_)
            if key is not None:
                moved = _count(attributes, key) - _count(before.get(group, {}), key)
                busy = busy or moved > 0
                parts[type_].append(f"{name} {max(moved, 0) / elapsed:.1f} events/s")
            elif type_ == "CHANNEL":
                size, capacity = _count(attributes, "ChannelSize"), _count(attributes,
                                                                          "ChannelCapacity")
                busy = busy or size > 0
                fill = size / capacity * 100 if capacity else 0.0
                parts[type_].append(f"{name} {fill:.1f}% full ({size}/{capacity})")
        was_busy, self._was_busy = self._was_busy, busy
        if not busy and not was_busy:
            return None
        words = {"SOURCE": "sources", "SINK": "sinks", "CHANNEL": "channels"}
        return f"agent {self.agent}: " + "; ".join(
            f"{words[t]} {', '.join(p)}" for t, p in parts.items() if p)
