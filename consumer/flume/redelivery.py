"""Pull + checkpoint exactly-once: which events an agent may serve again, and when to drop them.

PURE: no I/O, no asyncio; times (seconds, any monotonic origin) are passed in.

A SparkSink serves a batch from an open channel transaction; the receiver counts it and acks
it only once the checkpoint covering it is durable. Until the agent *proves* the ack (its
reply says the take was committed), the batch can come back under a new sequence number: the
sink rolls it back (the consumer vanished, the ack never arrived, it timed out) or a restarted
agent replays it from its file channel. Events carry no id, so they are recognised by content
digest (headers and body), wherever they come in a redelivery.

Two kinds of groups of digests:

* **counted**: events a checkpoint counted whose batch is not proven gone. Awaited until
  they come back, or for ``horizon`` seconds of their agent being reachable (time it is down
  or the consumer is stopped does not count), which outlasts every way an agent serves a
  batch again: the sink's transaction timeout (60 s by default), its close grace (5 s), and
  a restart's replay (served first).
* **in flight**: events of a batch stored but not yet checkpointed. Only once the receiver
  lost a connection to that agent (``arm``: it may have rolled the batch back, or restarted)
  can they come again, as a duplicate of what is about to be counted; before that, an
  identical event is a new one and is counted.

A token records what its batch dropped: ``absorbed`` (counted events) and ``duplicates``
(in-flight ones). ``snapshot()``, in every checkpoint, holds the counted groups plus what
unsettled tokens absorbed (their batch may not be in that checkpoint, and would then come
back whole); on resume, ``restore_unacknowledged`` adds the batches the checkpoint covered
whose ack is not known to be proven.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REDELIVERY_HORIZON", "PullToken", "RedeliveryLedger", "digest"]

REDELIVERY_HORIZON = 120.0  # seconds of the agent being reachable
_FORMAT = 1


@dataclass(frozen=True)
class PullToken:
    """One polled batch: where to ack it, and what it held (for recognising it again).

    ``digests``: the events stored (counted with the batch); ``absorbed`` and
    ``duplicates``: events of the batch dropped as already counted, or as duplicates of a
    batch in flight; ``ack_epoch``: which connection of the ack client was open when the
    batch was polled (None: none was), for sinks that give no ack proof."""

    address: str
    sequence: str
    digests: tuple[bytes, ...] = ()
    absorbed: tuple[bytes, ...] = ()
    duplicates: tuple[bytes, ...] = ()
    ack_epoch: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.address, self.sequence)


def digest(event: dict[str, Any]) -> bytes:
    """8 bytes of BLAKE2b over the sorted headers and the body."""
    h = hashlib.blake2b(digest_size=8)
    for k in sorted(event["headers"]):
        h.update(k.encode())
        h.update(b"\0")
        h.update(event["headers"][k].encode())
        h.update(b"\0")
    h.update(event["body"])
    return h.digest()


@dataclass
class _Group:
    address: str
    digests: collections.Counter[bytes]
    remaining: float  # seconds of the address being reachable left
    token: tuple[str, str] | None = None  # in flight: the unsettled batch these events are
    armed: bool = True  # matched against incoming events (in-flight groups: once armed)


@dataclass
class Absorbed:
    """What ``absorb`` made of a batch: the indexes of the events to count, the digests of
    the ones dropped (already counted, or duplicates of a batch in flight), and every
    event's digest."""

    kept: list[int]
    absorbed: tuple[bytes, ...]
    duplicates: tuple[bytes, ...]
    digests: list[bytes] = field(default_factory=list)


class RedeliveryLedger:
    """Thread-safe: ``snapshot`` runs in the batch thread, the rest on the receiver's loop."""

    def __init__(self, horizon: float = REDELIVERY_HORIZON) -> None:
        self.horizon = horizon
        self._lock = threading.Lock()
        self._groups: list[_Group] = []
        self._armed: collections.Counter[bytes] = collections.Counter()  # over armed groups
        self._outstanding: dict[tuple[str, str], PullToken] = {}
        self._up: dict[str, bool] = {}
        self._ticked: float | None = None

    # ---- queries -----------------------------------------------------------------------
    @property
    def expecting(self) -> int:
        """How many counted events may still come back."""
        with self._lock:
            return sum(g.digests.total() for g in self._groups if g.token is None)

    # ---- time and reachability ---------------------------------------------------------
    def reachable(self, address: str, up: bool, now: float) -> None:
        """The receiver reached (or failed to reach) ``address``: its counted groups' clock
        runs only while it is up."""
        with self._lock:
            self._tick(now)
            self._up[address] = up

    def arm(self, address: str) -> None:
        """A connection to ``address`` was lost or replaced: batches it served that are not
        settled may be served again (rolled back, or replayed by a restarted agent)."""
        with self._lock:
            for g in self._groups:
                if not g.armed and g.address == address:
                    g.armed = True
                    self._armed.update(g.digests)

    def expire(self, now: float) -> list[tuple[str, int]]:
        """Give up on counted groups whose horizon has passed: ``(address, events)`` each."""
        with self._lock:
            self._tick(now)
            gone = [g for g in self._groups if g.token is None and g.remaining <= 0]
            for g in gone:
                self._drop_group(g)
            return [(g.address, g.digests.total()) for g in gone]

    def _tick(self, now: float) -> None:
        if self._ticked is not None and now > self._ticked:
            elapsed = now - self._ticked
            for g in self._groups:
                if g.token is None and self._up.get(g.address, False):
                    g.remaining -= elapsed
        if self._ticked is None or now > self._ticked:
            self._ticked = now

    # ---- the flow of a batch -----------------------------------------------------------
    def expect(self, address: str, digests: Iterable[bytes]) -> None:
        """These counted events may be served again: drop them when they come."""
        with self._lock:
            self._add(address, digests, self.horizon)

    def _add(self, address: str, digests: Iterable[bytes], remaining: float,
             token: tuple[str, str] | None = None) -> None:
        counts = collections.Counter(digests)
        if counts:
            armed = token is None
            self._groups.append(_Group(address, counts, remaining, token, armed))
            if armed:
                self._armed.update(counts)

    def _drop_group(self, g: _Group) -> None:
        self._groups.remove(g)
        if g.armed:
            self._armed.subtract(g.digests)
            self._armed = +self._armed

    def absorb(self, events: list[dict[str, Any]]) -> Absorbed:
        """Split a polled batch into events to count and events to drop."""
        digests = [digest(e) for e in events]
        with self._lock:
            if not self._armed:
                return Absorbed(list(range(len(events))), (), (), digests)
            kept: list[int] = []
            absorbed: list[bytes] = []
            duplicates: list[bytes] = []
            for i, d in enumerate(digests):
                group = self._take(d) if self._armed[d] > 0 else None
                if group is None:
                    kept.append(i)
                elif group.token is None:
                    absorbed.append(d)
                else:
                    duplicates.append(d)
            return Absorbed(kept, tuple(absorbed), tuple(duplicates), digests)

    def _take(self, d: bytes) -> _Group | None:
        """Take one ``d`` from an armed group, counted groups first."""
        for in_flight in (False, True):
            for g in self._groups:
                if g.armed and (g.token is not None) == in_flight and g.digests[d] > 0:
                    g.digests[d] -= 1
                    self._armed[d] -= 1
                    if self._armed[d] == 0:
                        del self._armed[d]
                    if g.digests.total() == 0:
                        self._groups.remove(g)
                    return g
        return None

    def stored(self, token: PullToken) -> None:
        """``token``'s batch is on its way to a checkpoint."""
        with self._lock:
            self._outstanding[token.key] = token
            self._add(token.address, token.digests, self.horizon, token.key)

    def settled(self, token: PullToken, proven: bool) -> None:
        """The batch was counted and checkpointed; ``proven``: the agent proved the ack.
        Otherwise whatever of it was not seen again since may still come back."""
        with self._lock:
            left = self._settle(token)
            if not proven:
                self._add(token.address, list(left.elements()) + list(token.absorbed)
                          + list(token.duplicates), self.horizon)

    def failed(self, token: PullToken) -> None:
        """The batch was not counted (nacked): it comes back, with what it absorbed."""
        with self._lock:
            self._settle(token)
            self._add(token.address, token.absorbed, self.horizon)

    def _settle(self, token: PullToken) -> collections.Counter[bytes]:
        """Forget ``token``'s in-flight group; returns what was left of it."""
        self._outstanding.pop(token.key, None)
        for g in self._groups:
            if g.token == token.key:
                self._drop_group(g)
                return g.digests
        return collections.Counter()

    # ---- checkpoints -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            groups = [(g.address, dict(g.digests), g.remaining)
                      for g in self._groups if g.token is None]
            groups += [(t.address, dict(collections.Counter(t.absorbed)), self.horizon)
                       for t in self._outstanding.values() if t.absorbed]
            return {"format": _FORMAT, "groups": groups}

    def restore(self, data: dict[str, Any]) -> None:
        """Put a snapshot back (before any batch flows)."""
        if data.get("format") != _FORMAT:
            return
        with self._lock:
            for address, counts, remaining in data.get("groups", []):
                self._add(address, collections.Counter(counts).elements(), remaining)

    def restore_unacknowledged(self, tokens: Iterable[PullToken],
                               proven: set[tuple[str, str]]) -> None:
        """The batches the newest checkpoint covered: expect those whose ack is not known to
        be proven; for the proven ones, the events they absorbed cannot come back either."""
        with self._lock:
            for t in tokens:
                if t.key not in proven:
                    self._add(t.address, t.digests, self.horizon)
                    continue
                for d in getattr(t, "absorbed", ()):
                    if self._armed[d] > 0:
                        self._take(d)
