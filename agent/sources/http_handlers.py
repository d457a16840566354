"""The http source's handlers, pure: a request body -> events, or a ``BadRequest``.

``JSONHandler`` (Flume's default): the body is a JSON array of ``{"headers": {...}, "body":
"..."}``; the charset comes from the Content-Type (UTF-8 when absent; UTF-8, UTF-16 and UTF-32
only) and each body string is encoded back in that charset, as Flume's JSONEvent does. Header
values that are JSON numbers or booleans become their text; ``null`` headers are dropped.

``BlobHandler``: the whole body is one event; ``Content-Type`` and the query parameters become
headers. A body longer than ``maxBlobLength`` is refused (413) where Flume silently cuts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protocol.event import Event

JSON_HANDLER = "org.apache.flume.source.http.JSONHandler"
BLOB_HANDLER = "org.apache.flume.sink.solr.morphline.BlobHandler"
DEFAULT_MAX_BLOB_LENGTH = 100_000_000
JSON_MAX_BYTES = 64 * 1024 * 1024  # one request is one channel transaction anyway


class BadRequest(ValueError):
    """The client sent something the handler cannot turn into events (HTTP 400)."""


class TooLarge(BadRequest):
    """The body exceeds the handler's limit (HTTP 413)."""


def charset_of(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if any."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


# Java's names for the JSON charsets, and how Java encodes with them (UTF-16: BOM + big endian)
_JSON_CHARSETS = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-32": "utf-32-be"}


def _encoder(charset: str) -> Callable[[str], bytes]:
    if charset == "utf-16":
        return lambda text: b"\xfe\xff" + text.encode("utf-16-be", "replace")
    codec = _JSON_CHARSETS[charset]
    return lambda text: text.encode(codec, "replace")


def _decode(body: bytes, charset: str) -> str:
    if charset == "utf-16" and not body.startswith((b"\xfe\xff", b"\xff\xfe")):
        return body.decode("utf-16-be")  # Java's UTF-16 without a BOM is big endian
    if charset == "utf-32":
        return body.decode("utf-32-be" if not body.startswith(b"\xff\xfe\x00\x00")
                           else "utf-32")
    return body.decode(charset)


def _reject_constant(name: str) -> None:
    raise BadRequest(f"Request has invalid JSON Syntax: {name} is not JSON")


def _text(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    raise BadRequest(f"Request has invalid JSON Syntax: {where} must be a string, "
                     f"not {type(value).__name__}")


@dataclass(frozen=True)
class JsonHandler:
    max_bytes: int = JSON_MAX_BYTES

    def events(self, body: bytes, content_type: str | None,
               query: Mapping[str, str] | None = None) -> list[Event]:
        charset = (charset_of(content_type) or "UTF-8").lower()
        if charset not in _JSON_CHARSETS:
            raise BadRequest(f"Unsupported charset {charset}: the JSON handler supports UTF-8, "
                             "UTF-16 and UTF-32 only.")
        if len(body) > self.max_bytes:
            raise TooLarge(f"request body of {len(body)} bytes exceeds {self.max_bytes}")
        try:
            data = json.loads(_decode(body, charset), parse_int=str, parse_float=str,
                              parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, BadRequest):
                raise
            raise BadRequest(f"Request has invalid JSON Syntax: {exc}") from None
        if not isinstance(data, list):
            raise BadRequest("Request has invalid JSON Syntax: expected an array of events")
        encode = _encoder(charset)
        events = []
        for i, item in enumerate(data):
            if type(item) is not dict:
                raise BadRequest(f"Request has invalid JSON Syntax: event {i} is not an object")
            raw_headers = item.get("headers")
            if raw_headers is None:
                headers: dict[str, str] = {}
            elif type(raw_headers) is not dict:
                raise BadRequest(f"Request has invalid JSON Syntax: event {i}: headers must be "
                                 "an object")
            elif all(type(v) is str for v in raw_headers.values()):
                headers = raw_headers  # the common case: used as parsed
            else:
                headers = {}
                for key, value in raw_headers.items():
                    text = _text(value, f"event {i} header {key!r}")
                    if text is not None:
                        headers[key] = text
            value = item.get("body")
            text = value if type(value) is str else _text(value, f"event {i} body")
            events.append(Event(headers, encode(text) if text else b""))
        return events


@dataclass(frozen=True)
class BlobHandler:
    max_blob_length: int = DEFAULT_MAX_BLOB_LENGTH

    @property
    def max_bytes(self) -> int:
        return self.max_blob_length

    def events(self, body: bytes, content_type: str | None,
               query: Mapping[str, str] | None = None) -> list[Event]:
        if len(body) > self.max_blob_length:
            raise TooLarge(f"request body of {len(body)} bytes exceeds maxBlobLength "
                           f"{self.max_blob_length}")
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(query or {})
        return [Event(headers, body)]


Handler = JsonHandler | BlobHandler


def make_handler(name: str, options: Mapping[str, str]) -> Handler:
    """The handler for Flume's ``handler`` value (class name; simple names accepted too)."""
    simple = name.strip().rsplit(".", 1)[-1]
    if simple == "JSONHandler":
        return JsonHandler()
    if simple == "BlobHandler":
        raw = options.get("maxBlobLength", DEFAULT_MAX_BLOB_LENGTH)
        try:
            length = int(raw)
        except ValueError:
            raise ValueError(f"handler.maxBlobLength must be a number, got {raw!r}") from None
        if length <= 0:
            raise ValueError(f"handler.maxBlobLength must be greater than zero: {length}")
        return BlobHandler(length)
    raise ValueError(f"handler {name!r} is not supported (use {JSON_HANDLER} or "
                     f"{BLOB_HANDLER})")
