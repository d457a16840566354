"""The unit of data that flows through agents and consumers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Event:
    """A Flume event: string headers and an opaque byte body.

    Mutable on purpose: interceptors rewrite headers in place, as Flume's do, and
    slots keep millions of them cheap.
    """

    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def size(self) -> int:
        """Bytes counted against a channel's byteCapacity (bodies only, as Flume counts)."""
        return len(self.body)


def to_avro(event: Event) -> dict[str, object]:
    """The AvroFlumeEvent / SparkSinkEvent record for ``event``."""
    return {"headers": event.headers, "body": event.body}


def from_avro(record: dict[str, object]) -> Event:
    return Event(record["headers"], record["body"])  # type: ignore[arg-type]
