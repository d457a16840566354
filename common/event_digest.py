"""The content digest that recognises an event the agent serves again (push and pull).

An agent redelivers a rolled-back or unacknowledged batch under a new sequence number, so a
redelivered event can be told from a new one only by its headers and body. The encoding
hashed here is injective (a count, then each header key and value and the body, each
length-prefixed): with plain separators, ``{"a": "b"}`` + ``c`` and no headers + ``a\\0b\\0c``
hashed the same, and a new event could be dropped as a redelivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["event_digest"]


def _sized(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def event_digest(headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes,
                 size: int = 16) -> bytes:
    """``size`` bytes of BLAKE2b over the event's content; header order does not matter."""
    items = sorted(headers.items() if isinstance(headers, Mapping) else headers)
    parts = [len(items).to_bytes(4, "big")]
    for key, value in items:
        parts.append(_sized(key.encode("utf-8", "surrogatepass")))
        parts.append(_sized(value.encode("utf-8", "surrogatepass")))
    parts.append(len(body).to_bytes(8, "big"))
    h = hashlib.blake2b(b"".join(parts), digest_size=size)
    h.update(body)
    return h.digest()
