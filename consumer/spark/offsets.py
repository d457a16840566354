"""Offsets of the ``flume`` source: how many slots each agent has been given. Pure.

A *slot* is one task's pull from one agent in one micro-batch. Slot numbers count up per
agent from 1, so the offset ``{"run": "r", "slots": {"h:4141": 7}}`` says "agent h:4141 has
had slots 1..7 in run r". A micro-batch from ``start`` to ``end`` reads, for each agent whose
count grew, the slots ``start+1 .. end`` (always one: ``advance`` adds one per ready agent).

The run id is minted the first time an agent is given a slot and then travels in every
offset Spark logs, so staged files of a query whose checkpoint was deleted (or of another
query pointed at the same staging directory by mistake) are never read as this run's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SlotRange", "SourceOffset", "advance", "plan"]


@dataclass(frozen=True)
class SourceOffset:
    run: str | None = None
    slots: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"slots": dict(self.slots)}
        if self.run is not None:
            data = {"run": self.run, **data}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SourceOffset:
        if not data:
            return cls()
        slots = data.get("slots", {})
        if not isinstance(slots, Mapping) or not all(
                isinstance(v, int) and v >= 0 for v in slots.values()):
            raise ValueError(f"not an offset of the flume source: {data!r}")
        run = data.get("run")
        return cls(str(run) if run is not None else None, {str(k): v for k, v in slots.items()})

    def slot(self, agent: str, run: str | None) -> int:
        """The agent's slot count, as seen from ``run`` (another run's counts are 0)."""
        return self.slots.get(agent, 0) if self.run == run else 0


def advance(start: SourceOffset, ready: Iterable[str], new_run: Callable[[], str]) -> SourceOffset:
    """One more slot for every ready agent; ``start`` itself when none is ready."""
    ready = [a for a in ready]
    if not ready:
        return start
    run = start.run or new_run()
    slots = dict(start.slots) if start.run == run else {}
    for agent in ready:
        slots[agent] = slots.get(agent, 0) + 1
    return SourceOffset(run, slots)


@dataclass(frozen=True)
class SlotRange:
    """What one Spark task reads: slots ``first..last`` of ``agent`` in ``run``, pulling at
    most ``limit`` events into each slot it has to fill."""

    run: str
    agent: str
    first: int
    last: int
    limit: int


def plan(start: SourceOffset, end: SourceOffset, max_events: int) -> list[SlotRange]:
    """One range per agent whose slot count grew from ``start`` to ``end``; the event budget
    is split evenly over them. Deterministic: a re-planned batch reads the same slots."""
    if end.run is None:
        return []
    grown = [(a, start.slot(a, end.run), n) for a, n in end.slots.items()
             if n > start.slot(a, end.run)]
    if not grown:
        return []
    limit = max(1, math.ceil(max_events / len(grown)))
    return [SlotRange(end.run, a, first + 1, last, limit) for a, first, last in grown]
