"""The unit of data that flows through agents and consumers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn


class SharedHeaders(dict[str, str]):
    """A header map several events hold at once (an empty map, one file's headers, the
    same map decoded from consecutive events of a call). Read-only: an event copies it to a
    plain dict the first time ``Event.headers`` is asked for, so an interceptor's edit
    never reaches the other events. Sharing is what keeps a full channel small: an empty
    dict per event costs 64 bytes, half a 135-byte line."""

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("shared event headers are read-only: edit Event.headers, which "
                        "copies them first")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _read_only
    __ior__ = _read_only

    def __reduce__(self) -> tuple[Any, ...]:  # pickle's default refills through __setitem__
        return (SharedHeaders, (dict(self),))

    def __copy__(self) -> SharedHeaders:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedHeaders:
        return self


EMPTY_HEADERS = SharedHeaders()


class Event:
    """A Flume event: string headers and an opaque byte body.

    Mutable on purpose: interceptors rewrite headers in place, as Flume's do, and slots keep
    millions of them cheap. ``headers`` is always the event's own dict (a shared map is
    copied on first use: copy-on-write); code that only reads and must not pay for that
    copy uses ``header_map``.
    """

    __slots__ = ("_headers", "body")
    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __init__(self, headers: Mapping[str, str] | None = None, body: bytes = b"") -> None:
        # an empty map is the shared one: no dict per event for the common header-less event
        self._headers: dict[str, str] = headers or EMPTY_HEADERS  # type: ignore[assignment]
        self.body = body

    @property
    def headers(self) -> dict[str, str]:
        """The event's own header dict, to read or edit in place."""
        h = self._headers
        if type(h) is not dict:  # shared (or another mapping): copy before anyone edits it
            h = self._headers = dict(h)
        return h

    @headers.setter
    def headers(self, value: dict[str, str]) -> None:
        self._headers = value

    @property
    def header_map(self) -> Mapping[str, str]:
        """The headers for reading only, without copying a shared map."""
        return self._headers

    def size(self) -> int:
        """Bytes counted against a channel's byteCapacity (bodies only, as Flume counts)."""
        return len(self.body)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.body == other.body and self._headers == other._headers

    def __repr__(self) -> str:
        return f"Event(headers={dict(self._headers)!r}, body={self.body!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Event, (self._headers, self.body))


def shared_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as one map many events may hold (see :class:`SharedHeaders`)."""
    if not headers:
        return EMPTY_HEADERS
    return headers if type(headers) is SharedHeaders else SharedHeaders(headers)


def events_with(headers: Mapping[str, str], bodies: Iterable[bytes]) -> list[Event]:
    """One event per body, all holding ``headers`` as one shared map (a source's batch of
    lines from one file): no dict per event, and an edit still stays in its event."""
    shared = shared_headers(headers)
    new = object.__new__
    out: list[Event] = []
    append = out.append
    for body in bodies:  # the slots set here: a call to __init__ per line costs ~30 % more
        event = new(Event)
        event._headers = shared
        event.body = body
        append(event)
    return out


def to_avro(event: Event) -> dict[str, object]:
    """The AvroFlumeEvent / SparkSinkEvent record for ``event``."""
    return {"headers": event.header_map, "body": event.body}


def from_avro(record: dict[str, object]) -> Event:
    return Event(record["headers"], record["body"])  # type: ignore[arg-type]
