"""Handshake state machines and call encoding, in memory (no sockets)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.event import Event, to_avro
from protocol.framing import encode_pack
from protocol.rpc import ClientSession, ProtocolCache, ServerSession
from protocol.schemas import (
    AVRO_SOURCE_PROTOCOL,
    AVRO_SOURCE_PROTOCOL_NO_DOC,
    CALL_META,
    SPARK_FLUME_PROTOCOL,
)
from tests.vectors import NAMES, load

headers = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4)
events = st.builds(lambda h, b: {"headers": h, "body": b}, headers, st.binary(max_size=64))


def _pair(client: ClientSession, server: ServerSession, answer: Any = "OK") -> list[Any]:
    """Shuttle bytes until quiet; answer every call with ``answer``."""
    responses: list[Any] = []
    for _ in range(10):
        out = client.data_to_send()
        if not out:
            break
        for call in server.feed(out):
            server.respond(call, answer)
        responses.extend(client.feed(server.data_to_send()))
    return responses


@given(st.lists(events, max_size=20), st.booleans())
@settings(max_examples=60)
def test_append_batch_roundtrip(batch: list[dict[str, Any]], deflate: bool) -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL, deflate=deflate)
    server = ServerSession(AVRO_SOURCE_PROTOCOL, deflate=deflate)
    client.send_request("appendBatch", {"events": batch})
    calls = server.feed(client.data_to_send())
    assert [c.params["events"] for c in calls] == [batch]
    server.respond(calls[0], "OK")
    [resp] = client.feed(server.data_to_send())
    assert resp.value == "OK" and client.established and server.established


@given(st.text(max_size=30), st.lists(events, max_size=5))
@settings(max_examples=40)
def test_event_batch_roundtrip(seq: str, batch: list[dict[str, Any]]) -> None:
    client = ClientSession(SPARK_FLUME_PROTOCOL)
    server = ServerSession(SPARK_FLUME_PROTOCOL)
    client.send_request("getEventBatch", {"n": 5})
    [call] = server.feed(client.data_to_send())
    value = {"errorMsg": "", "sequenceNumber": seq, "events": batch}
    server.respond(call, value)
    [resp] = client.feed(server.data_to_send())
    assert resp.value == value


def test_handshake_only_on_the_first_request() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("append", {"event": {"headers": {}, "body": b"a"}})
    first = client.data_to_send()
    assert first[12:28] == AVRO_SOURCE_PROTOCOL.md5
    assert _pair(client, ServerSession(AVRO_SOURCE_PROTOCOL)) == []  # nothing else queued
    for call in server.feed(first):
        server.respond(call, "OK")
    client.feed(server.data_to_send())
    client.send_request("append", {"event": {"headers": {}, "body": b"b"}})
    second = client.data_to_send()
    assert AVRO_SOURCE_PROTOCOL.md5 not in second


def test_requests_made_while_handshaking_wait_for_it() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    for i in range(3):
        client.send_request("append", {"event": {"headers": {}, "body": str(i).encode()}})
    assert client.pending == 3
    responses = _pair(client, server)
    assert [r.serial for r in responses] == [1, 2, 3]


def test_client_match_when_server_protocol_differs() -> None:
    # Server runs the doc-less protocol but already knows the client's (it is cached).
    server = ServerSession(AVRO_SOURCE_PROTOCOL_NO_DOC,
                           ProtocolCache(AVRO_SOURCE_PROTOCOL_NO_DOC, AVRO_SOURCE_PROTOCOL))
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("appendBatch", {"events": []})
    out = client.data_to_send()
    [call] = server.feed(out)
    server.respond(call, "OK")
    reply = server.data_to_send()
    assert reply[12:14] == b"\x02\x02"  # CLIENT, serverProtocol present
    [resp] = client.feed(reply)
    assert resp.value == "OK"
    assert client.server_hash == AVRO_SOURCE_PROTOCOL_NO_DOC.md5


def test_none_then_resend_with_protocol() -> None:
    server = ServerSession(AVRO_SOURCE_PROTOCOL_NO_DOC, ProtocolCache(AVRO_SOURCE_PROTOCOL_NO_DOC))
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("appendBatch", {"events": [{"headers": {}, "body": b"x"}]})
    assert server.feed(client.data_to_send()) == []  # NONE: not executed
    assert client.feed(server.data_to_send()) == []
    [call] = server.feed(client.data_to_send())  # resent with our protocol text
    server.respond(call, "OK")
    [resp] = client.feed(server.data_to_send())
    assert (resp.serial, resp.value) == (1, "OK")
    assert server.cache.get(AVRO_SOURCE_PROTOCOL.md5) is not None  # learned for next time


def test_server_knows_the_docless_flume_protocol_up_front() -> None:
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    client = ClientSession(AVRO_SOURCE_PROTOCOL_NO_DOC, server_hash=AVRO_SOURCE_PROTOCOL.md5)
    client.send_request("append", {"event": {"headers": {}, "body": b""}})
    assert len(server.feed(client.data_to_send())) == 1  # BOTH, no NONE round trip


def test_unknown_message_gets_a_system_error() -> None:
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    client = ClientSession(SPARK_FLUME_PROTOCOL, server_hash=AVRO_SOURCE_PROTOCOL.md5)
    client.send_request("ack", {"sequenceNumber": "1"})
    assert server.feed(client.data_to_send()) == []  # NONE: it does not know Spark's protocol
    assert client.feed(server.data_to_send()) == []
    assert server.feed(client.data_to_send()) == []  # resent with the protocol: no such call
    [resp] = client.feed(server.data_to_send())
    assert resp.error == "No such remote message: ack"


def test_system_error_reply_reaches_the_client() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("append", {"event": {"headers": {}, "body": b""}})
    [call] = server.feed(client.data_to_send())
    server.respond_error(call, "org.apache.avro.AvroRuntimeException: boom")
    [resp] = client.feed(server.data_to_send())
    assert resp.error == "org.apache.avro.AvroRuntimeException: boom" and resp.value is None


def test_empty_message_name_is_a_handshake_only_ping() -> None:
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    hs = (AVRO_SOURCE_PROTOCOL.md5 + b"\x00" + AVRO_SOURCE_PROTOCOL.md5 + b"\x02\x00")
    assert server.feed(encode_pack(9, [hs + b"\x00\x00"])) == []
    assert server.data_to_send() == encode_pack(9, [b"\x00\x00\x00\x00"])


def test_local_misuse_is_a_local_error() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    with pytest.raises(LocalProtocolError):
        client.send_request("nope", {})
    with pytest.raises(LocalProtocolError):
        client.send_request("append", {"event": {"headers": {}, "body": 5}})


def test_reply_for_unknown_serial_is_remote_error() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    with pytest.raises(RemoteProtocolError, match="matches no request"):
        client.feed(encode_pack(7, [b"\x00\x00\x00\x00\x00\x00\x00"]))
    with pytest.raises(RemoteProtocolError):  # a failed session stays failed
        client.feed(b"")


def _mutations(data: bytes, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(40):
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            op = rng.random()
            i = rng.randrange(len(b)) if b else 0
            if op < 0.5 and b:
                b[i] = rng.randrange(256)
            elif op < 0.75:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif b:
                del b[i : i + rng.randint(1, 8)]
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_mutated_captures_only_ever_raise_remote_protocol_errors(name: str) -> None:
    cap = load(name)
    rng = random.Random(name)
    proto = SPARK_FLUME_PROTOCOL if name.startswith("spark") else AVRO_SOURCE_PROTOCOL
    for data in _mutations(cap.client_to_server, rng):
        try:
            for call in ServerSession(proto, deflate=cap.deflate).feed(data):
                assert call.message in proto.messages
        except RemoteProtocolError:
            pass
    for data in _mutations(cap.server_to_client, rng):
        client = ClientSession(proto, deflate=cap.deflate)
        for m in ("getEventBatch",) if name.startswith("spark") else ("appendBatch",):
            client.send_request(m, {"n": 3} if m == "getEventBatch" else {"events": []})
        client.data_to_send()
        try:
            client.feed(data)
        except RemoteProtocolError:
            pass


@given(st.binary(max_size=300), st.booleans())
@settings(max_examples=300)
def test_random_bytes_only_ever_raise_remote_protocol_errors(data: bytes, deflate: bool) -> None:
    for session in (ServerSession(AVRO_SOURCE_PROTOCOL, deflate=deflate),
                    ServerSession(SPARK_FLUME_PROTOCOL, deflate=deflate)):
        try:
            session.feed(data)
        except RemoteProtocolError:
            pass


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_random_pack_payloads_only_ever_raise_remote_protocol_errors(payload: bytes) -> None:
    hs = AVRO_SOURCE_PROTOCOL.md5 + b"\x00" + AVRO_SOURCE_PROTOCOL.md5 + b"\x02\x00"
    for body in (payload, hs + payload):
        try:
            ServerSession(AVRO_SOURCE_PROTOCOL).feed(encode_pack(1, [body]))
        except RemoteProtocolError:
            pass


@given(st.lists(st.builds(Event, st.dictionaries(st.text(max_size=300), st.text(max_size=300),
                                                 max_size=4),
                          st.binary(max_size=9000)), max_size=6))
@settings(max_examples=80)
def test_hand_written_event_array_encoder_matches_fastavro(batch: list[Event]) -> None:
    schema = AVRO_SOURCE_PROTOCOL.messages["appendBatch"].request
    expected = codec.encode(schema, {"events": [to_avro(e) for e in batch]})
    assert codec.encode_event_array(batch) == expected


def test_a_header_python_cannot_encode_is_sent_with_a_replacement_not_stuck() -> None:
    """Found in review: a lone surrogate in a header (an undecodable file name) made every
    send of that batch fail forever."""
    data = codec.encode_event_array([Event({"file": "/spool/bad-\udcff.log"}, b"x")])
    value, _ = codec.decode(AVRO_SOURCE_PROTOCOL.messages["appendBatch"].request, data)
    assert value["events"][0]["headers"] == {"file": "/spool/bad-?.log"}


def test_response_call_metadata_reaches_the_client_and_is_empty_by_default() -> None:
    """The SparkSink proves an ack in the response's call metadata (a map any Avro
    requestor reads before the error flag); byte for byte a plain reply otherwise."""
    client = ClientSession(SPARK_FLUME_PROTOCOL)
    server = ServerSession(SPARK_FLUME_PROTOCOL)
    replies = []
    for seq, meta in (("a1", {"flumelet.ack": b"committed"}), ("a2", None)):
        client.send_request("ack", {"sequenceNumber": seq})
        [call] = server.feed(client.data_to_send())
        server.respond(call, None, meta=meta)
        replies += client.feed(server.data_to_send())
    with_meta, plain = replies
    assert (with_meta.value, with_meta.meta) == (None, {"flumelet.ack": b"committed"})
    assert (plain.value, plain.meta) == (None, {})


def test_status_replies_are_the_encoded_enum_every_time() -> None:
    """OK / FAILED are encoded once per session and reused: same bytes as encoding anew."""
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    response = AVRO_SOURCE_PROTOCOL.messages["appendBatch"].response
    for status in ("OK", "FAILED", "OK", "FAILED"):
        client.send_request("appendBatch", {"events": []})
        [call] = server.feed(client.data_to_send())
        server.respond(call, status)
        [resp] = client.feed(server.data_to_send())
        assert resp.value == status
    assert server._status_cache[("appendBatch", "OK")] == codec.encode(response, {"value": "OK"})


def test_a_request_with_call_metadata_is_still_decoded() -> None:
    """Clients send an empty metadata map (the fast path); a non-empty one is read too."""
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    server = ServerSession(AVRO_SOURCE_PROTOCOL, as_events=True)
    client.send_request("appendBatch", {"events": []})
    assert [r.value for r in _pair(client, server)] == ["OK"]  # handshake done
    payload = (codec.encode(CALL_META, {"trace": b"\x01\x02"}) + codec.write_string("appendBatch")
               + codec.encode_event_array([Event({"k": "v"}, b"body")]))
    [call] = server.feed(encode_pack(7, [payload]))
    assert call.params["events"] == [Event({"k": "v"}, b"body")]
