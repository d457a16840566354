"""Golden vectors: our sessions decode, answer and reproduce Java's bytes exactly."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.rpc import CallRequest, CallResponse, ClientSession, ProtocolCache, ServerSession
from protocol.schemas import (
    AVRO_SOURCE_PROTOCOL,
    AVRO_SOURCE_PROTOCOL_NO_DOC,
    SPARK_FLUME_PROTOCOL,
    Protocol,
)
from tests.vectors import NAMES, Capture, bodies, load, split_packs


def _server_protocol(cap: Capture) -> Protocol:
    if cap.name.startswith("spark"):
        return SPARK_FLUME_PROTOCOL
    if cap.name.endswith("mismatch"):
        return AVRO_SOURCE_PROTOCOL_NO_DOC  # what the recorded Java server ran
    return AVRO_SOURCE_PROTOCOL


def _client_protocol(cap: Capture) -> Protocol:
    return SPARK_FLUME_PROTOCOL if cap.name.startswith("spark") else AVRO_SOURCE_PROTOCOL


def _server(cap: Capture) -> ServerSession:
    proto = _server_protocol(cap)
    return ServerSession(proto, ProtocolCache(proto), deflate=cap.deflate)


def _feed(session: Any, data: bytes, mode: str) -> list[Any]:
    if mode == "whole":
        return session.feed(data)
    out = []
    for i in range(len(data)):
        out.extend(session.feed(data[i : i + 1]))
    return out


def _recorded_calls(cap: Capture) -> list[CallRequest]:
    return _server(cap).feed(cap.client_to_server)


def _answers(cap: Capture) -> list[tuple[str, Any]]:
    """What the recorded Java server answered, call by call (from the README's table)."""
    if cap.name.startswith("spark"):
        events = [{"headers": {"timestamp": "1700000000000"}, "body": bodies()[i % 3]}
                  for i in range(5)]
        return [
            ("getEventBatch", {"errorMsg": "", "sequenceNumber": "0", "events": events[:3]}),
            ("ack", None),
            ("getEventBatch", {"errorMsg": "", "sequenceNumber": "1", "events": events[3:]}),
            ("nack", None),
            ("getEventBatch", {"errorMsg": "", "sequenceNumber": "2", "events": events[3:]}),
            ("ack", None),
        ]
    if cap.name == "flume-append-hash-match":
        return [("append", "OK"), ("append", "OK")]
    if cap.name == "flume-failed-then-ok":
        return [("appendBatch", "FAILED"), ("appendBatch", "OK")]
    return [("appendBatch", "OK")]


def _reply_chunks(cap: Capture) -> list[bytes]:
    """The recorded server stream cut into one chunk per reply pack."""
    if cap.deflate:
        return [cap.server_to_client]  # one reply; a zlib stream cannot be cut per pack
    chunks, pos = [], 0
    for _, bufs in split_packs(cap.server_to_client):
        size = 8 + sum(4 + len(b) for b in bufs)
        chunks.append(cap.server_to_client[pos : pos + size])
        pos += size
    return chunks


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_server_session_reproduces_java_replies(name: str, mode: str) -> None:
    cap = load(name)
    server = _server(cap)
    calls = _feed(server, cap.client_to_server, mode)
    answers = _answers(cap)
    assert [c.message for c in calls] == [m for m, _ in answers]
    for call, (_, value) in zip(calls, answers, strict=True):
        server.respond(call, value)
    assert server.data_to_send() == cap.server_to_client


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_client_session_reproduces_java_requests(name: str, mode: str) -> None:
    cap = load(name)
    answers = _answers(cap)
    client = ClientSession(_client_protocol(cap), deflate=cap.deflate)
    replies = iter(_reply_chunks(cap))
    sent = b""
    responses: list[CallResponse] = []
    for call in _recorded_calls(cap):
        client.send_request(call.message, call.params)
        wanted = len(responses) + 1
        while len(responses) < wanted:  # a NONE reply makes the client re-send first
            sent += client.data_to_send()
            responses.extend(_feed(client, next(replies), mode))
    sent += client.data_to_send() + client.close()
    assert next(replies, None) is None
    assert sent == cap.client_to_server
    assert [(r.message, r.value, r.error) for r in responses] == [
        (m, v, None) for m, v in answers
    ]


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("flume")])
def test_flume_events_carry_the_recorded_content(name: str) -> None:
    events = []
    for call in _recorded_calls(load(name)):
        events.extend(call.params["events"] if call.message == "appendBatch"
                      else [call.params["event"]])
    texts = bodies()
    assert len(events) >= 2
    for i, ev in enumerate(events[:3]):
        assert ev["body"] == texts[i]
        assert ev["headers"] == {"seq": str(i), "timestamp": "1700000000000"}


def test_protocol_hashes_are_the_ones_java_embeds() -> None:
    assert AVRO_SOURCE_PROTOCOL.md5.hex() == "86aadae2c45474c0fe93ffd0f2350a65"
    assert AVRO_SOURCE_PROTOCOL_NO_DOC.md5.hex() == "30da54059df72d9584b867d5202e2069"
    assert SPARK_FLUME_PROTOCOL.md5.hex() == "45f3c2c4aa53244ceaacda6731dedffb"


def test_mismatch_capture_answers_none_then_executes_the_resend() -> None:
    cap = load("flume-appendbatch-hash-mismatch")
    server = _server(cap)
    packs = _reply_chunks(cap)
    first, second = split_packs(cap.client_to_server)
    assert server.feed(cap.client_to_server[: 8 + sum(4 + len(b) for b in first[1])]) == []
    assert server.data_to_send() == packs[0]  # NONE + server protocol, nothing executed
    assert not server.established
    assert second[0] == 2
