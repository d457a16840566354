"""Lines out of a growing file, pure: what Flume's TailFile reads, over bytes we hand it.

``LineBuffer`` keeps the bytes read from one file past the committed position. ``lines(n)``
returns up to ``n`` complete lines (``\\n``-terminated; a ``\\r`` before the ``\\n`` is dropped)
with the offset where each starts; a last line without its newline is held back until more
arrives, or returned by ``lines(n, final=True)`` when the file has gone idle (as Flume does
when it closes an idle file). Offsets are absolute file positions, so ``byteOffsetHeader`` and
the position file come straight from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LineBuffer:
    start: int = 0  # file offset of data[0]: the next byte not yet handed out as a line
    data: bytearray = field(default_factory=bytearray)

    @property
    def end(self) -> int:
        """File offset just past the buffered bytes (where the next read starts)."""
        return self.start + len(self.data)

    def reset(self, offset: int) -> None:
        """Forget everything (truncation, a rewind after a refused batch...)."""
        self.start = offset
        self.data.clear()

    def append(self, chunk: bytes) -> None:
        self.data += chunk

    def has_line(self) -> bool:
        return b"\n" in self.data

    def lines(self, limit: int, final: bool = False) -> list[tuple[int, bytes]]:
        """Up to ``limit`` lines as ``(offset, body)``; consumes them from the buffer."""
        bodies, offsets = self.take(limit, final, offsets=True)
        return list(zip(offsets, bodies, strict=True))

    def take(self, limit: int, final: bool = False,
             offsets: bool = False) -> tuple[list[bytes], list[int]]:
        """Up to ``limit`` line bodies, and their start offsets when ``offsets`` (else an
        empty list); consumes them (one C split for the batch, no per-line slicing)."""
        data = self.data
        start = self.start
        end, found, find = 0, 0, data.find  # end: just past the last line taken
        while found < limit:
            nl = find(b"\n", end)
            if nl < 0:
                break
            end, found = nl + 1, found + 1
        if end == 0:
            if not (final and data):
                return [], []
            self.start += len(data)
            body = bytes(data)
            data.clear()
            return [body], [start] if offsets else []
        bodies = bytes(data[:end - 1]).split(b"\n")
        consumed = end
        if final and found < limit and end < len(data):
            bodies.append(bytes(data[end:]))  # the unfinished last line, as it is
            consumed = len(data)
        starts: list[int] = []
        if offsets:
            position = start
            for body in bodies:
                starts.append(position)
                position += len(body) + 1
        if b"\r" in data[:consumed]:  # a \r before \n is not part of the line
            complete = len(bodies) if consumed <= end else len(bodies) - 1
            bodies[:complete] = [b[:-1] if b[-1:] == b"\r" else b for b in bodies[:complete]]
        del data[:consumed]
        self.start += consumed
        return bodies, starts
