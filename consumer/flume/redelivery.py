"""Pure logic of pull + checkpoint exactly-once: which events an agent may serve again, and
when to drop them. No I/O, asyncio or threading: times (seconds, any monotonic origin) are
passed in, and so is the lock that guards the ledger when threads share it.

A SparkSink serves a batch from an open channel transaction; the receiver counts it and acks
it only once the checkpoint covering it is durable. Until the agent *proves* the ack (its
reply says the take was committed), the events can come back under a new sequence number:
the sink rolls the batch back (the consumer vanished, the ack never arrived, it timed out) or
a restarted agent replays it from its file channel. Events carry no id, so they are
recognised by content digest (headers and body), wherever they come in a redelivery.

For every event that may come back the ledger knows two batches (tokens):

* its **keeper**, the batch that counts it: ``None`` once that batch is settled (a durable
  checkpoint counted it and its ack went out);
* its **holder**, the latest batch it came in, whose transaction the agent may still hold
  open: ``None`` once that batch is settled without proof (then nothing holds it: it comes
  back or is gone, and is awaited for ``horizon`` seconds of its agent being reachable,
  which outlasts the sink's transaction timeout (60 s by default), its close grace (5 s)
  and a restart's replay (served first)).

An incoming event matching one the ledger awaits is dropped, and the batch it came in
becomes its holder. Events whose holder is unsettled are awaited only once a connection to
that agent broke (``arm``): before that, an identical event is a new one and is counted.
A settled holder with proof means the event is gone for good.

``snapshot()`` (in every checkpoint) lists every such event with its keeper and holder;
``resume()`` keeps, for a consumer restarted from that checkpoint, those the checkpoint
counted (keeper settled, or covered by it) that are not proven gone, all awaited again.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from common.event_digest import event_digest

__all__ = ["REDELIVERY_HORIZON", "PullToken", "RedeliveryLedger", "digest"]

REDELIVERY_HORIZON = 120.0  # seconds of the agent being reachable
_FORMAT = 2

Key = tuple[str, str]  # (address, sequence number): one polled batch


@dataclass(frozen=True)
class PullToken:
    """One polled batch: where to ack it, and what it held.

    ``digests``: the events it counts; ``absorbed`` and ``duplicates``: events it dropped,
    counted before or by a batch still in flight (``duplicate_of``); ``ack_epoch``: which
    connection of the ack client was open when it was polled (None: none was), for sinks
    that give no ack proof."""

    address: str
    sequence: str
    digests: tuple[bytes, ...] = ()
    absorbed: tuple[bytes, ...] = ()
    duplicates: tuple[bytes, ...] = ()
    duplicate_of: tuple[Key, ...] = ()
    ack_epoch: int | None = None

    @property
    def key(self) -> Key:
        return (self.address, self.sequence)


def digest(event: dict[str, Any]) -> bytes:
    """8 bytes of the shared content digest: the ledger keeps many, and it is durable."""
    return event_digest(event["headers"], event["body"], 8)


@dataclass
class _Group:
    """Events with the same keeper and holder (see the module docstring)."""

    address: str
    keeper: Key | None
    holder: Key | None
    digests: collections.Counter[bytes]
    remaining: float  # seconds of the address being reachable left (holder None only)
    armed: bool  # matched against incoming events

    @property
    def awaited(self) -> bool:
        """Counted by a checkpoint, held by no unsettled batch: on the horizon clock."""
        return self.keeper is None and self.holder is None


class RedeliveryLedger:
    """Every method holds ``lock`` (a ``threading.Lock`` when ``snapshot`` runs in the batch
    thread and the rest on the receiver's loop; none needed by a single thread)."""

    def __init__(self, horizon: float = REDELIVERY_HORIZON,
                 lock: contextlib.AbstractContextManager[Any] | None = None) -> None:
        self.horizon = horizon
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._groups: list[_Group] = []
        self._armed: collections.Counter[bytes] = collections.Counter()  # over armed groups
        self._outstanding: set[Key] = set()
        self._up: dict[str, bool] = {}
        self._ticked: float | None = None
        self._restored: dict[str, Any] | None = None

    # ---- queries -----------------------------------------------------------------------
    @property
    def expecting(self) -> int:
        """How many counted events may come back that no unsettled batch holds."""
        with self._lock:
            return sum(g.digests.total() for g in self._groups if g.awaited)

    # ---- time and reachability ---------------------------------------------------------
    def reachable(self, address: str, up: bool, now: float) -> None:
        """The receiver reached (or failed to reach) ``address``: the horizon clock of the
        events it may serve again runs only while it is up."""
        with self._lock:
            self._tick(now)
            self._up[address] = up

    def arm(self, address: str) -> None:
        """A connection to ``address`` was lost or replaced: the batches it served that are
        not settled may come again (rolled back, or replayed by a restarted agent)."""
        with self._lock:
            for g in self._groups:
                if not g.armed and g.address == address:
                    self._arm(g)

    def _arm(self, g: _Group) -> None:
        g.armed = True
        self._armed.update(g.digests)

    def expire(self, now: float) -> list[tuple[str, int]]:
        """Give up on awaited events whose horizon passed: ``(address, events)`` per group."""
        with self._lock:
            self._tick(now)
            gone = [g for g in self._groups if g.awaited and g.remaining <= 0]
            for g in gone:
                self._drop(g)
            return [(g.address, g.digests.total()) for g in gone]

    def _tick(self, now: float) -> None:
        if self._ticked is not None and now > self._ticked:
            elapsed = now - self._ticked
            for g in self._groups:
                if g.awaited and self._up.get(g.address, False):
                    g.remaining -= elapsed
        if self._ticked is None or now > self._ticked:
            self._ticked = now

    # ---- groups --------------------------------------------------------------------------
    def _add(self, address: str, digests: Iterable[bytes], keeper: Key | None,
             holder: Key | None, remaining: float | None = None, armed: bool = True) -> None:
        counts = collections.Counter(digests)
        if not counts:
            return
        if keeper is not None or holder is not None:  # merge: only awaited groups have clocks
            for g in self._groups:
                if (g.keeper, g.holder, g.address) == (keeper, holder, address):
                    g.digests.update(counts)
                    if g.armed:
                        self._armed.update(counts)
                    elif armed:
                        self._arm(g)
                    return
        g = _Group(address, keeper, holder, counts,
                   self.horizon if remaining is None else remaining, False)
        self._groups.append(g)
        if armed:
            self._arm(g)

    def _drop(self, g: _Group) -> None:
        self._groups.remove(g)
        if g.armed:
            self._armed.subtract(g.digests)
            self._armed = +self._armed

    def _take(self, d: bytes) -> _Group | None:
        """Take one ``d`` from an armed group (awaited ones first)."""
        for awaited in (True, False):
            for g in self._groups:
                if g.armed and g.awaited == awaited and g.digests[d] > 0:
                    g.digests[d] -= 1
                    self._armed[d] -= 1
                    if self._armed[d] == 0:
                        del self._armed[d]
                    if g.digests.total() == 0:
                        self._groups.remove(g)
                    return g
        return None

    # ---- the flow of a batch -----------------------------------------------------------
    def expect(self, address: str, digests: Iterable[bytes]) -> None:
        """These counted events may be served again: drop them when they come."""
        with self._lock:
            self._add(address, digests, None, None)

    def admit(self, address: str, sequence: str, events: list[dict[str, Any]],
              ack_epoch: int | None = None) -> tuple[list[dict[str, Any]], PullToken]:
        """A polled batch: the events to count, and its token (the batch is then in flight
        until ``settled`` or ``failed``)."""
        key = (address, sequence)
        digests = [digest(e) for e in events]
        kept: list[int] = []
        absorbed: list[bytes] = []
        duplicates: list[bytes] = []
        duplicate_of: list[Key] = []
        with self._lock:
            self._outstanding.add(key)
            for i, d in enumerate(digests):
                g = self._take(d) if self._armed[d] > 0 else None
                if g is None:
                    kept.append(i)
                    continue
                if g.keeper is None:
                    absorbed.append(d)
                else:
                    duplicates.append(d)
                    duplicate_of.append(g.keeper)
                # this batch holds it now; it may come back only if a connection breaks
                self._add(address, [d], g.keeper, key, armed=False)
            self._add(address, [digests[i] for i in kept], key, key, armed=False)
        token = PullToken(address, sequence, tuple(digests[i] for i in kept), tuple(absorbed),
                          tuple(duplicates), tuple(duplicate_of), ack_epoch)
        if len(kept) < len(events):
            events = [events[i] for i in kept]
        return events, token

    def settled(self, token: PullToken, proven: bool) -> None:
        """``token``'s batch was counted and checkpointed; ``proven``: the agent proved the
        ack (the events it holds are gone). Tokens settle in the order they were admitted."""
        key = token.key
        with self._lock:
            self._outstanding.discard(key)
            for g in list(self._groups):
                keeper = None if g.keeper == key else g.keeper  # counted now
                if g.holder == key:
                    self._drop(g)
                    if not proven:
                        self._add(g.address, g.digests.elements(), keeper, None)
                elif g.keeper == key:  # a later batch holds them
                    self._drop(g)
                    self._add(g.address, g.digests.elements(), None, g.holder, armed=g.armed)

    def failed(self, token: PullToken) -> None:
        """``token``'s batch was not counted (nacked; the context stops): what it kept is not
        awaited; what it held for others comes back with the nack."""
        key = token.key
        with self._lock:
            self._outstanding.discard(key)
            for g in list(self._groups):
                if g.keeper == key or g.holder == key:
                    self._drop(g)
                if g.holder == key and g.keeper != key:
                    self._add(g.address, g.digests.elements(), g.keeper, None)

    # ---- checkpoints -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"format": _FORMAT, "groups": [
                (g.address, g.keeper, g.holder, dict(g.digests), g.remaining)
                for g in self._groups]}

    def restore(self, data: dict[str, Any]) -> None:
        """Keep a snapshot until ``resume`` knows what its checkpoint covered."""
        self._restored = data

    def resume(self, covered: Iterable[PullToken], proven: set[Key]) -> None:
        """Restarting from the checkpoint that covered ``covered`` (the batches after the
        previous one), with ``proven`` the acks known proven: await every event it counted
        that may come back."""
        covered = list(covered)
        keys = {t.key for t in covered}
        data, self._restored = self._restored, None
        with self._lock:
            if data is None or data.get("format") != _FORMAT:  # none, or an older format
                for t in covered:
                    if t.key not in proven:
                        self._add(t.address, t.digests, None, None)
                return
            for address, keeper, holder, counts, remaining in data["groups"]:
                if keeper is not None and keeper not in keys:
                    continue  # its batch is not in the checkpoint: it will be counted anew
                if holder is not None and holder in proven:
                    continue  # gone for good
                self._add(address, collections.Counter(counts).elements(), None, None,
                          remaining if keeper is None and holder is None else None)
