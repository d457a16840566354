"""The flume source's pure parts: options, offsets, redelivery digests (no Spark needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer.spark.offsets import SlotRange, SourceOffset, advance, plan
from consumer.spark.options import OPTION_DOCS, parse_address, parse_options
from consumer.spark.redelivery import Pending, event_digest

# --- options -----------------------------------------------------------------------------


def test_options_defaults_and_case_insensitive_names() -> None:
    opts = parse_options({"ADDRESSES": " h1:1, [::1]:2 ", "stagingdir": "/s",
                          "maxbatchsize": "50", "BodyDecoder": "UTF8"})
    assert opts.addresses == ("h1:1", "[::1]:2")
    assert opts.staging_dir == "/s"
    assert opts.max_batch_size == 50
    assert opts.body_as_string
    assert (opts.poll_timeout, opts.sink_timeout, opts.redelivery_timeout) == (5.0, 60.0, 120.0)


def test_options_report_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as err:
        parse_options({"addresses": "nohost,h:0,h:1,h:1", "bodyDecoder": "latin-1",
                       "maxEventsPerTrigger": "many", "sinkTimeoutMs": "200000",
                       "colour": "blue"})
    text = str(err.value)
    for fragment in ("unknown option 'colour'", "'nohost' is not host:port",
                     "port must be 1..65535", "h:1 is listed twice", "stagingDir is required",
                     "bodyDecoder must be one of", "maxEventsPerTrigger must be a number",
                     "redeliveryTimeoutMs must be larger than sinkTimeoutMs"):
        assert fragment in text


def test_options_require_addresses() -> None:
    with pytest.raises(ValueError, match="addresses is required"):
        parse_options({"stagingDir": "/s"})


def test_parse_address() -> None:
    assert parse_address("[::1]:9999") == ("::1", 9999)
    assert parse_address("example.org:80") == ("example.org", 80)
    with pytest.raises(ValueError):
        parse_address(":80")


# --- offsets -----------------------------------------------------------------------------


def test_no_ready_agent_keeps_the_offset() -> None:
    start = SourceOffset()
    assert advance(start, [], lambda: "r") is start


def test_advance_mints_a_run_once_and_counts_slots_per_agent() -> None:
    first = advance(SourceOffset(), ["a:1"], lambda: "r1")
    assert first.to_json() == {"run": "r1", "slots": {"a:1": 1}}
    second = advance(first, ["b:2", "a:1"], lambda: "never")
    assert second.to_json() == {"run": "r1", "slots": {"a:1": 2, "b:2": 1}}


def test_offsets_round_trip_through_json() -> None:
    off = SourceOffset("r", {"a:1": 3})
    assert SourceOffset.from_json(json.loads(json.dumps(off.to_json()))) == off
    assert SourceOffset.from_json({"slots": {}}) == SourceOffset()
    with pytest.raises(ValueError):
        SourceOffset.from_json({"slots": {"a:1": -1}})


def test_plan_reads_the_new_slot_of_each_grown_agent_and_splits_the_budget() -> None:
    start = SourceOffset("r", {"a:1": 3, "b:2": 5})
    end = SourceOffset("r", {"a:1": 4, "b:2": 5, "c:3": 1})
    assert plan(start, end, 1001) == [SlotRange("r", "a:1", 4, 4, 501),
                                      SlotRange("r", "c:3", 1, 1, 501)]
    assert plan(end, end, 1000) == []


def test_plan_from_the_initial_offset_uses_the_end_run() -> None:
    """A re-run of batch 0 after a restart gets a fresh initialOffset (no run) as start."""
    end = SourceOffset("r", {"a:1": 1})
    assert plan(SourceOffset(), end, 10) == [SlotRange("r", "a:1", 1, 1, 10)]
    # a start from another run counts as nothing read in this run
    assert plan(SourceOffset("old", {"a:1": 9}), end, 10) == [SlotRange("r", "a:1", 1, 1, 10)]


# --- redelivery --------------------------------------------------------------------------


def test_digest_ignores_header_order_and_separates_fields() -> None:
    assert event_digest({"a": "1", "b": "2"}, b"x") == event_digest([("b", "2"), ("a", "1")], b"x")
    assert event_digest({"a": "1"}, b"") != event_digest({}, b"a1")
    assert event_digest({"a": "b"}, b"") != event_digest({"ab": ""}, b"")


def test_pending_consumes_each_expected_digest_once() -> None:
    p = Pending()
    d1, d2 = event_digest({}, b"1"), event_digest({}, b"2")
    p.expect(100.0, [d1, d1, d2])
    assert len(p) == 3
    assert p.take(d1) and p.take(d1) and not p.take(d1)
    assert p.take(d2) and not p
    assert p.expire(0.0, 10.0, True) == 0
    assert not p


def test_pending_expires_only_after_a_late_slot_that_pulled_and_never_matched() -> None:
    d = event_digest({}, b"x")
    p = Pending()
    p.expect(100.0, [d, d])
    assert p.expire(105.0, 30.0, pulled_any=True) == 0  # before the deadline
    assert p.expire(200.0, 30.0, pulled_any=False) == 0  # the agent served nothing
    assert p.take(d)
    assert p.expire(200.0, 30.0, pulled_any=True) == 0  # matched in this slot: more may follow
    assert p.expire(200.0, 30.0, pulled_any=True) == 1  # a late slot with no match
    assert not p


@given(st.lists(st.tuples(st.floats(0, 1e10), st.lists(st.binary(min_size=1, max_size=5)))))
def test_pending_round_trips_through_json(groups: list[tuple[float, list[bytes]]]) -> None:
    p = Pending()
    for since, bodies in groups:
        p.expect(since, [event_digest({}, b) for b in bodies])
    q = Pending.from_json(json.loads(json.dumps(p.to_json())))
    assert q.to_json() == p.to_json()
    assert len(q) == sum(len(b) for _, b in groups)


def test_the_readme_documents_every_option_with_its_default() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, (default, _) in OPTION_DOCS.items():
        assert f"| `{name}` | {default} |" in readme, name
