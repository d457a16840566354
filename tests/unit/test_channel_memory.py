"""Transaction state machine and memory channel semantics."""

from __future__ import annotations

import pytest

from agent.channels import MemoryChannel, TransactionState
from agent.channels.transaction import IllegalTransactionState
from agent.components import ChannelException, ChannelFullException
from protocol.event import Event


def ev(i: int | str, size: int | None = None) -> Event:
    body = str(i).encode() if size is None else b"x" * size
    return Event({}, body)


def put_commit(channel: MemoryChannel, events: list[Event]) -> None:
    tx = channel.transaction()
    tx.begin()
    for e in events:
        tx.put(e)
    tx.commit()
    tx.close()


def take_n(channel: MemoryChannel, n: int) -> list[bytes]:
    tx = channel.transaction()
    tx.begin()
    out = []
    for _ in range(n):
        e = tx.take()
        if e is None:
            break
        out.append(e.body)
    tx.commit()
    tx.close()
    return out


# -- state machine ------------------------------------------------------------------------

def test_legal_lifecycle_walks_every_state():
    tx = MemoryChannel("c").transaction()
    assert tx.state is TransactionState.NEW
    tx.begin()
    assert tx.state is TransactionState.OPEN
    tx.commit()
    assert tx.state is TransactionState.COMPLETED
    tx.close()
    assert tx.state is TransactionState.CLOSED


def test_new_transaction_may_close_without_begin():
    tx = MemoryChannel("c").transaction()
    tx.close()
    assert tx.state is TransactionState.CLOSED


@pytest.mark.parametrize("call", ["put", "take", "commit", "rollback"])
def test_operations_before_begin_are_illegal(call):
    tx = MemoryChannel("c").transaction()
    args = (ev(1),) if call == "put" else ()
    expected = rf"{call}\(\) called when transaction is NEW"
    with pytest.raises(IllegalTransactionState, match=expected):
        getattr(tx, call)(*args)


@pytest.mark.parametrize("finish", ["commit", "rollback"])
@pytest.mark.parametrize("call", ["begin", "put", "take", "commit", "rollback"])
def test_operations_after_completion_are_illegal(finish, call):
    tx = MemoryChannel("c").transaction()
    tx.begin()
    getattr(tx, finish)()
    args = (ev(1),) if call == "put" else ()
    with pytest.raises(IllegalTransactionState, match="COMPLETED"):
        getattr(tx, call)(*args)


@pytest.mark.parametrize("call", ["begin", "put", "take", "commit", "rollback", "close"])
def test_operations_after_close_are_illegal(call):
    tx = MemoryChannel("c").transaction()
    tx.begin()
    tx.commit()
    tx.close()
    args = (ev(1),) if call == "put" else ()
    with pytest.raises(IllegalTransactionState, match="CLOSED"):
        getattr(tx, call)(*args)


def test_close_while_open_is_illegal_and_begin_twice_too():
    tx = MemoryChannel("c").transaction()
    tx.begin()
    with pytest.raises(IllegalTransactionState, match="commit or rollback first"):
        tx.close()
    with pytest.raises(IllegalTransactionState, match="begin"):
        tx.begin()
    assert tx.state is TransactionState.OPEN


def test_batch_fast_paths_check_state_too():
    tx = MemoryChannel("c").transaction()
    with pytest.raises(IllegalTransactionState):
        tx.put_all([ev(1)])
    with pytest.raises(IllegalTransactionState):
        tx.take_batch(1)


# -- queue semantics ------------------------------------------------------------------------

def test_puts_are_invisible_until_commit_and_fifo_after():
    ch = MemoryChannel("c")
    tx = ch.transaction()
    tx.begin()
    tx.put(ev("a"))
    tx.put(ev("b"))
    assert ch.size() == 0
    assert take_n(ch, 1) == []
    tx.commit()
    tx.close()
    assert ch.size() == 2
    assert take_n(ch, 5) == [b"a", b"b"]


def test_rollback_of_puts_discards_them():
    ch = MemoryChannel("c")
    tx = ch.transaction()
    tx.begin()
    tx.put(ev(1))
    tx.rollback()
    tx.close()
    assert ch.size() == 0


def test_rollback_returns_taken_events_to_the_head_in_order():
    ch = MemoryChannel("c")
    put_commit(ch, [ev(i) for i in range(5)])
    tx = ch.transaction()
    tx.begin()
    assert [tx.take().body for _ in range(3)] == [b"0", b"1", b"2"]
    assert ch.size() == 2
    tx.rollback()
    tx.close()
    assert take_n(ch, 10) == [b"0", b"1", b"2", b"3", b"4"]


def test_empty_take_returns_none_at_once():
    ch = MemoryChannel("c")
    tx = ch.transaction()
    tx.begin()
    assert tx.take() is None
    tx.commit()


def test_full_channel_rejects_the_whole_put_transaction():
    ch = MemoryChannel("c", capacity=5, transaction_capacity=5)
    put_commit(ch, [ev(i) for i in range(3)])
    tx = ch.transaction()
    tx.begin()
    for i in range(3):
        tx.put(ev(10 + i))
    with pytest.raises(ChannelFullException, match="no room to commit 3 events"):
        tx.commit()
    tx.rollback()
    tx.close()
    assert ch.size() == 3
    assert take_n(ch, 10) == [b"0", b"1", b"2"]


def test_uncommitted_takes_keep_their_slots():
    ch = MemoryChannel("c", capacity=2, transaction_capacity=2)
    put_commit(ch, [ev(1), ev(2)])
    taker = ch.transaction()
    taker.begin()
    taker.take()
    with pytest.raises(ChannelFullException):
        put_commit(ch, [ev(3)])
    taker.commit()
    taker.close()
    put_commit(ch, [ev(3)])
    assert take_n(ch, 2) == [b"2", b"3"]


def test_net_change_counts_when_a_transaction_puts_and_takes():
    ch = MemoryChannel("c", capacity=2, transaction_capacity=2)
    put_commit(ch, [ev(1), ev(2)])
    tx = ch.transaction()
    tx.begin()
    tx.take()
    tx.put(ev(3))
    tx.commit()  # net zero: fits although the channel is full
    tx.close()
    assert take_n(ch, 2) == [b"2", b"3"]


def test_more_puts_than_transaction_capacity_raise():
    ch = MemoryChannel("c", capacity=10, transaction_capacity=2)
    tx = ch.transaction()
    tx.begin()
    tx.put(ev(1))
    tx.put(ev(2))
    with pytest.raises(ChannelException, match="put list of transaction capacity 2"):
        tx.put(ev(3))
    with pytest.raises(ChannelException, match="transaction capacity 2"):
        tx.put_all([ev(4)])


def test_more_takes_than_transaction_capacity_raise():
    ch = MemoryChannel("c", capacity=10, transaction_capacity=2)
    put_commit(ch, [ev(1), ev(2)])
    put_commit(ch, [ev(3)])
    tx = ch.transaction()
    tx.begin()
    tx.take()
    tx.take()
    with pytest.raises(ChannelException, match="take list of transaction capacity 2"):
        tx.take()
    with pytest.raises(ChannelException, match="cannot take 1 events"):
        tx.take_batch(1)


def test_put_all_and_take_batch_match_single_operations():
    ch = MemoryChannel("c", capacity=100, transaction_capacity=50)
    tx = ch.transaction()
    tx.begin()
    tx.put_all([ev(i) for i in range(10)])
    tx.commit()
    tx.close()
    tx = ch.transaction()
    tx.begin()
    assert [e.body for e in tx.take_batch(4)] == [b"0", b"1", b"2", b"3"]
    assert len(tx.take_batch(20)) == 6
    assert tx.take_batch(5) == []
    tx.rollback()
    tx.close()
    assert ch.size() == 10


def test_transaction_capacity_above_capacity_is_refused():
    with pytest.raises(ValueError, match="cannot be higher than capacity"):
        MemoryChannel("c", capacity=10, transaction_capacity=11)


# -- byte capacity ----------------------------------------------------------------------------

def test_byte_capacity_counts_bodies_in_100_byte_slots():
    # 1000 bytes with 20% buffer -> 800 bytes -> 8 slots
    ch = MemoryChannel("c", capacity=100, byte_capacity=1000, byte_capacity_buffer_percentage=20)
    assert ch.byte_slots == 8
    put_commit(ch, [ev(0, size=101), ev(0, size=200)])  # 2 + 2 slots
    put_commit(ch, [ev(0, size=0)] * 4)  # empty bodies still take one slot each
    with pytest.raises(ChannelException, match="byte capacity"):
        put_commit(ch, [ev(0, size=1)])
    assert ch.size() == 6
    take_n(ch, 1)  # frees 2 slots
    put_commit(ch, [ev(0, size=150)])
    assert ch.size() == 6


def test_byte_capacity_failure_is_not_a_full_channel_and_leaves_no_trace():
    ch = MemoryChannel("c", capacity=100, byte_capacity=100, byte_capacity_buffer_percentage=0)
    tx = ch.transaction()
    tx.begin()
    tx.put(ev(0, size=101))
    with pytest.raises(ChannelException) as info:
        tx.commit()
    assert not isinstance(info.value, ChannelFullException)
    tx.rollback()
    tx.close()
    assert ch.bytes_used == 0 and ch.size() == 0


def test_unset_or_tiny_byte_capacity_is_unlimited():
    assert MemoryChannel("c").byte_slots >= 2**62
    assert MemoryChannel("c", byte_capacity=50).byte_slots >= 2**62


# -- listeners and counters ---------------------------------------------------------------------

def test_listener_runs_after_commits_that_add_events_only():
    ch = MemoryChannel("c")
    calls = []
    ch.add_listener(lambda: calls.append(ch.size()))
    put_commit(ch, [ev(1)])
    assert calls == [1]
    take_n(ch, 1)
    assert calls == [1]


def test_counters_follow_flume_names():
    ch = MemoryChannel("c", capacity=10, transaction_capacity=5)
    put_commit(ch, [ev(i) for i in range(4)])
    tx = ch.transaction()
    tx.begin()
    tx.put(ev(9))
    tx.rollback()
    tx.close()
    take_n(ch, 5)  # 4 successes + 1 empty attempt
    c = ch.counter.attributes()
    assert c["EventPutAttemptCount"] == "5"
    assert c["EventPutSuccessCount"] == "4"
    assert c["EventTakeAttemptCount"] == "5"
    assert c["EventTakeSuccessCount"] == "4"
    assert c["ChannelCapacity"] == "10"
    assert c["ChannelSize"] == "0"
    put_commit(ch, [ev(1)])
    assert ch.counter.attributes()["ChannelFillPercentage"] == "10.0"
