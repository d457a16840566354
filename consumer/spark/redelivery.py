"""Events counted but not known to be acked: recognise them when the agent serves them again.

Pure. A SparkSink serves a rolled-back batch again under a new sequence number, so the only
way to tell a redelivered event from a new one is its content (headers and body). Each slot
whose ack is not *proven* (see ``consumer.spark``'s docstring) adds a group of digests; a
later slot drops events matching a pending digest (oldest group first) and consumes it.

A group stops being expected once it cannot come back: rolled-back events return to the head
of the agent's channel, so when a slot that started after the group's deadline
(handout + redeliveryTimeout > the sink's own timeout) pulled events and none matched the
group, the agent has moved past them. An agent that is down pulls nothing, so its groups
wait for it; a restarted agent replays its file channel first, so they still match.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.event_digest import event_digest

__all__ = ["DIGEST_BYTES", "Pending", "event_digest"]

DIGEST_BYTES = 16  # event_digest's default size



@dataclass
class _Group:
    since: float  # wall-clock seconds the agent handed the batch out
    digests: Counter[bytes]
    matched: bool = field(default=False, compare=False)


class Pending:
    """The digests still expected back from one agent, grouped by the batch they came in."""

    def __init__(self, groups: Iterable[_Group] = ()) -> None:
        self._groups = [g for g in groups if g.digests.total() > 0]
        self._left = sum(g.digests.total() for g in self._groups)

    def __len__(self) -> int:
        return self._left

    def expect(self, since: float, digests: Iterable[bytes]) -> None:
        """These counted events may be served again (their ack is not proven)."""
        group = _Group(since, Counter(digests))
        if group.digests:
            self._groups.append(group)
            self._left += group.digests.total()

    def take(self, digest: bytes) -> bool:
        """True (and one expectation consumed) when ``digest`` was expected back."""
        for g in self._groups:
            if g.digests[digest] > 0:
                g.digests[digest] -= 1
                g.matched = True
                self._left -= 1
                return True
        return False

    def expire(self, slot_start: float, window: float, pulled_any: bool) -> int:
        """End of a slot: forget groups that are used up, and groups past their deadline that
        this slot (which pulled events) never matched. Returns how many digests were dropped."""
        keep, dropped = [], 0
        for g in self._groups:
            g.digests = +g.digests
            left = g.digests.total()
            if left and not (pulled_any and not g.matched and g.since + window < slot_start):
                keep.append(g)
            else:
                dropped += left
            g.matched = False
        self._groups = keep
        self._left -= dropped
        return dropped

    def to_json(self) -> list[dict[str, Any]]:
        return [{"since": g.since,
                 "digests": base64.b64encode(b"".join(g.digests.elements())).decode("ascii")}
                for g in self._groups]

    @classmethod
    def from_json(cls, data: Iterable[Mapping[str, Any]]) -> Pending:
        groups = []
        for item in data:
            raw = base64.b64decode(item["digests"])
            if len(raw) % DIGEST_BYTES:
                raise ValueError("pending digests are not a whole number of digests")
            groups.append(_Group(float(item["since"]), Counter(
                raw[i:i + DIGEST_BYTES] for i in range(0, len(raw), DIGEST_BYTES))))
        return cls(groups)
