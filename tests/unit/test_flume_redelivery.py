"""The pull receiver's redelivery ledger (pure): what may come back, and for how long."""

from __future__ import annotations

from typing import Any

from consumer.flume.redelivery import RedeliveryLedger, digest


def ev(i: int) -> dict[str, Any]:
    return {"headers": {"h": "1"}, "body": b"e%d" % i}


def ds(*ids: int) -> tuple[bytes, ...]:
    return tuple(digest(ev(i)) for i in ids)


def kept(ledger: RedeliveryLedger, ids: list[int], seq: str = "probe") -> list[int]:
    """What of a polled batch of ``ids`` is counted (the probe batch then settles)."""
    events, token = ledger.admit("probe:0", seq, [ev(i) for i in ids])
    ledger.settled(token, proven=True)
    return [int(e["body"][1:]) for e in events]


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
    _, first = ledger.admit("h:1", "s1", [ev(1), ev(2)])
    assert kept(ledger, [1, 5]) == [1, 5]
    ledger.arm("other:2")
    assert kept(ledger, [2]) == [2]
    ledger.arm("h:1")
    events, again = ledger.admit("h:1", "s2", [ev(1), ev(2), ev(7)])
    assert events == [ev(7)]
    assert again.duplicates == ds(1, 2) and again.duplicate_of == (first.key,) * 2
    ledger.settled(first, proven=True)
    assert kept(ledger, [1, 2]) == [1, 2]


def test_an_unproven_ack_expects_whatever_of_the_batch_was_not_seen_again() -> None:
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0))
    _, first = ledger.admit("h:1", "s1", [ev(1), ev(2), ev(3)])
    ledger.arm("h:1")
    _, second = ledger.admit("h:1", "s2", [ev(0), ev(2), ev(8)])  # 0 counted, 2 in flight
    assert (second.digests, second.absorbed, second.duplicates) == (ds(8), ds(0), ds(2))
    ledger.settled(first, proven=False)  # an agent restart answered "unknown"
    assert ledger.expecting == 2  # 1 and 3: 2 already came again (in the second batch)
    ledger.settled(second, proven=False)
    assert ledger.expecting == 5  # and the second batch whole: 8, 0 and 2
    assert kept(ledger, [0, 1, 2, 3, 8, 8]) == [8]


def test_a_resumed_consumer_awaits_what_its_checkpoint_counted_and_is_not_proven_gone(
        ) -> None:
    ledger = RedeliveryLedger()
    ledger.expect("h:1", ds(0, 1))
    _, first = ledger.admit("h:1", "s1", [ev(5), ev(4)])
    _, late = ledger.admit("h:1", "s2", [ev(0), ev(6)])  # 0 counted before: s2 holds it
    assert late.absorbed == ds(0)
    snap = ledger.snapshot()

    resumed = RedeliveryLedger()
    resumed.restore(snap)
    resumed.resume([first], proven=set())  # the checkpoint covered s1, not s2
    assert resumed.expecting == 4  # 0, 1, and s1's 4 and 5; s2's 6 is counted anew
    assert kept(resumed, [0, 1, 4, 5, 5, 6]) == [5, 6]

    proven = RedeliveryLedger()
    proven.restore(snap)
    proven.resume([first, late], proven={first.key, late.key})  # both acks proven
    assert kept(proven, [0, 1, 4, 5, 6]) == [0, 4, 5, 6]

    older = RedeliveryLedger()  # a checkpoint written before snapshots of this format
    older.restore({"groups": []})
    older.resume([first], proven=set())
    assert kept(older, [4, 5, 4]) == [4]


def test_a_repeat_of_a_batch_settled_since_is_awaited_after_a_crash() -> None:
    """Found by the chaos suite: a restarted agent serves a batch again while the first copy
    waits for its checkpoint; the first copy is counted and settles (its ack unknown); the
    consumer then dies before the copy's batch is checkpointed. The copy comes back once
    more and must still be dropped."""
    ledger = RedeliveryLedger()
    _, first = ledger.admit("h:1", "s1", [ev(1), ev(2)])
    ledger.arm("h:1")
    _, copy = ledger.admit("h:1", "s2", [ev(1), ev(2)])
    assert copy.duplicates == ds(1, 2)
    ledger.settled(first, proven=False)
    assert ledger.expecting == 0  # the copy holds them
    resumed = RedeliveryLedger()
    resumed.restore(ledger.snapshot())  # the copy's batch is not in this checkpoint
    resumed.resume([], proven=set())
    assert kept(resumed, [2, 1, 3]) == [3]


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
    _, token = ledger.admit("h:1", "s1", [ev(0), ev(1)])
    ledger.failed(token)
    assert kept(ledger, [1, 0]) == [1]
