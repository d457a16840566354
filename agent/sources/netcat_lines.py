"""Netcat line splitting, pure: bytes in the source's ``encoding`` -> UTF-8 event bodies.

Flume's NetcatSource reads characters into a buffer of ``max-line-length`` chars: a line fits
when its characters plus the newline do. A line that does not fit ends the connection with
``FAILED: Event exceeds the maximum length (N chars, including newline)``; the lines before it
are delivered. Bodies are the line's text encoded as UTF-8 whatever the input encoding (as
Flume does), without the ``\\n`` (a ``\\r`` before it stays, as in Flume).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

DEFAULT_MAX_LINE_LENGTH = 512


def too_long_reply(max_line_length: int) -> bytes:
    return (f"FAILED: Event exceeds the maximum length ({max_line_length} chars, "
            f"including newline)\n").encode()


@dataclass
class NetcatLines:
    """One connection's decoder. ``feed`` raises UnicodeDecodeError on undecodable input."""

    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    encoding: str = "utf-8"
    overflow: bool = False  # a line did not fit: the caller answers FAILED and closes
    _pending: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder(self.encoding)("strict")

    def feed(self, data: bytes) -> list[bytes]:
        """Complete lines in ``data`` (after what earlier calls left over)."""
        if self.overflow:
            return []
        text = self._pending + self._decoder.decode(data)
        limit = self.max_line_length
        parts = text.split("\n")
        self._pending = parts.pop()
        lines: list[bytes] = []
        for part in parts:
            if len(part) >= limit:
                self.overflow = True
                self._pending = ""
                return lines
            lines.append(part.encode("utf-8"))
        if len(self._pending) >= limit:
            self.overflow = True
            self._pending = ""
        return lines

    @property
    def pending(self) -> int:
        """Characters of an unfinished line held back."""
        return len(self._pending)

    def finish(self) -> list[bytes]:
        """At end of input: a last line without its newline (Flume drops it; we deliver it)."""
        if self.overflow:
            return []
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return [rest.encode("utf-8")] if rest else []


def datagram_lines(data: bytes) -> list[bytes]:
    """A netcatudp datagram's events: one per line (a final newline ends the last line)."""
    lines = data.split(b"\n")
    if len(lines) > 1 and not lines[-1]:
        lines.pop()
    return lines
