"""The pull receiver's redelivery ledger (pure): what may come back, and for how long."""

from __future__ import annotations

from typing import Any

from consumer.flume.redelivery import PullToken, RedeliveryLedger, digest


def ev(i: int) -> dict[str, Any]:
    return {"headers": {"h": "1"}, "body": b"e%d" % i}


def ds(*ids: int) -> tuple[bytes, ...]:
    return tuple(digest(ev(i)) for i in ids)


def kept(ledger: RedeliveryLedger, ids: list[int]) -> list[int]:
    split = ledger.absorb([ev(i) for i in ids])
    return [ids[k] for k in split.kept]


def test_counted_events_are_dropped_wherever_they_come_and_once_each() -> None:
    """Agents roll batches back newest-first or interleaved, pollers share them, and a
    consumer may come back through another address: order and route do not matter."""
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0, 1, 2, 2))
    assert kept(ledger, [3, 4, 0, 2]) == [3, 4]
    assert kept(ledger, [2, 1, 9]) == [9]  # from another address too
    assert kept(ledger, [2, 0, 1]) == [2, 0, 1]  # each only as often as counted
    assert ledger.expecting == 0


def test_a_batch_in_flight_is_watched_only_once_a_connection_to_its_agent_broke() -> None:
    """Identical events in consecutive batches are new events; after a broken connection
    the agent may serve the uncounted batch again, and that copy is a duplicate."""
    ledger = RedeliveryLedger()
    first = PullToken("h:1", "s1", ds(1, 2))
    ledger.stored(first)
    assert kept(ledger, [1, 5]) == [1, 5]
    ledger.arm("other:2")
    assert kept(ledger, [2]) == [2]
    ledger.arm("h:1")
    split = ledger.absorb([ev(1), ev(2), ev(7)])
    assert [split.digests[k] for k in split.kept] == list(ds(7))
    assert split.duplicates == ds(1, 2) and split.absorbed == ()
    ledger.settled(first, proven=True)
    assert kept(ledger, [1, 2]) == [1, 2]


def test_an_unproven_ack_expects_whatever_of_the_batch_was_not_seen_again() -> None:
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0))
    first = PullToken("h:1", "s1", ds(1, 2, 3))
    ledger.stored(first)
    ledger.arm("h:1")
    split = ledger.absorb([ev(0), ev(2), ev(8)])  # 0 counted before, 2 in flight
    second = PullToken("h:1", "s2", ds(8), split.absorbed, split.duplicates)
    assert (second.absorbed, second.duplicates) == (ds(0), ds(2))
    ledger.stored(second)
    ledger.settled(first, proven=False)  # an agent restart answered "unknown"
    assert ledger.expecting == 2  # 1 and 3: 2 already came again (in the second batch)
    ledger.settled(second, proven=False)
    assert ledger.expecting == 5  # and the second batch whole: 8, 0 and 2
    assert kept(ledger, [0, 1, 2, 3, 8, 8]) == [8]


def test_snapshots_keep_counted_events_and_what_unsettled_batches_absorbed() -> None:
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0, 1))
    ledger.stored(PullToken("h:1", "s1", ds(5)))  # in flight: not in the snapshot
    split = ledger.absorb([ev(0), ev(6)])
    late = PullToken("h:1", "s2", ds(6), split.absorbed)
    ledger.stored(late)
    snap = ledger.snapshot()

    fresh = RedeliveryLedger()
    fresh.restore(snap)
    assert fresh.expecting == 2  # 1 still awaited; 0 because its batch may come back whole
    fresh.restore_unacknowledged([PullToken("h:1", "s1", ds(5))], proven=set())
    assert kept(fresh, [0, 1, 5, 5, 6]) == [5, 6]

    proven = RedeliveryLedger()
    proven.restore(snap)
    proven.restore_unacknowledged([late], proven={late.key})  # its ack was proven
    assert kept(proven, [0, 1]) == [0]


def test_counted_events_are_awaited_for_the_horizon_of_their_agent_being_reachable() -> None:
    ledger = RedeliveryLedger(horizon=10)
    ledger.expect("h:1", ds(1))
    ledger.expect("h:2", ds(2))
    ledger.reachable("h:1", False, now=0)
    ledger.reachable("h:2", True, now=0)
    assert ledger.expire(now=60) == [("h:2", 1)]  # h:1 was down all along
    ledger.reachable("h:1", True, now=60)
    assert ledger.expire(now=69) == []
    assert ledger.expire(now=70.5) == [("h:1", 1)]
    assert kept(ledger, [1, 2]) == [1, 2]


def test_a_failed_batch_comes_back_with_what_it_absorbed() -> None:
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0))
    split = ledger.absorb([ev(0), ev(1)])
    token = PullToken("h:1", "s1", ds(1), split.absorbed)
    ledger.stored(token)
    ledger.failed(token)
    assert kept(ledger, [1, 0]) == [1]
