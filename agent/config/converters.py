"""String -> typed value converters for property values, each raising ConversionError.

A converter is a plain ``Callable[[str], Any]``. ConversionError carries the issue code and,
where real Flume would silently carry on with some value (``Boolean.valueOf("yes")`` is false,
a non-positive memory-channel capacity falls back to 100), that ``flume_value``: the loader
carries on with it, as Flume does, and reports the mistake (an error under ``--strict``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Any

from agent.config.issues import IssueCode

Converter = Callable[[str], Any]

JAVA_INT_MAX = 2**31 - 1
JAVA_LONG_MAX = 2**63 - 1
_NO_VALUE: Any = object()
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class ConversionError(ValueError):
    """``fatal``: Flume would run this value but flumelet cannot, so the file is refused."""

    def __init__(
        self, code: IssueCode, message: str, flume_value: Any = _NO_VALUE, *, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.flume_value = flume_value
        self.fatal = fatal

    @property
    def has_flume_value(self) -> bool:
        return self.flume_value is not _NO_VALUE


def to_str(raw: str) -> str:
    return raw


def to_bool(raw: str) -> bool:
    """``true``/``false`` in any case. Flume's ``Boolean.valueOf`` reads anything else as false."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ConversionError(
        IssueCode.BAD_VALUE, f"expected true or false, got {raw!r}", flume_value=False
    )


def to_words(raw: str) -> list[str]:
    """A whitespace-separated list, as Flume's name lists and SSL protocol lists are."""
    return raw.split()


def integer(
    low: int | None = None,
    high: int | None = None,
    *,
    bits: int = 32,
    fallback: Any = _NO_VALUE,
) -> Converter:
    """A Java int (``bits=32``) or long (``bits=64``) within [low, high].

    ``fallback``: the value Flume silently uses instead of an out-of-range one.
    """
    limit = JAVA_INT_MAX if bits == 32 else JAVA_LONG_MAX

    def convert(raw: str) -> int:
        if not _INTEGER.fullmatch(raw):
            raise ConversionError(IssueCode.BAD_NUMBER, f"{raw!r} is not an integer", fallback)
        value = int(raw)
        if not -limit - 1 <= value <= limit:
            kind = "int" if bits == 32 else "long"
            raise ConversionError(IssueCode.BAD_NUMBER, f"{raw} does not fit in a Java {kind}")
        if low is not None and value < low:
            raise ConversionError(IssueCode.BAD_VALUE, f"{value} is below {low}", fallback)
        if high is not None and value > high:
            raise ConversionError(IssueCode.BAD_VALUE, f"{value} is above {high}", fallback)
        return value

    return convert


def to_list(raw: str) -> list[str]:
    """Flume's comma-separated lists (``dataDirs``)."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def to_float(raw: str) -> float:
    if not _FLOAT.fullmatch(raw):
        raise ConversionError(IssueCode.BAD_NUMBER, f"{raw!r} is not a number")
    return float(raw)


def choice(
    *choices: str,
    aliases: dict[str, str] | None = None,
    upper: bool = False,
    unavailable: tuple[str, ...] = (),
) -> Converter:
    """One of ``choices`` (case-insensitive), returned in canonical spelling.

    ``aliases`` maps extra accepted spellings (e.g. a Java class name, matched exactly) to a
    canonical choice. ``unavailable``: values Flume accepts that flumelet does not implement.
    """
    canonical = {c.lower(): c for c in choices}
    exact = dict(aliases or {})
    missing = {c.lower() for c in unavailable}

    def convert(raw: str) -> str:
        if raw in exact:
            return exact[raw]
        found = canonical.get(raw.lower())
        if found is None:
            allowed = ", ".join(choices)
            if raw.lower() in missing:
                raise ConversionError(
                    IssueCode.UNAVAILABLE,
                    f"{raw!r} exists in Flume but is not available in flumelet "
                    f"(available: {allowed})",
                    fatal=True,
                )
            raise ConversionError(IssueCode.BAD_VALUE, f"{raw!r} is not one of: {allowed}")
        return found.upper() if upper else found

    return convert


def regex(raw: str) -> str:
    """A pattern Python can compile (Java and Python syntax agree for ordinary patterns)."""
    try:
        re.compile(raw)
    except re.error as exc:
        raise ConversionError(IssueCode.BAD_VALUE, f"invalid regular expression: {exc}") from exc
    return raw


def charset(raw: str) -> str:
    try:
        codecs.lookup(raw)
    except LookupError as exc:
        raise ConversionError(IssueCode.BAD_VALUE, f"unknown charset {raw!r}") from exc
    return raw


_IP_RULE = re.compile(r"(allow|deny):(ip|name):(.+)", re.IGNORECASE)


def ip_filter_rules(raw: str) -> list[tuple[str, str, str]]:
    """``allow|deny:ip|name:pattern`` rules, comma-separated -> (verdict, kind, pattern)."""
    rules = []
    for part in raw.split(","):
        match = _IP_RULE.fullmatch(part.strip())
        if match is None:
            raise ConversionError(
                IssueCode.BAD_VALUE,
                f"bad ipFilterRules entry {part.strip()!r}: expected allow|deny:ip|name:pattern",
            )
        rules.append((match[1].lower(), match[2].lower(), match[3]))
    return rules
