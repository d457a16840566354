"""A server session under its limits: bounded protocol cache, checked handshakes, lazy input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import codec
from protocol.codec import write_long
from protocol.compression import Deflater
from protocol.errors import LimitExceeded, RemoteProtocolError
from protocol.framing import encode_pack
from protocol.limits import ListenerLimits
from protocol.rpc import ClientSession, ServerSession, default_cache
from protocol.schemas import AVRO_SOURCE_PROTOCOL, HANDSHAKE_REQUEST, Protocol


def _variant(doc: str, event_fields: list[dict[str, Any]] | None = None) -> Protocol:
    """AvroSourceProtocol with another doc (same shape, another MD5), or other event fields."""
    doc_json = json.loads(AVRO_SOURCE_PROTOCOL.text)
    doc_json["doc"] = doc
    if event_fields is not None:
        doc_json["types"][1]["fields"] = event_fields
    return Protocol(json.dumps(doc_json))


def _handshake_call(client: Protocol, text: str | None = None, md5: bytes | None = None,
                    params: bytes = b"\x00") -> bytes:
    """A first request carrying ``text`` as the client protocol under ``md5``."""
    hs = codec.encode(HANDSHAKE_REQUEST, {
        "clientHash": md5 or client.md5, "clientProtocol": client.text if text is None else text,
        "serverHash": AVRO_SOURCE_PROTOCOL.md5, "meta": {}})
    return encode_pack(1, [hs + b"\x00" + codec.write_string("appendBatch"), params])


def test_the_protocol_cache_is_bounded_and_keeps_the_servers_own() -> None:
    limits = ListenerLimits(protocol_cache_size=4)
    cache = default_cache(AVRO_SOURCE_PROTOCOL, limits)
    for i in range(50):
        session = ServerSession(AVRO_SOURCE_PROTOCOL, cache, limits)
        assert len(session.feed(_handshake_call(_variant(f"v{i}" * 1000)))) == 1
    assert len(cache) == 2 + 4  # the two built-in Flume texts, and the 4 most recent
    assert cache.get(AVRO_SOURCE_PROTOCOL.md5) is AVRO_SOURCE_PROTOCOL
    assert cache.get(_variant("v49" * 1000).md5) is not None
    assert cache.get(_variant("v0" * 1000).md5) is None


def test_a_protocol_text_over_the_cap_closes_the_connection() -> None:
    limits = ListenerLimits(max_protocol_bytes=10_000)
    session = ServerSession(AVRO_SOURCE_PROTOCOL, limits=limits)
    with pytest.raises(LimitExceeded, match="max-protocol-bytes"):
        session.feed(_handshake_call(_variant("x" * 20_000)))
    assert len(session.cache) == 2


def test_a_protocol_sent_under_another_hash_is_not_learned() -> None:
    """A wrong hash cannot plant a protocol for other clients (Java would learn it)."""
    other = _variant("someone else's")
    session = ServerSession(AVRO_SOURCE_PROTOCOL)
    with pytest.raises(RemoteProtocolError, match="not the MD5"):
        session.feed(_handshake_call(_variant("mine"), md5=other.md5))
    assert session.cache.get(other.md5) is None


def test_a_wrong_server_hash_gets_our_protocol_and_the_call_goes_on() -> None:
    client = ClientSession(AVRO_SOURCE_PROTOCOL, server_hash=b"\x01" * 16)
    server = ServerSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("appendBatch", {"events": []})
    [call] = server.feed(client.data_to_send())
    server.respond(call, "OK")
    [resp] = client.feed(server.data_to_send())
    assert resp.value == "OK" and client.established


def test_a_client_whose_events_have_another_layout_is_refused() -> None:
    odd = _variant("odd", [{"name": "headers", "type": {"type": "map", "values": "string"}},
                           {"name": "body", "type": "bytes"},
                           {"name": "extra", "type": "int"}])
    session = ServerSession(AVRO_SOURCE_PROTOCOL)
    with pytest.raises(RemoteProtocolError, match="Flume's layout"):
        session.feed(_handshake_call(odd))


def _batch_frames(serial: int, count: int) -> bytes:
    """An appendBatch of ``count`` empty events, without a handshake."""
    params = write_long(count) + b"\x00\x00" * count + b"\x00"
    return encode_pack(serial, [b"\x00" + codec.write_string("appendBatch"), params])


def _established() -> ServerSession:
    session = ServerSession(AVRO_SOURCE_PROTOCOL)
    client = ClientSession(AVRO_SOURCE_PROTOCOL)
    client.send_request("appendBatch", {"events": []})
    assert len(session.feed(client.data_to_send())) == 1
    return session


def test_calls_are_decoded_only_when_asked_for() -> None:
    session = _established()
    session.receive(_batch_frames(2, 1000) + _batch_frames(3, 1000))
    held = session.buffered
    assert held > 4000
    first = session.next_call()
    assert first is not None and len(first.params["events"]) == 1000
    assert first.cost > 1000 * 256
    assert session.buffered < held  # the first frame is no longer held raw
    second = session.next_call()
    assert second is not None and second.serial == 3
    assert session.next_call() is None and session.buffered == 0


def test_a_deflate_bomb_stays_compressed_until_its_call_is_refused() -> None:
    """8,231 bytes on the wire that inflate to an 8 MiB frame of 4 million empty events."""
    session = ServerSession(AVRO_SOURCE_PROTOCOL, deflate=True)
    client = Deflater(9)
    hs = codec.encode(HANDSHAKE_REQUEST, {"clientHash": AVRO_SOURCE_PROTOCOL.md5,
                                          "clientProtocol": None,
                                          "serverHash": AVRO_SOURCE_PROTOCOL.md5, "meta": {}})
    first = encode_pack(1, [hs + b"\x00" + codec.write_string("appendBatch"), b"\x00"])
    assert len(session.feed(client.compress(first))) == 1
    bomb = client.compress(_batch_frames(2, 4 * 2**20))
    assert len(bomb) < 20_000
    session.receive(bomb)
    assert session.buffered == len(bomb)  # nothing inflated yet
    with pytest.raises(LimitExceeded):
        session.next_call()
    assert session.failed is not None


def test_inflation_goes_in_steps_so_other_connections_get_turns() -> None:
    session = ServerSession(AVRO_SOURCE_PROTOCOL, deflate=True)
    client = Deflater(6)
    hs = codec.encode(HANDSHAKE_REQUEST, {"clientHash": AVRO_SOURCE_PROTOCOL.md5,
                                          "clientProtocol": None,
                                          "serverHash": AVRO_SOURCE_PROTOCOL.md5, "meta": {}})
    body = b"\x00" * (3 * 2**20)  # one event with a 3 MiB body: ~3 KB compressed
    params = write_long(1) + b"\x00" + write_long(len(body)) + body + b"\x00"
    session.receive(client.compress(encode_pack(1, [hs + b"\x00" + codec.write_string(
        "appendBatch"), params])))
    steps = 0
    while (call := session.next_call(step=2**20)) is None:
        assert session.input_pending and session.buffered <= steps * 2**20 + 2**20 + 65536
        steps += 1
    assert steps >= 2
    assert call.params["events"][0]["body"] == body
    assert session.next_call(step=2**20) is None and not session.input_pending
