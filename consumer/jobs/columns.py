"""PURE columnar parsing: a batch of event bodies -> one column per field a job reads.

The record path (:mod:`consumer.jobs.parsers`) turns one line into one dict; this module turns
a whole batch into polars columns at once and must give exactly the same values (property
tests hold the two together). ``parse_columns`` returns ``None`` when it cannot promise that
(a body that is not a string, a value that does not fit its column type): the caller then
runs the record path on that batch.

Apache lines are parsed without capturing the full pattern, because a regex engine that
captures (Rust's and RE2's alike) is slower on these lines than Python's own ``re``:

* ``valid``: the full pattern, with Python's ``\\s``/``\\d``/``\\S`` spelled out for ASCII, run
  as a match test (a DFA, no captures, about 0.5 µs a line);
* host, ident, user, time, method and URL are cut out by an anchored one-pass pattern: on a
  line the full pattern accepts, host, ident and user contain no whitespace, the time runs to
  the first ``]``, the method to the next space and the URL is the run of non-whitespace
  after it, unless that run ends with ``"`` (then Python's backtracking may end the URL one
  character earlier: such lines, rare, go to Python);
* status, bytes, referrer and agent come from the line's end: the last five quotes of a valid
  line are the ones around status/bytes, referrer and agent (none of those contain quotes).

Lines that are not pure ASCII (where Python's Unicode classes and Rust's differ at the edges)
and the few ambiguous ones are parsed by the record path's own parser, one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from consumer.jobs.parsers import Parser, make_parser
from consumer.jobs.spec import ParserSpec

__all__ = ["ColumnParser", "Columns", "make_column_parser"]

# Python's \s over ASCII (str patterns): \t \n \v \f \r, the four information separators
# \x1c-\x1f, and space. \d over ASCII is [0-9].
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f "
_S = f"[^{_WS}]"  # \S
_W = f"[{_WS}]"  # \s
_NOT_SPACE_WS = r"[\t\n\x0b\x0c\r\x1c-\x1f]"  # whitespace other than ' '

_COMMON_VALID = (rf'^{_S}+ {_S}+ {_S}+ \[[^\]]+\] "{_S}+ {_S}+{_W}*{_S}*" [0-9]{{3}} '
                 r"(?:[0-9]+|-)")
_VALID = {
    "apache_common": _COMMON_VALID + f"{_W}*$",
    "apache_combined": _COMMON_VALID + f' "[^"]*" "[^"]*"{_W}*$',
}
_HEAD_FIELDS = ("host", "ident", "user", "time", "method", "url")
_HEAD_PARTS = ("^{} ", "{} ", "{} ", r"\[{}\] ", '"{} ', "{}")
_HEAD_VALUES = ("[^ ]*", "[^ ]*", "[^ ]*", r"[^\]]*", "[^ ]*", "[^ ]*")
_TAIL_FIELDS = {
    "apache_common": ("status", "bytes"),
    "apache_combined": ("status", "bytes", "referrer", "agent"),
}
_TAIL = {
    "apache_common": rf'" ([0-9]{{3}}) ([0-9]+|-){_W}*$',
    "apache_combined": rf'" ([0-9]{{3}}) ([0-9]+|-) "([^"]*)" "([^"]*)"{_W}*$',
}
INT_FIELDS = frozenset({"status", "bytes"})


@dataclass
class Columns:
    """One batch, columnar: ``valid`` (the line parsed) and one column per field read.

    Values are what the record path's dict would hold (None for a field of a line that did
    not parse); ``n`` is the number of events."""

    n: int
    valid: pl.Series
    fields: dict[str, pl.Series]


ColumnParser = Callable[[Sequence[Any] | pl.Series], Columns | None]


def make_column_parser(spec: ParserSpec, needed: Sequence[str]) -> ColumnParser | None:
    """A batch parser for ``needed`` fields, or None when this parser has no columnar form
    (json: its values have no fixed type; the record path handles it)."""
    if spec.kind in _VALID:
        return _ApacheColumns(spec.kind, tuple(dict.fromkeys(needed)))
    if spec.kind in ("regex", "csv", "raw"):
        return _LineColumns(make_parser(spec.kind, spec.pattern, spec.columns, spec.delimiter),
                            tuple(dict.fromkeys(needed)))
    return None


def _bodies(bodies: Sequence[Any] | pl.Series) -> pl.Series | None:
    """The bodies as a string column; None if one is not a string (or not encodable)."""
    if isinstance(bodies, pl.Series):
        return bodies.alias("line") if bodies.dtype == pl.String else None
    try:
        return pl.Series("line", bodies, dtype=pl.String, strict=True)
    except (TypeError, ValueError, UnicodeError, pl.exceptions.PolarsError):
        return None


def _column(name: str, values: list[Any]) -> pl.Series | None:
    """Python values as a typed column: strings (with None) or integers that fit 64 bits."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds or kinds == {str}:
        return pl.Series(name, values, dtype=pl.String)
    if kinds == {int}:
        try:
            return pl.Series(name, values, dtype=pl.Int64, strict=True)
        except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
            return None
    return None


class _LineColumns:
    """Parsers without a columnar form of their own (regex, csv, raw): the record path's
    parser line by line, its values gathered into columns."""

    def __init__(self, parse: Parser, needed: tuple[str, ...]) -> None:
        self.parse = parse
        self.needed = needed

    def __call__(self, bodies: Sequence[Any] | pl.Series) -> Columns | None:
        parse = self.parse
        if isinstance(bodies, pl.Series):
            bodies = bodies.to_list()
        recs = [parse(b) if isinstance(b, str) else None for b in bodies]
        fields = {}
        for name in self.needed:
            col = _column(name, [None if r is None else r.get(name) for r in recs])
            if col is None:
                return None
            fields[name] = col
        return Columns(len(bodies), pl.Series("valid", [r is not None for r in recs]), fields)


class _ApacheColumns:
    def __init__(self, kind: str, needed: tuple[str, ...]) -> None:
        self.kind = kind
        self.needed = needed
        self.parse = make_parser(kind)
        self.valid_pattern = _VALID[kind]
        self.head = [f for f in _HEAD_FIELDS if f in needed]
        last = max((_HEAD_FIELDS.index(f) for f in self.head), default=-1)
        # one anchored, one-pass pattern capturing just the fields read
        self.head_pattern = "".join(
            part.format(f"(?<{name}>{value})" if name in self.head else value)
            for name, part, value in zip(_HEAD_FIELDS[:last + 1], _HEAD_PARTS[:last + 1],
                                         _HEAD_VALUES[:last + 1], strict=True))
        tail = [f for f in _TAIL_FIELDS[kind] if f in needed]
        self.tail = [(f, _TAIL_FIELDS[kind].index(f) + 1) for f in tail]
        # protocol would need Python's backtracking: jobs reading it parse line by line
        self.python_only = "protocol" in needed

    def __call__(self, bodies: Sequence[Any] | pl.Series) -> Columns | None:
        line = _bodies(bodies)
        if line is None:
            return None
        n = len(line)
        if self.python_only:
            fields = {name: pl.Series(name, [None] * n,
                                      dtype=pl.Int64 if name in INT_FIELDS else pl.String)
                      for name in self.needed}
            return self._patch(Columns(n, pl.Series("valid", [False] * n), fields),
                               list(range(n)), bodies)
        frame = self._frame(line)
        columns = Columns(n, frame["valid"], {name: frame[name] for name in self.needed})
        return self._patch(columns, frame["slow"].arg_true().to_list(), bodies)

    def _frame(self, line: pl.Series) -> pl.DataFrame:
        """valid, slow and the fields read (null where not valid), in two passes: every
        regex runs once over the lines, then cheap checks run over its results."""
        text = pl.col("line")
        first = [(text.str.len_bytes() == text.str.len_chars()).alias("ascii"),
                 text.str.contains(self.valid_pattern).alias("matched")]
        if self.head:
            first.append(text.str.extract_groups(self.head_pattern).alias("head"))
        for name, group in self.tail:
            first.append(text.str.extract(_TAIL[self.kind], group).alias(name))
        frame = pl.DataFrame([line]).select(first)
        if self.head:
            frame = frame.unnest("head")
        valid = (pl.col("ascii") & pl.col("matched")).fill_null(False)  # None bodies
        slow = ~pl.col("ascii").fill_null(True)
        if "url" in self.head:
            url = pl.col("url")
            slow = slow | (valid & (url.str.contains(_NOT_SPACE_WS) | url.str.ends_with('"')))
        second = [valid.alias("valid")]
        for name in self.head:
            second.append(pl.when(valid).then(pl.col(name)).alias(name))
        for name, _ in self.tail:
            value = pl.col(name)
            if name == "status":
                value = value.cast(pl.Int64)
            elif name == "bytes":  # '-' is 0; digits too long for 64 bits go to Python
                big = value.cast(pl.Int64, strict=False)
                slow = slow | (valid & (value != "-") & big.is_null())
                value = pl.when(value == "-").then(0).otherwise(big)
            second.append(pl.when(valid).then(value).alias(name))
        second.append(slow.alias("slow"))
        return frame.lazy().select(second).collect()

    def _patch(self, columns: Columns, slow: list[int], bodies: Sequence[Any] | pl.Series,
               ) -> Columns | None:
        """Overwrite the ``slow`` rows with what the record path's parser says."""
        if not slow:
            return columns
        parse = self.parse
        recs = [parse(bodies[i]) for i in slow]
        valid = columns.valid.clone().scatter(slow, [r is not None for r in recs])
        patched = {}
        for name, col in columns.fields.items():
            values = [None if r is None else r[name] for r in recs]
            if col.dtype == pl.Int64 and any(v is not None and not -2**63 <= v < 2**63
                                             for v in values):
                return None
            patched[name] = col.clone().scatter(slow, values)
        return Columns(columns.n, valid, patched)
