"""Sans-I/O Avro IPC sessions over Netty framing: bytes in, typed calls out.

``ServerSession`` answers handshakes (BOTH / CLIENT / NONE, with a protocol cache shared by
all connections of a server) and turns request packs into :class:`CallRequest`;
``ClientSession`` handshakes on the first request of its connection, re-sends with its
protocol after NONE, and turns reply packs into :class:`CallResponse`. Neither does I/O:
callers ``feed()`` received bytes and write out ``data_to_send()``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from protocol import codec
from protocol.compression import Deflater, Inflater
from protocol.errors import LimitExceeded, LocalProtocolError, RemoteProtocolError
from protocol.eventarray import DecodeBudget, decode_event, decode_events
from protocol.framing import (
    DEFAULT_MAX_BUFFERS,
    DEFAULT_MAX_FRAME_BYTES,
    Pack,
    PackDecoder,
    encode_pack,
)
from protocol.limits import ListenerLimits
from protocol.schemas import (
    AVRO_SOURCE_PROTOCOL,
    AVRO_SOURCE_PROTOCOL_NO_DOC,
    CALL_META,
    HANDSHAKE_REQUEST,
    HANDSHAKE_RESPONSE,
    SPARK_FLUME_PROTOCOL,
    Message,
    Protocol,
)

_EMPTY_META = b"\x00"
_OK_FLAG = b"\x00"
_ERROR_FLAG = b"\x01"


@dataclass(slots=True)
class CallRequest:
    """A call a client made; answer it with ServerSession.respond / respond_error."""

    serial: int
    message: str
    params: dict[str, Any]
    handshake: bytes = b""  # HandshakeResponse to prepend to this call's reply
    one_way: bool = False
    cost: int = 0  # what the decoded parameters hold, in bytes (see protocol.eventarray)


@dataclass(slots=True)
class CallResponse:
    """The answer to ClientSession.send_request's ``serial``: a value, or an error string,
    and the call metadata the server sent with it (Avro's response ``meta`` map)."""

    serial: int
    message: str
    value: Any = None
    error: str | None = None
    meta: dict[str, bytes] = field(default_factory=dict)


class ProtocolCache:
    """Client protocols by MD5, shared by every connection of one server (as Java does).

    Unlike Java's, it is bounded: the protocols given up front are kept, at most
    ``capacity`` learned ones besides (least recently used go first), each text at most
    ``max_text_bytes``, and a text is learned only under its own MD5, so a client cannot
    plant a protocol under another client's hash.
    """

    def __init__(self, *known: Protocol, capacity: int = 16,
                 max_text_bytes: int = 64 * 1024) -> None:
        self._known: dict[bytes, Protocol] = {p.md5: p for p in known}
        self._learned: OrderedDict[bytes, Protocol] = OrderedDict()
        self.capacity = capacity
        self.max_text_bytes = max_text_bytes

    def __len__(self) -> int:
        return len(self._known) + len(self._learned)

    def get(self, md5: bytes) -> Protocol | None:
        proto = self._known.get(md5)
        if proto is None:
            proto = self._learned.get(md5)
            if proto is not None:
                self._learned.move_to_end(md5)
        return proto

    def learn(self, md5: bytes, text: str) -> Protocol:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_text_bytes:
            raise LimitExceeded("max-protocol-bytes",
                                f"client protocol of {size} bytes (max-protocol-bytes is "
                                f"{self.max_text_bytes})")
        actual = hashlib.md5(text.encode("utf-8", "surrogatepass")).digest()
        if actual != md5:  # checked before parsing: a liar costs a hash, not a parse
            raise RemoteProtocolError(f"the handshake's client hash {md5.hex()} is not the MD5 "
                                      f"of the protocol it sent ({actual.hex()})")
        proto = Protocol(text)
        self._learned[md5] = proto
        while len(self._learned) > self.capacity:
            self._learned.popitem(last=False)
        return proto


def default_cache(protocol: Protocol, limits: ListenerLimits | None = None) -> ProtocolCache:
    known = [protocol]
    if protocol.md5 == AVRO_SOURCE_PROTOCOL.md5:
        known.append(AVRO_SOURCE_PROTOCOL_NO_DOC)
    limits = limits or ListenerLimits()
    return ProtocolCache(*known, capacity=limits.protocol_cache_size,
                         max_text_bytes=limits.max_protocol_bytes)


def _same_shape(a: Protocol, b: Protocol) -> bool:
    return a.md5 == b.md5 or a.shape == b.shape


class _Connection:
    """Framing and optional deflate shared by both roles.

    Input is taken lazily: ``_receive`` only stores bytes, and frames are cut (and deflate
    inflated, in bounded chunks) as ``_next_pack`` asks for them, so a reader that stops
    asking holds what it received and no more: a deflate bomb stays compressed.
    """

    def __init__(
        self,
        deflate: bool = False,
        compression_level: int = 6,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_buffers: int = DEFAULT_MAX_BUFFERS,
    ) -> None:
        self._decoder = PackDecoder(max_frame_bytes, max_buffers)
        self._inflater = Inflater() if deflate else None
        self._deflater = Deflater(compression_level) if deflate else None
        self._out: list[bytes] = []  # frames to send, joined only when taken
        self.failed: RemoteProtocolError | None = None
        self._ready: deque[Pack] = deque()
        self._ready_bytes = 0
        self._compressed: deque[bytes] = deque()
        self._compressed_bytes = 0
        self._inflating: Iterator[bytes] | None = None
        self.packs_received = 0

    @property
    def buffered(self) -> int:
        """Bytes of input held: unfinished and finished frames not yet taken, and (with
        deflate) compressed bytes not yet inflated."""
        return self._decoder.buffered + self._ready_bytes + self._compressed_bytes

    @property
    def incomplete(self) -> bool:
        """A frame is begun and only more bytes from the peer can finish it."""
        return (not self._ready and not self._compressed and self._inflating is None
                and self._decoder.buffered > 0)

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)  # one frame: no copy

    def close(self) -> bytes:
        """Bytes to write before closing the socket (ends the deflate stream, as Netty does)."""
        return self._deflater.finish() if self._deflater else b""

    def _emit(self, serial: int, buffers: list[bytes]) -> None:
        pack = encode_pack(serial, buffers)
        data = self._deflater.compress(pack) if self._deflater else pack
        if data:
            self._out.append(data)

    def _receive(self, data: bytes) -> None:
        if self.failed:
            raise self.failed
        if not data:
            return
        if self._inflater is None:
            self._take(data)
        else:
            self._compressed.append(data)
            self._compressed_bytes += len(data)

    def _take(self, data: bytes) -> None:
        try:
            packs = self._decoder.feed(data)
        except RemoteProtocolError as exc:
            raise self._fail(exc) from exc
        for p in packs:
            self._ready.append(p)
            self._ready_bytes += len(p.payload)
        self.packs_received += len(packs)

    @property
    def input_pending(self) -> bool:
        """Compressed input is left that ``_next_pack`` stopped inflating (its ``step``)."""
        return bool(self._compressed) or self._inflating is not None

    def _next_pack(self, step: int | None = None) -> Pack | None:
        """The next whole frame, or None until more bytes arrive (or, with deflate, once
        ``step`` bytes were inflated without finishing one: see ``input_pending``)."""
        if self.failed:
            raise self.failed
        inflated = 0
        while not self._ready:
            if step is not None and inflated >= step:
                return None
            chunk = self._inflated_chunk()
            if chunk is None:
                return None
            inflated += len(chunk)
            self._take(chunk)
        pack = self._ready.popleft()
        self._ready_bytes -= len(pack.payload)
        return pack

    def _inflated_chunk(self) -> bytes | None:
        assert self._inflater is not None or not self._compressed
        while True:
            if self._inflating is not None:
                try:
                    chunk = next(self._inflating, None)
                except RemoteProtocolError as exc:
                    raise self._fail(exc) from exc
                if chunk is not None:
                    return chunk
                self._inflating = None
            if not self._compressed or self._inflater is None:
                return None
            data = self._compressed.popleft()
            self._compressed_bytes -= len(data)
            self._inflating = self._inflater.inflate(data)

    def _fail(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self.failed = exc
        return exc

    def discard_input(self, reason: RemoteProtocolError) -> None:
        """Drop every byte of input held, at once (the connection is being cut off: its
        memory should not wait for the socket to finish closing)."""
        self._decoder = PackDecoder(self._decoder.max_frame_bytes, self._decoder.max_buffers)
        self._ready.clear()
        self._ready_bytes = 0
        self._compressed.clear()
        self._compressed_bytes = 0
        self._inflating = None
        self.failed = reason


class ServerSession(_Connection):
    """One accepted connection of an Avro responder.

    ``receive(bytes)`` then ``next_call()`` until None: a call is decoded only when asked
    for, so a server that stops asking (its client pipelines faster than it is answered)
    holds raw bytes, never a backlog of decoded calls. ``feed`` does both at once.
    """

    def __init__(self, protocol: Protocol, cache: ProtocolCache | None = None,
                 limits: ListenerLimits | None = None, *, as_events: bool = False,
                 **kw: Any) -> None:
        if limits is None:
            limits = ListenerLimits(
                max_frame_bytes=kw.get("max_frame_bytes", DEFAULT_MAX_FRAME_BYTES))
        self.limits = limits
        kw["max_frame_bytes"] = limits.max_frame_bytes
        super().__init__(**kw)
        self.protocol = protocol
        self.cache = cache if cache is not None else default_cache(protocol, self.limits)
        self.remote: Protocol | None = None  # the client's protocol, once handshaken
        # Flume events as protocol.event.Event objects, not record dicts (an agent's source)
        self.as_events = as_events
        self._status_cache: dict[tuple[str, str], bytes] = {}

    @property
    def established(self) -> bool:
        return self.remote is not None

    def receive(self, data: bytes) -> None:
        self._receive(data)

    def next_call(self, step: int | None = None) -> CallRequest | None:
        """The next call received, decoded now; None when the bytes so far hold no more,
        or when ``step`` bytes were inflated without finishing a frame (the caller may let
        other connections run, then ask again while ``input_pending``). Frames that need
        no call (a NONE handshake, a ping) are answered on the way."""
        while (pack := self._next_pack(step)) is not None:
            try:
                call = self._on_pack(pack)
            except RemoteProtocolError as exc:
                raise self._fail(exc) from exc
            if call is not None:
                return call
        return None

    def feed(self, data: bytes) -> list[CallRequest]:
        self.receive(data)
        calls: list[CallRequest] = []
        while (call := self.next_call()) is not None:
            calls.append(call)
        return calls

    def _on_pack(self, pack: Pack) -> CallRequest | None:
        data, pos, prefix = pack.payload, 0, b""
        if self.remote is None:
            prefix, pos = self._handshake(pack)
            if self.remote is None:  # NONE: reply is the handshake alone, call not executed
                self._emit(pack.serial, [prefix])
                return None
        if data[pos : pos + 1] == b"\x00":  # no call metadata (what clients send)
            pos += 1
        else:
            _, pos = codec.decode(CALL_META, data, pos)
        name, pos = codec.read_string(data, pos)
        if not name:  # handshake-only "ping"
            self._emit(pack.serial, [prefix])
            return None
        message = self.protocol.messages.get(name)
        if message is None:
            self._emit_error(pack.serial, prefix, f"No such remote message: {name}",
                             self._system_errors())
            return None
        remote_msg = self.remote.messages.get(name) if self.remote else None
        if message.events is not None:
            params, pos, cost = self._decode_events(message, remote_msg, data, pos)
        else:
            writer = None
            if (remote_msg is not None and self.remote
                    and not _same_shape(self.remote, self.protocol)):
                writer = remote_msg.request
            params, pos = codec.decode(message.request, data, pos, writer)
            cost = len(data)
        if pos != len(data):
            raise RemoteProtocolError(
                f"{len(data) - pos} unexpected bytes after the parameters of {name!r}"
            )
        return CallRequest(pack.serial, name, params, prefix,
                           message.one_way and not prefix, cost)

    def _decode_events(self, message: Message, remote: Message | None, data: bytes,
                       pos: int) -> tuple[dict[str, Any], int, int]:
        """Flume events, decoded by the specialised decoder under the call limits. A
        client whose protocol lays them out differently is refused: resolving another
        layout could not be bounded while decoding (no Flume client sends one)."""
        if remote is not None and remote.events != message.events:
            raise RemoteProtocolError(f"the client's {message.name} does not carry Flume "
                                      f"events in Flume's layout")
        budget = DecodeBudget(self.limits.max_events_per_call, self.limits.max_call_bytes)
        value: Any
        if message.events == "array":
            value, pos = decode_events(data, pos, budget, as_events=self.as_events)
        else:
            value, pos = decode_event(data, pos, budget, as_events=self.as_events)
        return {message.param_names[0]: value}, pos, budget.used_bytes

    def _handshake(self, pack: Pack) -> tuple[bytes, int]:
        req, pos = codec.decode(HANDSHAKE_REQUEST, pack.payload, 0)
        client_hash: bytes = req["clientHash"]  # what the peer says its protocol's MD5 is
        remote = self.cache.get(client_hash)
        if remote is None and req["clientProtocol"] is not None:
            remote = self.cache.learn(client_hash, req["clientProtocol"])
        mine = req["serverHash"] == self.protocol.md5
        if remote is not None and mine:
            match = "BOTH"
        elif remote is not None:
            match = "CLIENT"
        else:
            match = "NONE"
        both = match == "BOTH"
        resp = {
            "match": match,
            "serverProtocol": None if both else self.protocol.text,
            "serverHash": None if both else self.protocol.md5,
            "meta": None,
        }
        if remote is not None:
            self.remote = remote
        return codec.encode(HANDSHAKE_RESPONSE, resp), pos

    def _system_errors(self) -> codec.Schema:
        return next(iter(self.protocol.messages.values())).errors

    def respond(self, call: CallRequest, value: Any, *, encoded: bytes | None = None,
                meta: dict[str, bytes] | None = None) -> None:
        """Queue the normal reply to ``call``; ``encoded`` is the value already in Avro;
        ``meta``: response call metadata (Java requestors read it and, without plugins,
        ignore it)."""
        if call.one_way:
            return
        body = encoded if encoded is not None else self._encode_response(call.message, value)
        head = codec.encode(CALL_META, meta) if meta else _EMPTY_META
        self._emit(call.serial, [call.handshake, head, _OK_FLAG + body])

    def _encode_response(self, name: str, value: Any) -> bytes:
        """The response value in Avro; a status string (Flume's ``OK``/``FAILED``) is
        encoded once per session, not once per call."""
        if type(value) is str:
            key = (name, value)
            body = self._status_cache.get(key)
            if body is None:
                body = codec.encode(self.protocol.messages[name].response, {"value": value})
                if len(self._status_cache) < 16:  # statuses, not arbitrary strings
                    self._status_cache[key] = body
            return body
        return codec.encode(self.protocol.messages[name].response, {"value": value})

    def respond_error(self, call: CallRequest, error: str) -> None:
        """Queue a system-error reply: what a Java responder sends for an undeclared exception."""
        self._emit_error(call.serial, call.handshake, error,
                         self.protocol.messages[call.message].errors)

    def _emit_error(self, serial: int, prefix: bytes, error: str, schema: codec.Schema) -> None:
        body = codec.encode(schema, {"value": error})
        self._emit(serial, [prefix, _EMPTY_META, _ERROR_FLAG + body])


@dataclass(slots=True)
class _Outgoing:
    serial: int  # the serial the caller knows
    message: Message
    params: bytes
    with_protocol: bool = False
    sent_serial: int = 0


@dataclass
class _HandshakeState:
    in_flight: int | None = None  # wire serial of the request carrying the handshake
    queued: list[_Outgoing] = field(default_factory=list)


class ClientSession(_Connection):
    """One connection of an Avro requestor.

    ``server_hash``: what this client last learned for the remote address (Java keeps a
    JVM-wide cache); by default our own hash, which real Flume answers with BOTH.
    """

    def __init__(
        self, protocol: Protocol, server_hash: bytes | None = None, first_serial: int = 1, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.protocol = protocol
        self.server_hash = server_hash or protocol.md5
        self.server_protocol: Protocol | None = None  # set when the server's differs from ours
        self.established = False
        self._next_serial = first_serial
        self._pending: dict[int, _Outgoing] = {}
        self._hs = _HandshakeState()

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._hs.queued)

    def send_request(
        self, message: str, params: dict[str, Any], *, encoded: bytes | None = None
    ) -> int:
        """Encode a call; its bytes appear in data_to_send() (after the handshake completes,
        if another request is still handshaking). Returns the serial to match the reply.
        ``encoded``: the parameters already in Avro (see codec.encode_event_array)."""
        if self.failed:
            raise LocalProtocolError(f"connection already failed: {self.failed}")
        msg = self.protocol.messages.get(message)
        if msg is None:
            raise LocalProtocolError(f"{self.protocol.name} has no message {message!r}")
        try:
            body = encoded if encoded is not None else codec.encode(msg.request, params)
        except Exception as exc:
            raise LocalProtocolError(f"cannot encode {message} parameters: {exc}") from exc
        out = _Outgoing(self._take_serial(), msg, body)
        if self.established:
            self._send(out)
        elif self._hs.in_flight is None:
            self._send(out, handshake=True)
        else:
            self._hs.queued.append(out)
        return out.serial

    def _take_serial(self) -> int:
        serial = self._next_serial
        self._next_serial = (serial + 1) & 0x7FFFFFFF
        return serial

    def _send(self, out: _Outgoing, handshake: bool = False, resend: bool = False) -> None:
        out.sent_serial = self._take_serial() if resend else out.serial
        head = codec.write_string(out.message.name)
        if handshake:
            hs = codec.encode(HANDSHAKE_REQUEST, {
                "clientHash": self.protocol.md5,
                "clientProtocol": self.protocol.text if out.with_protocol else None,
                "serverHash": self.server_hash,
                "meta": {},
            })
            head = hs + _EMPTY_META + head
            self._hs.in_flight = out.sent_serial
        else:
            head = _EMPTY_META + head
        self._pending[out.sent_serial] = out
        self._emit(out.sent_serial, [head, out.params])

    def feed(self, data: bytes) -> list[CallResponse]:
        self._receive(data)
        responses: list[CallResponse] = []
        while (pack := self._next_pack()) is not None:
            try:
                resp = self._on_pack(pack)
            except RemoteProtocolError as exc:
                raise self._fail(exc) from exc
            if resp is not None:
                responses.append(resp)
        return responses

    def _on_pack(self, pack: Pack) -> CallResponse | None:
        out = self._pending.pop(pack.serial, None)
        if out is None:
            raise RemoteProtocolError(f"reply with serial {pack.serial} matches no request")
        data, pos = pack.payload, 0
        if pack.serial == self._hs.in_flight:
            pos = self._handshake_reply(out, data)
            if not self.established:
                return None
        meta, pos = codec.decode(CALL_META, data, pos)
        if pos >= len(data):
            raise RemoteProtocolError(f"reply to {out.message.name} has no error flag")
        flag, pos = data[pos], pos + 1
        server_msg = None
        if self.server_protocol is not None:
            server_msg = self.server_protocol.messages.get(out.message.name)
        if flag == 0:
            writer = server_msg.response if server_msg else None
            value, pos = codec.decode(out.message.response, data, pos, writer)
            result = CallResponse(out.serial, out.message.name, value=value["value"], meta=meta)
        elif flag == 1:
            writer = server_msg.errors if server_msg else None
            err, pos = codec.decode(out.message.errors, data, pos, writer)
            result = CallResponse(out.serial, out.message.name, error=str(err["value"]),
                                  meta=meta)
        else:
            raise RemoteProtocolError(f"reply flag {flag} is not a boolean")
        if pos != len(data):
            raise RemoteProtocolError(f"{len(data) - pos} unexpected bytes after the reply")
        return result

    def _handshake_reply(self, out: _Outgoing, data: bytes) -> int:
        resp, pos = codec.decode(HANDSHAKE_RESPONSE, data, 0)
        self._hs.in_flight = None
        match = resp["match"]
        if match != "BOTH":
            if resp["serverProtocol"] is None or resp["serverHash"] is None:
                raise RemoteProtocolError(f"handshake {match} without the server's protocol")
            self.server_hash = resp["serverHash"]
            server = Protocol(resp["serverProtocol"])
            self.server_protocol = None if _same_shape(server, self.protocol) else server
        if match == "NONE":
            if out.with_protocol:
                raise RemoteProtocolError("server refused the handshake although we sent our "
                                          "protocol (match NONE twice)")
            out.with_protocol = True
            self._send(out, handshake=True, resend=True)
            return pos
        self.established = True
        queued, self._hs.queued = self._hs.queued, []
        for q in queued:
            self._send(q)
        return pos


PROTOCOLS = {"flume": AVRO_SOURCE_PROTOCOL, "spark": SPARK_FLUME_PROTOCOL}
