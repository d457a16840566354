"""PURE line parsers: an event body (a ``str``) -> a record (``dict`` of fields) or ``None``.

``None`` means "malformed": the job counts it and moves on, because one bad log line must never
stop a daemon that is chewing through millions. Parsers are built once per job from the
validated spec and then called per event, so all compilation (regexes, column lists) happens up
front.

Field names per parser:

* ``apache_common``: host, ident, user, time, method, url, protocol, status, bytes
* ``apache_combined``: the above plus referrer, agent
* ``json``: the object's top-level keys (a body that is not a JSON object is malformed)
* ``regex``: the pattern's named groups (``re.search``; no match is malformed)
* ``csv``: the configured ``columns`` (a row with a different number of cells is malformed)
* ``raw``: ``body``

``status`` and ``bytes`` are integers (``-`` bytes, Apache's "nothing sent", is 0).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "APACHE_COMBINED",
    "APACHE_COMMON",
    "PARSER_TYPES",
    "Parser",
    "apache_combined",
    "apache_common",
    "make_csv_parser",
    "make_parser",
    "make_regex_parser",
    "parse_json",
    "parse_raw",
]

Record = dict[str, Any]
Parser = Callable[[str], Record | None]

# %h %l %u %t "%r" %>s %b  (the request line may lack the protocol: HTTP/0.9 or a bad client)
_COMMON = (r'^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] '
           r'"(?P<method>\S+) (?P<url>\S+)\s*(?P<protocol>\S*)" (?P<status>\d{3}) '
           r'(?P<bytes>\d+|-)')
APACHE_COMMON = re.compile(_COMMON + r'\s*$')
APACHE_COMBINED = re.compile(
    _COMMON + r' "(?P<referrer>[^"]*)" "(?P<agent>[^"]*)"\s*$')


def _apache(pattern: re.Pattern[str]) -> Parser:
    match = pattern.match

    def parse(line: str) -> Record | None:
        m = match(line)
        if m is None:
            return None
        rec = m.groupdict()
        rec["status"] = int(rec["status"])
        b = rec["bytes"]
        rec["bytes"] = 0 if b == "-" else int(b)
        return rec

    return parse


apache_common: Parser = _apache(APACHE_COMMON)
apache_combined: Parser = _apache(APACHE_COMBINED)


def parse_json(line: str) -> Record | None:
    """A JSON object per line; arrays, scalars and broken JSON are malformed."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_raw(line: str) -> Record | None:
    return {"body": line}


def make_regex_parser(pattern: str) -> Parser:
    """Named groups become fields; raises ``re.error`` for a bad pattern (validation's job)."""
    search = re.compile(pattern).search

    def parse(line: str) -> Record | None:
        m = search(line)
        return None if m is None else m.groupdict()

    return parse


def make_csv_parser(columns: Sequence[str], delimiter: str = ",") -> Parser:
    """One CSV row per event (quoting as Python's csv module / RFC 4180)."""
    names = list(columns)
    width = len(names)

    def parse(line: str) -> Record | None:
        try:
            rows = list(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error:
            return None
        if len(rows) != 1 or len(rows[0]) != width:
            return None
        return dict(zip(names, rows[0], strict=True))

    return parse


PARSER_TYPES = ("apache_combined", "apache_common", "json", "regex", "csv", "raw")


def make_parser(kind: str, pattern: str | None = None, columns: Sequence[str] = (),
                delimiter: str = ",") -> Parser:
    """The parser for a validated spec (unknown kinds are rejected by validation first)."""
    if kind == "apache_combined":
        return apache_combined
    if kind == "apache_common":
        return apache_common
    if kind == "json":
        return parse_json
    if kind == "raw":
        return parse_raw
    if kind == "regex":
        assert pattern is not None
        return make_regex_parser(pattern)
    if kind == "csv":
        return make_csv_parser(columns, delimiter)
    raise ValueError(f"unknown parser {kind!r}")
