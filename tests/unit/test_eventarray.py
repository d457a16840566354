"""The specialised Flume-event decoder: byte-exact against fastavro and the Java captures, and
limits that stop a call while it is being decoded."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import encode_event_array, write_long
from protocol.errors import LimitExceeded, RemoteProtocolError
from protocol.event import Event
from protocol.eventarray import EVENT_OVERHEAD, DecodeBudget, decode_event, decode_events
from protocol.rpc import ServerSession
from protocol.schemas import AVRO_SOURCE_PROTOCOL, AVRO_SOURCE_PROTOCOL_NO_DOC
from tests.vectors import NAMES, load

BATCH = AVRO_SOURCE_PROTOCOL.messages["appendBatch"].request
ONE = AVRO_SOURCE_PROTOCOL.messages["append"].request
UNLIMITED = (10**12, 10**15)


def fastavro_events(data: bytes) -> list[dict[str, Any]]:
    value: dict[str, Any] = schemaless_reader(io.BytesIO(data), BATCH, None)  # type: ignore[assignment]
    return value["events"]


def encode(events: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, BATCH, {"events": events})
    return out.getvalue()


def decode(data: bytes, pos: int = 0, limits: tuple[int, int] = UNLIMITED) -> Any:
    return decode_events(data, pos, DecodeBudget(*limits))


texts = st.text(max_size=12)
events = st.lists(
    st.fixed_dictionaries({"headers": st.dictionaries(texts, texts, max_size=4),
                           "body": st.binary(max_size=300)}),
    max_size=40,
)


@given(events)
def test_same_values_as_fastavro(batch: list[dict[str, Any]]) -> None:
    data = encode(batch)
    assert decode(data) == (fastavro_events(data), len(data))


@settings(max_examples=40, deadline=None)  # decodes every prefix: slow on a busy machine
@given(events.filter(bool))
def test_every_prefix_is_a_clean_truncation_error(batch: list[dict[str, Any]]) -> None:
    """Fed byte by byte: a call cut anywhere is refused, never decoded short."""
    data = encode(batch)
    for end in range(len(data)):
        with pytest.raises(RemoteProtocolError):
            decode(data[:end])


@given(events, st.binary(min_size=1, max_size=20))
def test_trailing_bytes_are_left_for_the_caller(batch: list[dict[str, Any]], tail: bytes) -> None:
    data = encode(batch)
    assert decode(data + tail) == (fastavro_events(data), len(data))


@given(st.binary(max_size=200))
def test_random_bytes_only_raise_remote_protocol_errors(data: bytes) -> None:
    try:
        decode(data)
    except RemoteProtocolError:
        pass


def _block(items: list[bytes], sized: bool) -> bytes:
    """An Avro block as Java's blocking encoder may write it: a negative count, then the
    block's byte size."""
    body = b"".join(items)
    if sized:
        return write_long(-len(items)) + write_long(len(body)) + body
    return write_long(len(items)) + body


def _event(headers: list[tuple[str, str]], body: bytes, sized: bool = False) -> bytes:
    entries = [write_long(len(k.encode())) + k.encode() + write_long(len(v.encode())) + v.encode()
               for k, v in headers]
    head = (_block(entries, sized) if entries else b"") + b"\x00"
    return head + write_long(len(body)) + body


@pytest.mark.parametrize("sized", [False, True])
def test_several_blocks_and_sized_blocks_match_fastavro(sized: bool) -> None:
    first = [_event([("a", "1"), ("b", "2")], b"x" * 70, sized), _event([], b"", sized)]
    second = [_event([("é", "ü" * 40)], b"\x00\xff", sized)]
    data = _block(first, sized) + _block(second, sized) + b"\x00"
    assert decode(data) == (fastavro_events(data), len(data))
    assert len(decode(data)[0]) == 3


def test_the_java_captures_decode_as_fastavro_decodes_them() -> None:
    """Every append and appendBatch the recorded Java clients sent: same values, and the
    same bytes when the values are encoded again."""
    seen = 0
    for name in NAMES:
        if name.startswith("spark"):
            continue
        cap = load(name)
        server = AVRO_SOURCE_PROTOCOL_NO_DOC if name.endswith("mismatch") else AVRO_SOURCE_PROTOCOL
        for call in ServerSession(server, deflate=cap.deflate).feed(cap.client_to_server):
            seen += 1
            if call.message == "appendBatch":
                batch = call.params["events"]
                data = encode(batch)
                assert decode(data)[0] == batch == fastavro_events(data)
                assert encode_event_array([Event(e["headers"], e["body"]) for e in batch]) == data
            else:
                out = io.BytesIO()
                schemaless_writer(out, ONE, call.params)
                data = out.getvalue()
                assert decode_event(data, 0, DecodeBudget(*UNLIMITED)) == (call.params["event"],
                                                                          len(data))
    assert seen == 7


def test_a_count_of_two_to_the_31_is_refused_before_any_event_is_made() -> None:
    data = write_long(2**31) + b"\x00\x00" * 10
    with pytest.raises(LimitExceeded, match="max-events-per-call") as err:
        decode(data, limits=(100_000, 10**9))
    assert err.value.limit == "max-events-per-call"
    with pytest.raises(RemoteProtocolError, match="truncated"):
        decode(data)  # no event limit: still refused at once (2 bytes per event at least)


def test_events_past_the_limit_end_the_call() -> None:
    data = encode_event_array([Event({}, b"")] * 5)
    assert len(decode(data, limits=(5, 10**9))[0]) == 5
    with pytest.raises(LimitExceeded):
        decode(data, limits=(4, 10**9))


def test_empty_events_are_charged_for_the_objects_they_become() -> None:
    """4 million 2-byte events (8 MiB on the wire) would be 1.3 GiB decoded: refused."""
    data = write_long(4 * 2**20) + b"\x00\x00" * (4 * 2**20) + b"\x00"
    with pytest.raises(LimitExceeded, match="max-call-bytes"):
        decode(data, limits=(10**9, 128 * 2**20))
    small = encode_event_array([Event({}, b"")] * 10)
    each = EVENT_OVERHEAD + 2  # the objects, and the two bytes sent
    assert len(decode(small, limits=(100, 10 * each))[0]) == 10
    with pytest.raises(LimitExceeded):
        decode(small, limits=(100, 10 * each - 1))


def test_bodies_count_against_the_decoded_bytes() -> None:
    data = encode_event_array([Event({"k": "v"}, b"x" * 1000)] * 3)
    budget = DecodeBudget(10, 10**9)
    decode_events(data, 0, budget)
    assert 3 * 1000 < budget.used_bytes < 3 * (1000 + EVENT_OVERHEAD + 200)
    with pytest.raises(LimitExceeded):
        decode(data, limits=(10, 2 * (1000 + EVENT_OVERHEAD)))


@pytest.mark.parametrize("data, match", [
    (write_long(1) + b"\x02\x02\xff\x02a\x00\x00\x00", "UTF-8"),  # header key not UTF-8
    (write_long(1) + b"\x00" + write_long(-3) + b"abc\x00", "negative length"),
    (write_long(1) + b"\x00" + b"\xff" * 11, "varint"),
])
def test_malformed_events_name_the_problem(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        decode(data)


@settings(max_examples=50)
@given(st.lists(st.fixed_dictionaries({
    "headers": st.dictionaries(texts, st.text(min_size=50, max_size=200), max_size=2),
    "body": st.binary(min_size=50, max_size=9000)}), max_size=5))
def test_two_byte_lengths_match_fastavro(batch: list[dict[str, Any]]) -> None:
    """Header values and bodies of 64 B to 8 KiB have two-byte lengths (a fast path)."""
    data = encode(batch)
    assert decode(data) == (fastavro_events(data), len(data))


@pytest.mark.parametrize("length", [b"\x80\x00", b"\x82\x00", b"\x80\x80\x00"])
def test_lengths_in_more_bytes_than_needed_are_read_as_avro_reads_them(length: bytes) -> None:
    """Non-minimal varints (0, 1, 0 spelled in 2-3 bytes) are valid Avro."""
    size = {b"\x80\x00": 0, b"\x82\x00": 1, b"\x80\x80\x00": 0}[length]
    data = write_long(1) + write_long(1) + b"\x02k" + length + b"v" * size + b"\x00" + \
        length + b"b" * size + b"\x00"
    assert decode(data) == (fastavro_events(data), len(data))
    assert decode(data)[0] == [{"headers": {"k": "v" * size}, "body": b"b" * size}]


def test_a_call_cut_inside_a_two_byte_length_names_where() -> None:
    data = write_long(1) + b"\x00" + b"\x80"
    with pytest.raises(RemoteProtocolError, match=f"truncated at byte {len(data)}"):
        decode(data)
