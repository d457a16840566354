"""Avro protocols (Flume's AvroSourceProtocol, Spark's SparkFlumeProtocol) and the IPC handshake.

The protocol texts are the exact JSON that Flume's and Spark's generated Java code embeds;
the handshake hash is the MD5 of that text, so real Flume answers our first handshake with
BOTH. Never hash a re-rendering of the protocol (see the reference, section 1.4).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from protocol import codec
from protocol.errors import RemoteProtocolError

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True)
class Message:
    """One RPC message; request params and response are wrapped in records for encoding."""

    name: str
    request: codec.Schema
    response: codec.Schema
    errors: codec.Schema
    param_names: tuple[str, ...]
    one_way: bool
    # "array" / "record" when the request is one parameter holding Flume events in Flume's
    # layout (decoded by protocol.eventarray, limits checked while decoding), else None
    events: str | None = None


class Protocol:
    """A parsed Avro protocol, identified on the wire by the MD5 of its exact text."""

    def __init__(self, text: str) -> None:
        try:
            doc = json.loads(text)
            self.name: str = doc["protocol"]
            self.namespace: str = doc.get("namespace") or ""
            self.messages = self._parse(doc)
        except RemoteProtocolError:
            raise
        except Exception as exc:
            raise RemoteProtocolError(f"unparseable Avro protocol text: {exc}") from exc
        self.text = text
        self.md5 = hashlib.md5(text.encode("utf-8")).digest()
        # Two protocols with the same shape need no schema resolution between them.
        self.shape = json.dumps({k: v for k, v in doc.items() if k != "doc"}, sort_keys=True)

    def _qualify(self, t: Any) -> Any:
        if isinstance(t, str) and t not in _PRIMITIVES and "." not in t and self.namespace:
            return f"{self.namespace}.{t}"
        return t

    def _parse(self, doc: dict[str, Any]) -> dict[str, Message]:
        named: dict[str, Any] = {}
        for t in doc.get("types", []):
            if isinstance(t, dict) and "namespace" not in t and self.namespace:
                t = {**t, "namespace": self.namespace}
            codec.parse(t, named)
        messages = {}
        for name, m in doc.get("messages", {}).items():
            fields = [{**f, "type": self._qualify(f["type"])} for f in m.get("request", [])]
            request = self._record(f"{name}_request", fields, named)
            response = self._record(
                f"{name}_response", [{"name": "value", "type": self._qualify(m["response"])}], named
            )
            declared = [self._qualify(e) for e in m.get("errors", [])]
            errors = self._record(
                f"{name}_errors", [{"name": "value", "type": ["string", *declared]}], named
            )
            messages[name] = Message(
                name, request, response, errors,
                tuple(f["name"] for f in fields), bool(m.get("one-way", False)),
                _event_layout(m.get("request", []), doc.get("types", [])),
            )
        return messages

    def _record(self, name: str, fields: list[dict[str, Any]], named: dict[str, Any]) -> Any:
        rec = {"type": "record", "name": f"{name}__flumelet", "fields": fields}
        if self.namespace:
            rec["namespace"] = self.namespace
        return codec.parse(rec, dict(named))

    def __repr__(self) -> str:
        return f"Protocol({self.name}, md5={self.md5.hex()})"


_EVENT_FIELDS = [("headers", {"type": "map", "values": "string"}), ("body", "bytes")]


def _event_layout(request: list[dict[str, Any]], types: list[Any]) -> str | None:
    """"array" or "record" if ``request`` is one parameter of Flume events (a record of
    ``headers: map<string>, body: bytes`` under any name, or an array of them)."""
    if len(request) != 1:
        return None
    records = {t["name"]: t for t in types if isinstance(t, dict) and t.get("type") == "record"}

    def is_event(t: Any) -> bool:
        rec = records.get(t.rsplit(".", 1)[-1]) if isinstance(t, str) else t
        return (isinstance(rec, dict) and rec.get("type") == "record"
                and [(f.get("name"), f.get("type")) for f in rec.get("fields", [])]
                == _EVENT_FIELDS)

    t = request[0].get("type")
    if isinstance(t, dict) and t.get("type") == "array" and is_event(t.get("items")):
        return "array"
    return "record" if is_event(t) else None


def _load(filename: str) -> str:
    return resources.files("protocol").joinpath(filename).read_text(encoding="utf-8")


def _without_doc(text: str) -> str:
    doc = json.loads(text)
    doc.pop("doc", None)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


AVRO_SOURCE_PROTOCOL = Protocol(_load("AvroSourceProtocol.json"))
SPARK_FLUME_PROTOCOL = Protocol(_load("SparkFlumeProtocol.json"))
# What peers built from a doc-less .avpr send (MD5 30da...): known up front, so such a
# client gets CLIENT/BOTH instead of paying the NONE round trip on every connection.
AVRO_SOURCE_PROTOCOL_NO_DOC = Protocol(_without_doc(AVRO_SOURCE_PROTOCOL.text))

_MD5 = {"type": "fixed", "name": "MD5", "namespace": "org.apache.avro.ipc", "size": 16}
_META = ["null", {"type": "map", "values": "bytes"}]
HANDSHAKE_REQUEST = codec.parse({
    "type": "record", "name": "HandshakeRequest", "namespace": "org.apache.avro.ipc",
    "fields": [
        {"name": "clientHash", "type": _MD5},
        {"name": "clientProtocol", "type": ["null", "string"]},
        {"name": "serverHash", "type": "MD5"},
        {"name": "meta", "type": _META},
    ],
})
HANDSHAKE_RESPONSE = codec.parse({
    "type": "record", "name": "HandshakeResponse", "namespace": "org.apache.avro.ipc",
    "fields": [
        {"name": "match", "type": {"type": "enum", "name": "HandshakeMatch",
                                   "symbols": ["BOTH", "CLIENT", "NONE"]}},
        {"name": "serverProtocol", "type": ["null", "string"]},
        {"name": "serverHash", "type": ["null", _MD5]},
        {"name": "meta", "type": _META},
    ],
})
CALL_META = codec.parse({"type": "map", "values": "bytes"})
