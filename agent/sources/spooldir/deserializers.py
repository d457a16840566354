"""Pure deserializers: file bytes in, event bodies out, with exact byte marks.

No I/O here. The reader feeds blocks of a file with ``feed()`` and ``end_input()``, takes
bodies with ``take(n)``, and persists ``mark`` (the file offset just after the last body
taken) once the channel has committed them. Resuming means building a new deserializer with
``start=mark`` and feeding the file from that offset.

Speed comes from working on whole blocks: the LINE deserializer splits a block with one
``bytes.split`` and, when the input is valid UTF-8 (or ASCII) going out as UTF-8, the raw
lines *are* the bodies. Only lines that need care (too long, undecodable, or another charset)
take the slower per-line path, which follows Flume's LineDeserializer exactly:

- lines end at ``\\n`` only; ``\\r`` stays in the body; the ``\\n`` is not part of the body;
- a last line without ``\\n`` is an event; an empty line is an empty event;
- ``maxLineLength`` counts Java chars (UTF-16 code units): a longer line is cut into pieces of
  that many chars, and a line of exactly N*maxLineLength chars ended by ``\\n`` is followed by
  an extra empty event (Flume stops reading at the limit and the ``\\n`` then reads as an
  empty line). A cut through a surrogate pair leaves a lone surrogate, which the output
  charset writes as ``?`` as Java's ``String.getBytes`` does.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

_BIG_LINE_BYTES = 1 << 20  # a line still unterminated after this many bytes is cut in place


class DecodeFailure(Exception):
    """Bytes that cannot be decoded under decodeErrorPolicy=FAIL, at file offset ``offset``."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"undecodable input at byte offset {offset}: {reason}")
        self.offset = offset


def _units(text: str) -> int:
    """Length in Java chars (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class LineDeserializer:
    """Flume's LINE deserializer over byte blocks (see module docstring)."""

    def __init__(
        self,
        *,
        max_line_length: int = 2048,
        input_charset: str = "utf-8",
        output_charset: str = "utf-8",
        errors: str = "strict",
        start: int = 0,
    ) -> None:
        self.max_line_length = max_line_length
        self.input_charset = codecs.lookup(input_charset).name
        self.output_charset = codecs.lookup(output_charset).name
        self.errors = errors
        self.mark = start
        self._same_utf8 = self.input_charset == self.output_charset == "utf-8"
        self._buf = b""
        self._buf_start = start  # file offset of self._buf[0]
        self._bodies: list[bytes] = []
        self._costs: list[int] | None = None  # None: body i consumed len(body) + 1 bytes
        self._pos = 0
        self._error: DecodeFailure | None = None  # raised once the bodies before it are taken
        self._ended = False
        self.first_cut: int | None = None  # file offset of the first line cut at the limit

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._ended:
            raise RuntimeError("feed() after end_input()")
        if self._error is not None or not data:
            return
        buf = self._buf + data if self._buf else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._buf = buf
            if len(buf) >= max(_BIG_LINE_BYTES, 8 * self.max_line_length):
                self._cut_big_line()
            return
        block, self._buf = buf[:cut], buf[cut + 1 :]
        start = self._buf_start
        self._buf_start = start + cut + 1
        self._split_block(block, start)

    def end_input(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._buf and self._error is None:
            bodies, costs, failure = self._slow_line(self._buf, self._buf_start, terminated=False)
            self._append(bodies, costs)
            self._error = failure
        self._buf = b""

    # -- output --------------------------------------------------------------------------
    def ready(self) -> int:
        """Bodies available without more input."""
        return len(self._bodies) - self._pos

    @property
    def input_ended(self) -> bool:
        return self._ended

    @property
    def exhausted(self) -> bool:
        """No more bodies will come (input ended and all taken, or a decode failure is due)."""
        return self.ready() == 0 and (self._ended or self._error is not None)

    @property
    def finished(self) -> bool:
        """Every body of the input was taken and none failed to decode."""
        return self._ended and self.ready() == 0 and self._error is None

    def take(self, n: int) -> list[bytes]:
        """Up to ``n`` bodies; raises DecodeFailure when the next body cannot be decoded."""
        pos = self._pos
        out = self._bodies[pos : pos + n]
        if not out and self._error is not None:
            raise self._error
        if self._costs is None:
            self.mark += sum(map(len, out)) + len(out)
        else:
            self.mark += sum(self._costs[pos : pos + len(out)])
        self._pos = pos + len(out)
        return out

    # -- internals -----------------------------------------------------------------------
    def _append(self, bodies: list[bytes], costs: list[int] | None) -> None:
        if self._pos:
            self._bodies = self._bodies[self._pos :]
            if self._costs is not None:
                self._costs = self._costs[self._pos :]
            self._pos = 0
        if not self._bodies:
            self._bodies, self._costs = bodies, costs
            return
        if self._costs is None and costs is None:
            self._bodies += bodies
            return
        mine = self._costs if self._costs is not None else [len(b) + 1 for b in self._bodies]
        theirs = costs if costs is not None else [len(b) + 1 for b in bodies]
        self._bodies += bodies
        self._costs = mine + theirs

    def _split_block(self, block: bytes, start: int) -> None:
        """``block`` holds whole lines (the final ``\\n`` already removed) at offset ``start``."""
        lines = block.split(b"\n")
        if (
            self._same_utf8
            and max(map(len, lines)) < self.max_line_length
            and (block.isascii() or _valid_utf8(block))
        ):
            self._append(lines, None)  # chars <= bytes < limit: no line reaches the limit
            return
        bodies: list[bytes] = []
        costs: list[int] = []
        offset = start
        for line in lines:
            got, got_costs, failure = self._slow_line(line, offset, terminated=True)
            bodies += got
            costs += got_costs
            if failure is not None:
                self._error = failure
                self._buf = b""
                break
            offset += len(line) + 1
        self._append(bodies, costs)

    def _slow_line(
        self, raw: bytes, offset: int, *, terminated: bool
    ) -> tuple[list[bytes], list[int], DecodeFailure | None]:
        """Bodies and byte costs of one line (``raw`` excludes its ``\\n``)."""
        try:
            text = raw.decode(self.input_charset, self.errors)
        except UnicodeDecodeError as exc:
            return [], [], DecodeFailure(offset + exc.start, f"{exc.reason} ({self.input_charset})")
        newline = 1 if terminated else 0
        if not text:
            if terminated:
                return [b""], [len(raw) + newline], None
            return [], [], None
        units = _units(text)
        if units < self.max_line_length or (units == self.max_line_length and not terminated):
            return [self._encode(text)], [len(raw) + newline], None
        pieces = _pieces(text, self.max_line_length)
        if self.first_cut is None:
            self.first_cut = offset
        byte_end = self._byte_end_function(raw, text)
        bodies, costs, done = [], [], 0
        for piece, end_char in pieces:
            end = byte_end(end_char)
            bodies.append(self._encode(piece))
            costs.append(end - done)
            done = end
        if terminated:
            last_units = _units(pieces[-1][0])
            if last_units == self.max_line_length:
                bodies.append(b"")  # Flume's exact-length edge: the "\n" reads as an empty line
                costs.append(len(raw) - done + 1)
            else:
                costs[-1] += len(raw) - done + 1
        else:
            costs[-1] += len(raw) - done
        return bodies, costs, None

    def _cut_big_line(self) -> None:
        """Emit the complete maxLineLength pieces of a huge unterminated line, keep the rest."""
        raw = self._buf
        decoder = codecs.getincrementaldecoder(self.input_charset)(self.errors)
        try:
            text = decoder.decode(raw)
        except UnicodeDecodeError as exc:
            self._error = DecodeFailure(
                self._buf_start + exc.start, f"{exc.reason} ({self.input_charset})"
            )
            self._buf = b""
            return
        pieces = _pieces(text, self.max_line_length)
        if len(pieces) < 2:
            return
        if self.first_cut is None:
            self.first_cut = self._buf_start
        keep_from = pieces[-2][1]  # char index where the last (possibly short) piece starts
        consumed_text = text[:keep_from]
        consumed = len(consumed_text.encode(self.input_charset, "surrogatepass"))
        if consumed_text.encode(self.input_charset, "surrogatepass") != raw[:consumed]:
            return  # not a clean round trip (replaced bytes): wait for the newline instead
        byte_end = self._byte_end_function(raw, text)
        bodies, costs, done = [], [], 0
        for piece, end_char in pieces[:-1]:
            end = byte_end(end_char)
            bodies.append(self._encode(piece))
            costs.append(end - done)
            done = end
        self._buf = raw[consumed:]
        self._buf_start += consumed
        self._append(bodies, costs)

    def _byte_end_function(self, raw: bytes, text: str) -> Callable[[int], int]:
        """Map "first k chars of text" to the number of input bytes they came from."""
        cs = self.input_charset
        try:
            clean = text.encode(cs) == raw
        except UnicodeEncodeError:
            clean = False
        if clean:
            state = [0, 0]  # chars and bytes already measured: pieces are asked for in order

            def clean_end(k: int) -> int:
                if k < state[0]:
                    state[0] = state[1] = 0
                state[1] += len(text[state[0] : k].encode(cs))
                state[0] = k
                return state[1]

            return clean_end
        # Replaced or dropped bytes: decode byte by byte to learn where each char ended.
        ends: list[int] = []
        decoder = codecs.getincrementaldecoder(cs)(self.errors)
        for i in range(len(raw)):
            ends.extend([i + 1] * len(decoder.decode(raw[i : i + 1])))
        ends.extend([len(raw)] * len(decoder.decode(b"", final=True)))
        return lambda k: ends[k - 1] if k else 0

    def _encode(self, text: str) -> bytes:
        return text.encode(self.output_charset, "replace")


def _valid_utf8(block: bytes) -> bool:
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _pieces(text: str, max_units: int) -> list[tuple[str, int]]:
    """Cut ``text`` into pieces of ``max_units`` Java chars: (piece, char index where it ends).

    A surrogate pair cut in two gives a piece ending in the high surrogate; the end index
    then counts the whole character, and the next piece starts with the low surrogate.
    """
    if _units(text) == len(text):  # no astral characters: chars are code units
        return [
            (text[i : i + max_units], min(i + max_units, len(text)))
            for i in range(0, len(text), max_units)
        ]
    out: list[tuple[str, int]] = []
    current: list[str] = []
    units = 0
    for index, ch in enumerate(text):
        if ch > "\uffff":
            if units + 2 > max_units:  # only one unit fits: split the pair
                high = chr(0xD800 + ((ord(ch) - 0x10000) >> 10))
                low = chr(0xDC00 + ((ord(ch) - 0x10000) & 0x3FF))
                current.append(high)
                out.append(("".join(current), index + 1))
                current, units = [low], 1
            else:
                current.append(ch)
                units += 2
        else:
            current.append(ch)
            units += 1
        if units == max_units:
            out.append(("".join(current), index + 1))
            current, units = [], 0
    if current:
        out.append(("".join(current), len(text)))
    return out


class BlobDeserializer:
    """Flume's BlobDeserializer: the whole file as one body, cut every ``max_blob_length`` bytes."""

    def __init__(self, *, max_blob_length: int = 100_000_000, start: int = 0) -> None:
        self.max_blob_length = max_blob_length
        self.mark = start
        self.first_cut: int | None = None  # blobs are cut by design: never reported
        self._buf = bytearray()
        self._bodies: list[bytes] = []
        self._ended = False

    def feed(self, data: bytes) -> None:
        if self._ended:
            raise RuntimeError("feed() after end_input()")
        self._buf += data
        size = self.max_blob_length
        while len(self._buf) >= size:
            self._bodies.append(bytes(self._buf[:size]))
            del self._buf[:size]

    def end_input(self) -> None:
        if not self._ended and self._buf:
            self._bodies.append(bytes(self._buf))
            self._buf.clear()
        self._ended = True

    def ready(self) -> int:
        return len(self._bodies)

    @property
    def input_ended(self) -> bool:
        return self._ended

    @property
    def exhausted(self) -> bool:
        return self._ended and not self._bodies

    @property
    def finished(self) -> bool:
        return self.exhausted

    def take(self, n: int) -> list[bytes]:
        out, self._bodies = self._bodies[:n], self._bodies[n:]
        self.mark += sum(map(len, out))
        return out
