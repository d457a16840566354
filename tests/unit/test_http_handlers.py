"""The http source's JSONHandler and BlobHandler as Flume defines them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources import http_handlers
from agent.sources.http_handlers import (
    BadRequest,
    BlobHandler,
    JsonHandler,
    TooLarge,
    charset_of,
    make_handler,
)

JSON = JsonHandler()


def test_json_events_with_headers_and_bodies() -> None:
    body = b'[{"headers": {"a": "b", "n": 1, "f": 1.50, "t": true, "z": null}, "body": "hi"},' \
           b' {"body": "caf\\u00e9"}, {"headers": {}}]'
    events = JSON.events(body, "application/json")
    assert [e.headers for e in events] == [{"a": "b", "n": "1", "f": "1.50", "t": "true"}, {},
                                           {}]
    assert [e.body for e in events] == [b"hi", "café".encode(), b""]


def test_json_charset_from_content_type_encodes_bodies_like_java() -> None:
    text = '[{"body": "é"}]'
    events = JSON.events(text.encode("utf-16-be"), "application/json; charset=UTF-16")
    assert events[0].body == b"\xfe\xff" + "é".encode("utf-16-be")
    events = JSON.events(text.encode("utf-32-be"), "application/json;charset=utf-32")
    assert events[0].body == "é".encode("utf-32-be")


@pytest.mark.parametrize(("body", "content_type"), [
    (b"", None), (b"{", None), (b'{"body": "x"}', None), (b"[1]", None), (b"[null]", None),
    (b'[{"body": {"x": 1}}]', None), (b'[{"headers": [1]}]', None),
    (b'[{"headers": {"a": [1]}}]', None), (b"[NaN]", None), (b"\xff[]", None),
    (b"[]", "application/json; charset=ISO-8859-1"), (b"[1,]", None), (b"[{}", None),
    (b"[{}] x", None), (b"[{}]]", None), (b"[{} {}]", None), (b"[,]", None),
])
@pytest.mark.parametrize("whole", [True, False])
def test_json_bad_input_is_a_bad_request(body: bytes, content_type: str | None, whole: bool,
                                         monkeypatch) -> None:
    if not whole:
        monkeypatch.setattr(http_handlers, "WHOLE_DECODE_BYTES", -1)
    with pytest.raises(BadRequest):
        JSON.events(body, content_type)


def test_json_empty_array_is_no_events() -> None:
    assert JSON.events(b"[]", None) == []


def test_json_size_limit() -> None:
    with pytest.raises(TooLarge):
        JsonHandler(max_bytes=10).events(b'[{"body": "0123456789"}]', None)


@pytest.mark.parametrize("whole", [True, False])
def test_json_events_per_request_are_limited(whole: bool, monkeypatch) -> None:
    if not whole:
        monkeypatch.setattr(http_handlers, "WHOLE_DECODE_BYTES", 0)
    handler = JsonHandler(max_events=2)
    assert len(handler.events(b'[{"body": "a"}, {"body": "b"}]', None)) == 2
    with pytest.raises(TooLarge, match="max-events-per-call"):
        handler.events(b'[{"body": "a"}, {"body": "b"}, {"body": "c"}]', None)


def test_a_large_body_is_refused_while_decoding(monkeypatch) -> None:
    monkeypatch.setattr(http_handlers, "WHOLE_DECODE_BYTES", 0)
    with pytest.raises(TooLarge, match="max-events-per-call"):  # refused before its end
        JsonHandler(max_events=2).events(b'[{"body": "a"}, {"body": "b"}, {}, ', None)


@pytest.mark.parametrize("whole", [True, False])
def test_json_decoded_bytes_per_request_are_limited(whole: bool, monkeypatch) -> None:
    if not whole:
        monkeypatch.setattr(http_handlers, "WHOLE_DECODE_BYTES", 0)
    one = b'{"headers": {"k": "v"}, "body": "' + b"x" * 1000 + b'"}'
    handler = JsonHandler(max_decoded_bytes=2 * (1000 + 256 + 128 + 2))
    assert len(handler.events(b"[" + one + b"," + one + b"]", None)) == 2
    with pytest.raises(TooLarge, match="max-call-bytes"):
        handler.events(b"[" + b",".join([one] * 3) + b"]", None)


@given(st.lists(st.fixed_dictionaries({
    "headers": st.dictionaries(st.text(), st.text(), max_size=3),
    "body": st.text(alphabet=st.characters(blacklist_categories=("Cs",)))}), max_size=5),
    st.sampled_from([None, 0, 2]), st.sampled_from([(",", ": "), (" ,\n", " :\t")]))
def test_json_layouts_decode_alike_whole_and_element_by_element(
        items: list[dict[str, object]], indent: int | None, separators: tuple[str, str]) -> None:
    text = " \n" + json.dumps(items, indent=indent, separators=separators) + "\r\n "
    whole = JSON.events(text.encode(), None)
    items_at_a_time = JSON._events(
        http_handlers._array_items(text, json.JSONDecoder(parse_int=str)), str.encode, True)
    assert whole == items_at_a_time
    assert [{"headers": e.headers, "body": e.body.decode()} for e in whole] == items


@given(st.lists(st.fixed_dictionaries({
    "headers": st.dictionaries(st.text(), st.text(), max_size=3),
    "body": st.text(alphabet=st.characters(blacklist_categories=("Cs",)))}), max_size=5))
def test_json_round_trip(items: list[dict[str, object]]) -> None:
    events = JSON.events(json.dumps(items).encode(), None)
    assert [{"headers": e.headers, "body": e.body.decode()} for e in events] == items


def test_blob_is_one_event_with_content_type_and_query() -> None:
    (event,) = BlobHandler().events(b"\x00raw", "application/octet-stream", {"k": "v"})
    assert event.body == b"\x00raw"
    assert event.headers == {"Content-Type": "application/octet-stream", "k": "v"}


def test_blob_over_max_length_is_refused_not_cut() -> None:
    with pytest.raises(TooLarge):
        BlobHandler(4).events(b"12345", None)


def test_make_handler_by_flume_class_name() -> None:
    assert isinstance(make_handler("org.apache.flume.source.http.JSONHandler", {}), JsonHandler)
    limited = make_handler("JSONHandler", {}, max_events=7, max_decoded_bytes=99)
    assert limited == JsonHandler(max_events=7, max_decoded_bytes=99)
    blob = make_handler("org.apache.flume.sink.solr.morphline.BlobHandler",
                        {"maxBlobLength": "10"})
    assert isinstance(blob, BlobHandler) and blob.max_blob_length == 10
    with pytest.raises(ValueError, match="greater than zero"):
        make_handler("BlobHandler", {"maxBlobLength": "0"})
    with pytest.raises(ValueError, match="not supported"):
        make_handler("com.example.MyHandler", {})


def test_charset_of() -> None:
    assert charset_of("text/plain; charset=\"UTF-16\"") == "UTF-16"
    assert charset_of("text/plain") is None
    assert charset_of(None) is None
