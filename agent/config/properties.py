"""Java ``.properties`` text -> ordered entries with line numbers. Knows nothing of Flume.

Parsing is delegated to ``javaproperties`` (exact ``java.util.Properties.load`` rules: ``#``/``!``
comments, ``=``/``:``/blank separators, backslash continuations, escapes, ``\\uXXXX``). Its
``parse()`` yields each entry's raw source text, from which we count the line the entry starts
on, because every configuration error must name its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import javaproperties

# Java's Properties treats only \n, \r and \r\n as line ends (not \f, \v, \u2028 ...).
_LINE_END = re.compile(r"\r\n|\r|\n")
_BAD_U_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u(?![0-9a-fA-F]{4})")


class PropertiesSyntaxError(ValueError):
    """The text cannot be loaded at all (Java's ``Properties.load`` would throw too)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class RawProperty:
    key: str
    value: str
    line: int


@dataclass
class ParsedProperties:
    """``entries``: last occurrence of each key wins (Java semantics), in first-seen order.

    ``overridden``: every earlier occurrence that a later one replaced, for warnings.
    """

    entries: dict[str, RawProperty] = field(default_factory=dict)
    overridden: list[RawProperty] = field(default_factory=list)


def parse_properties(text: str) -> ParsedProperties:
    result = ParsedProperties()
    line = 1
    try:
        for element in javaproperties.parse(text):
            if isinstance(element, javaproperties.KeyValue):
                previous = result.entries.get(element.key)
                if previous is not None:
                    result.overridden.append(previous)
                result.entries[element.key] = RawProperty(element.key, element.value, line)
            line += len(_LINE_END.findall(element.source))
    except javaproperties.InvalidUEscapeError as exc:
        match = _BAD_U_ESCAPE.search(text)
        bad_line = len(_LINE_END.findall(text[: match.start()])) + 1 if match else line
        raise PropertiesSyntaxError(f"malformed \\uXXXX escape: {exc}", bad_line) from exc
    return result
