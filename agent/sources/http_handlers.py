"""The http source's handlers, pure: a request body -> events, or a ``BadRequest``.

``JSONHandler`` (Flume's default): the body is a JSON array of ``{"headers": {...}, "body":
"..."}``; the charset comes from the Content-Type (UTF-8 when absent; UTF-8, UTF-16 and UTF-32
only) and each body string is encoded back in that charset, as Flume's JSONEvent does. Header
values that are JSON numbers or booleans become their text; ``null`` headers are dropped.

The events and decoded bytes of a JSON request are bounded (``max-events-per-call``,
``max-call-bytes``, as on the avro listeners; 413 past them). A body over 1 MiB is decoded one
array element at a time and refused as soon as it passes a limit: decoded whole, 62 MiB of
small events took 981 MiB, element by element 73 MiB before the refusal. Smaller bodies are
decoded whole (2.4 times faster; at most a few MiB) and counted after.

``BlobHandler``: the whole body is one event; ``Content-Type`` and the query parameters become
headers. A body longer than ``maxBlobLength`` is refused (413) where Flume silently cuts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from protocol.event import Event
from protocol.eventarray import EVENT_OVERHEAD, HEADER_OVERHEAD
from protocol.limits import ListenerLimits

JSON_HANDLER = "org.apache.flume.source.http.JSONHandler"
BLOB_HANDLER = "org.apache.flume.sink.solr.morphline.BlobHandler"
DEFAULT_MAX_BLOB_LENGTH = 100_000_000
JSON_MAX_BYTES = 64 * 1024 * 1024  # one request is one channel transaction anyway
MAX_EVENTS = ListenerLimits.max_events_per_call
MAX_DECODED_BYTES = ListenerLimits.max_call_bytes
_SPACE = re.compile(r"[ \t\n\r]*")
WHOLE_DECODE_BYTES = 1 << 20


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


def _reject_syntax(message: str) -> BadRequest:
    return BadRequest(f"Request has invalid JSON Syntax: {message}")


def _array_items(text: str, decoder: json.JSONDecoder) -> Iterator[object]:
    """The elements of the JSON array ``text``, decoded one at a time."""
    pos = _SPACE.match(text).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] != "[":
        decoder.decode(text)  # a syntax error is reported as such
        raise _reject_syntax("expected an array of events")
    pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            item, pos = decoder.raw_decode(text, pos)
            yield item
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            sep = text[pos:pos + 1]
            if sep == "]":
                pos += 1
                break
            if sep != ",":
                raise _reject_syntax(f"expected ',' or ']' at character {pos}")
            pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
    if _SPACE.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise _reject_syntax(f"extra data at character {pos}")


def _worst_decoded_size(chars: int, events: int) -> int:
    """An upper bound of what ``events`` events from ``chars`` characters of JSON decode to:
    every character a 4-byte body byte, and a header for every 5 characters ('"":"",')."""
    return events * EVENT_OVERHEAD + 4 * chars + (chars // 5 + 1) * HEADER_OVERHEAD


@dataclass(frozen=True)
class JsonHandler:
    max_bytes: int = JSON_MAX_BYTES
    max_events: int = MAX_EVENTS
    max_decoded_bytes: int = MAX_DECODED_BYTES

    def events(self, body: bytes, content_type: str | None,
               query: Mapping[str, str] | None = None) -> list[Event]:
        charset = (charset_of(content_type) or "UTF-8").lower()
        if charset not in _JSON_CHARSETS:
            raise BadRequest(f"Unsupported charset {charset}: the JSON handler supports UTF-8, "
                             "UTF-16 and UTF-32 only.")
        if len(body) > self.max_bytes:
            raise TooLarge(f"request body of {len(body)} bytes exceeds {self.max_bytes}")
        try:
            text = _decode(body, charset)
        except UnicodeDecodeError as exc:
            raise _reject_syntax(str(exc)) from None
        decoder = json.JSONDecoder(parse_int=str, parse_float=str,
                                   parse_constant=_reject_constant)
        try:
            if len(text) > WHOLE_DECODE_BYTES:
                return self._events(_array_items(text, decoder), _encoder(charset), True)
            data = decoder.decode(text)
            if not isinstance(data, list):
                raise _reject_syntax("expected an array of events")
            # Counting each event's size is skipped when even the worst case fits the limit.
            return self._events(iter(data), _encoder(charset),
                                _worst_decoded_size(len(text), len(data)) > self.max_decoded_bytes)
        except BadRequest:
            raise
        except ValueError as exc:
            raise _reject_syntax(str(exc)) from None

    def _events(self, items: Iterator[object], encode: Callable[[str], bytes],
                count_bytes: bool) -> list[Event]:
        events = []
        decoded = 0
        max_events = self.max_events
        for i, item in enumerate(items):
            if i >= max_events:
                raise TooLarge(f"request of more than {self.max_events} events (the source's "
                               "max-events-per-call)")
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
            body = encode(text) if text else b""
            if count_bytes:
                decoded += EVENT_OVERHEAD + len(body) + sum(
                    HEADER_OVERHEAD + len(k) + len(v) for k, v in headers.items())
                if decoded > self.max_decoded_bytes:
                    raise TooLarge(f"request decoding to more than {self.max_decoded_bytes} "
                                   "bytes (the source's max-call-bytes)")
            events.append(Event(headers, body))
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


def make_handler(name: str, options: Mapping[str, str], *, max_events: int = MAX_EVENTS,
                 max_decoded_bytes: int = MAX_DECODED_BYTES) -> Handler:
    """The handler for Flume's ``handler`` value (class name; simple names accepted too);
    the limits bound what one JSON request may decode to."""
    simple = name.strip().rsplit(".", 1)[-1]
    if simple == "JSONHandler":
        return JsonHandler(max_events=max_events, max_decoded_bytes=max_decoded_bytes)
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
