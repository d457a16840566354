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
        out: list[tuple[int, bytes]] = []
        data = self.data
        pos = 0
        size = len(data)
        while len(out) < limit and pos < size:
            nl = data.find(b"\n", pos)
            if nl < 0:
                if final:
                    out.append((self.start + pos, bytes(data[pos:])))
                    pos = size
                break
            end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
            out.append((self.start + pos, bytes(data[pos:end])))
            pos = nl + 1
        if pos:
            del data[:pos]
            self.start += pos
        return out
