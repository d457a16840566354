"""Selectors and the channel processor (required vs optional channels)."""

from __future__ import annotations

import logging

import pytest

from agent.channel_processor import DefaultChannelProcessor
from agent.channels import MemoryChannel
from agent.components import ChannelException, ChannelFullException
from agent.selectors import (
    MultiplexingSelector,
    ReplicatingSelector,
    SelectorConfigError,
)
from protocol.event import Event
from tests.agent_helpers import component


def channels(*names: str, capacity: int = 100) -> dict[str, MemoryChannel]:
    return {n: MemoryChannel(n, capacity=capacity, transaction_capacity=capacity) for n in names}


def drain(ch: MemoryChannel) -> list[bytes]:
    tx = ch.transaction()
    tx.begin()
    out = [e.body for e in tx.take_batch(ch.size())]
    tx.commit()
    tx.close()
    return out


def test_replicating_all_required_except_optional():
    chs = channels("a", "b", "c")
    sel = component("selector", "replicating", {"optional": ["c"]}, None, chs)
    required, optional = sel.select(Event())
    assert [c.name for c in required] == ["a", "b"]
    assert [c.name for c in optional] == ["c"]
    every = component("selector", "replicating", {}, None, chs)
    assert [c.name for c in every.select(Event())[0]] == ["a", "b", "c"]


def test_replicating_rejects_unknown_optional_channel():
    with pytest.raises(SelectorConfigError, match="zz"):
        ReplicatingSelector(channels("a"), ["zz"])


def test_multiplexing_routes_by_header_with_default_and_optional():
    chs = channels("a", "b", "c", "d")
    sel = component("selector", "multiplexing", {
        "header": "state",
        "mapping.CA": "a",
        "mapping.AZ": "b c",
        "optional.CA": "b a",
        "optional.NY": "d",
        "default": "d",
    }, None, chs)

    def names(headers):
        req, opt = sel.select(Event(headers))
        return [c.name for c in req], [c.name for c in opt]

    assert names({"state": "CA"}) == (["a"], ["b"])  # a is required, so not optional too
    assert names({"state": "AZ"}) == (["b", "c"], [])
    assert names({"state": "NY"}) == (["d"], [])  # unmapped -> default, plus its optional
    assert names({"state": "  "}) == (["d"], [])
    assert names({}) == (["d"], [])


def test_multiplexing_default_header_and_bad_mappings():
    chs = channels("a")
    sel = MultiplexingSelector(chs, mapping={"x": ["a"]})
    assert sel.select(Event({"flume.selector.header": "x"}))[0] == [chs["a"]]
    assert sel.select(Event({"flume.selector.header": "y"}))[0] == []
    with pytest.raises(SelectorConfigError, match="lists no channel"):
        MultiplexingSelector(chs, mapping={"x": []})
    with pytest.raises(SelectorConfigError, match="does not list"):
        MultiplexingSelector(chs, default=["b"])


def test_processor_runs_interceptors_then_writes_each_required_channel():
    chs = channels("a", "b")
    static = component("interceptor", "static", {"key": "k", "value": "v"})
    cp = DefaultChannelProcessor(ReplicatingSelector(chs), [static])
    cp.process_event_batch([Event({}, b"1"), Event({}, b"2")])
    cp.process_event(Event({}, b"3"))
    for ch in chs.values():
        tx = ch.transaction()
        tx.begin()
        got = tx.take_batch(10)
        tx.commit()
        assert [(e.headers, e.body) for e in got] == [({"k": "v"}, b"1"), ({"k": "v"}, b"2"),
                                                      ({"k": "v"}, b"3")]


def test_processor_groups_a_multiplexed_batch_per_channel_in_order():
    chs = channels("a", "b")
    cp = DefaultChannelProcessor(MultiplexingSelector(chs, "h", {"1": ["a"], "2": ["b"]}))
    cp.process_event_batch([Event({"h": h}, h.encode() + bytes([i])) for i, h in
                            enumerate("1212")])
    assert drain(chs["a"]) == [b"1\x00", b"1\x02"]
    assert drain(chs["b"]) == [b"2\x01", b"2\x03"]


def test_required_failure_rolls_back_that_channel_and_raises():
    chs = channels("a", "b")
    chs["b"] = MemoryChannel("b", capacity=1, transaction_capacity=1)
    cp = DefaultChannelProcessor(ReplicatingSelector(chs))
    with pytest.raises(ChannelException):
        cp.process_event_batch([Event({}, b"1"), Event({}, b"2")])
    # channel a committed before b failed (Flume semantics: no cross-channel atomicity)
    assert drain(chs["a"]) == [b"1", b"2"]
    assert chs["b"].size() == 0


def test_optional_failures_are_only_logged(caplog):
    chs = channels("a")
    chs["opt"] = MemoryChannel("opt", capacity=1, transaction_capacity=1)
    cp = DefaultChannelProcessor(ReplicatingSelector(chs, ["opt"]))
    with caplog.at_level(logging.WARNING):
        cp.process_event_batch([Event({}, b"1"), Event({}, b"2")])
    assert drain(chs["a"]) == [b"1", b"2"]
    assert "optional channel opt refused 2 event(s)" in caplog.text


def test_full_required_channel_surfaces_channel_full():
    chs = {"a": MemoryChannel("a", capacity=1, transaction_capacity=1)}
    cp = DefaultChannelProcessor(ReplicatingSelector(chs))
    cp.process_event(Event({}, b"1"))
    with pytest.raises(ChannelFullException):
        cp.process_event(Event({}, b"2"))


def test_dropped_event_writes_nothing():
    chs = channels("a")
    drop = component("interceptor", "regex_filter", {"regex": "x", "excludeEvents": True})
    cp = DefaultChannelProcessor(ReplicatingSelector(chs), [drop])
    cp.process_event(Event({}, b"x"))
    cp.process_event_batch([Event({}, b"xx")])
    assert chs["a"].size() == 0
    assert chs["a"].counter.get("EventPutAttemptCount") == 0
