"""Events share header maps copy-on-write: one dict per distinct map, not per event (a full
memory channel of header-less lines is a third smaller), and an edit stays in its event."""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.channel_processor import DefaultChannelProcessor
from agent.channels.memory import MemoryChannel
from agent.selectors import ReplicatingSelector
from common import records
from protocol.codec import encode_event_array
from protocol.event import EMPTY_HEADERS, Event, SharedHeaders, events_with
from protocol.eventarray import DecodeBudget, decode_events
from tests.unit.test_interceptors import make


def test_an_event_without_headers_holds_the_shared_empty_map() -> None:
    a, b = Event({}, b"1"), Event(body=b"2")
    assert a.header_map is EMPTY_HEADERS and b.header_map is EMPTY_HEADERS
    a.headers["k"] = "v"  # the first edit gives the event a dict of its own
    assert a.headers == {"k": "v"} and type(a.headers) is dict
    assert b.headers == {} and EMPTY_HEADERS == {}


def test_an_edit_through_headers_never_reaches_the_other_events() -> None:
    events = events_with({"file": "/spool/a.log"}, [b"1", b"2", b"3"])
    assert events[0].header_map is events[2].header_map  # one map for the batch
    events[1].headers["file"] = "changed"
    events[2].headers.pop("file")
    assert [e.headers for e in events] == [{"file": "/spool/a.log"}, {"file": "changed"}, {}]


def test_a_dict_given_by_the_caller_stays_the_events_own() -> None:
    mine = {"k": "v"}
    event = Event(mine, b"")
    assert event.headers is mine  # not copied: the caller handed it over, as before


@pytest.mark.parametrize("edit", [
    lambda h: h.__setitem__("k", "x"), lambda h: h.__delitem__("k"), lambda h: h.update(k="x"),
    lambda h: h.pop("k"), lambda h: h.popitem(), lambda h: h.clear(),
    lambda h: h.setdefault("n", "x"), lambda h: h.__ior__({"n": "x"}),
])
def test_a_shared_map_refuses_edits(edit) -> None:  # type: ignore[no-untyped-def]
    shared = SharedHeaders({"k": "v"})
    with pytest.raises(TypeError, match="read-only"):
        edit(shared)
    assert shared == {"k": "v"}


def test_events_compare_by_value_whatever_holds_their_headers() -> None:
    assert Event(SharedHeaders({"k": "v"}), b"x") == Event({"k": "v"}, b"x")
    assert Event({}, b"x") != Event({"k": "v"}, b"x")
    assert Event({}, b"x") != Event({}, b"y")
    assert repr(Event(SharedHeaders({"k": "v"}), b"x")) == "Event(headers={'k': 'v'}, body=b'x')"
    with pytest.raises(TypeError):
        hash(Event())


def test_pickle_and_copy_keep_the_sharing_and_its_protection() -> None:
    """The file channel pickles its records: a replayed batch shares one map again."""
    events = events_with({"k": "v"}, [b"1", b"2"])
    back = pickle.loads(records.encode(events)[records.HEADER.size:])
    assert back == events
    assert back[0].header_map is back[1].header_map
    assert type(back[0].header_map) is SharedHeaders
    back[0].headers["k"] = "x"
    assert back[1].headers == {"k": "v"}
    clone = copy.deepcopy(events[0])
    clone.headers["k"] = "y"
    assert events[0].headers == {"k": "v"}


def _decoded(batch: list[Event]) -> list[Event]:
    data = encode_event_array(batch)
    events, end = decode_events(data, 0, DecodeBudget(10**6, 10**9), as_events=True)
    assert end == len(data)
    return events


def test_consecutive_events_with_the_same_header_bytes_share_one_map() -> None:
    batch = ([Event({"timestamp": "1", "host": "a"}, b"x")] * 3
             + [Event({"timestamp": "2", "host": "a"}, b"y")] * 2 + [Event({}, b"z")])
    events = _decoded(batch)
    assert events == batch
    assert events[0].header_map is events[1].header_map is events[2].header_map
    assert events[3].header_map is events[4].header_map
    assert events[2].header_map is not events[3].header_map
    assert events[5].header_map is EMPTY_HEADERS


def test_a_map_shared_across_an_event_without_headers_goes_to_the_right_events() -> None:
    """A map, then no headers, then the map again: the header-less event keeps none (the
    sharing is given to the map's first event, not to whichever came last)."""
    batch = [Event({"k": "v"}, b"1"), Event({}, b"2"), Event({"k": "v"}, b"3")]
    events = _decoded(batch)
    assert events == batch
    assert events[0].header_map is events[2].header_map
    assert events[1].header_map is EMPTY_HEADERS


def test_an_interceptor_edits_one_decoded_event_only() -> None:
    """A static interceptor on an avro source: its header lands on the events it is given,
    and a decoded batch sharing one map keeps every other event as sent."""
    events = _decoded([Event({"host": "a"}, b"1"), Event({"host": "a"}, b"2")])
    channel = MemoryChannel("c", capacity=10, transaction_capacity=10)
    interceptor = make("static", key="env", value="prod")
    DefaultChannelProcessor(ReplicatingSelector({"c": channel}), [interceptor]).process_event_batch(
        events[:1])
    assert channel.queue[0].headers == {"host": "a", "env": "prod"}
    assert events[1].headers == {"host": "a"}


def test_record_dicts_never_share_a_mutable_map() -> None:
    """The consumer's receivers get record dicts: each its own plain dict, as before."""
    data = encode_event_array([Event({"k": "v"}, b"1")] * 3)
    records_, _ = decode_events(data, 0, DecodeBudget(10**6, 10**9))
    records_[0]["headers"]["k"] = "x"
    assert [type(r["headers"]) for r in records_] == [dict] * 3
    assert [r["headers"] for r in records_] == [{"k": "x"}, {"k": "v"}, {"k": "v"}]


def test_sharing_does_not_change_what_a_call_is_charged() -> None:
    data = encode_event_array([Event({"k": "v" * 50}, b"x" * 100)] * 20)
    as_dicts, as_events = DecodeBudget(10**6, 10**9), DecodeBudget(10**6, 10**9)
    decode_events(data, 0, as_dicts)
    decode_events(data, 0, as_events, as_events=True)
    assert as_dicts.used_bytes == as_events.used_bytes > 20 * 150


texts = st.text(max_size=6)


@given(st.lists(st.tuples(st.dictionaries(texts, texts, max_size=3), st.binary(max_size=80)),
                max_size=30))
def test_events_decode_to_what_was_sent(pairs: list[tuple[dict[str, str], bytes]]) -> None:
    batch = [Event(h, b) for h, b in pairs]
    data = encode_event_array(batch)
    events, _ = decode_events(data, 0, DecodeBudget(10**6, 10**9), as_events=True)
    records_, _ = decode_events(data, 0, DecodeBudget(10**6, 10**9))
    assert events == batch
    assert [Event(r["headers"], r["body"]) for r in records_] == batch
