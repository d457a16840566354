"""Small translators from Java text conventions to Python's.

- ``java_date_format``: a Joda/SimpleDateFormat pattern -> a ``strptime`` format.
  Supported letters: ``y`` (``yy`` = 2-digit year), ``M`` (``M``/``MM`` number, ``MMM`` short
  name, ``MMMM`` full name), ``d``, ``D`` (day of year), ``H``, ``h`` with ``a``, ``m``, ``s``,
  ``S`` (fraction of a second, up to 6 digits), ``E`` (``EEE`` short, ``EEEE`` full day name),
  ``Z``/``X`` (``+0100``, ``+01:00``, ``Z``) and ``z`` (zone abbreviations ``strptime`` knows,
  such as UTC/GMT), plus quoted literals (``'T'``, ``''`` for a quote). Other letters raise
  ``ValueError`` naming the letter, at configuration time rather than on the first event.
- ``java_replacement``: a ``Matcher.replaceAll`` replacement (``$1``, ``${name}``, ``\\$``) ->
  a ``re.sub`` template.
"""

from __future__ import annotations

import re

_LETTERS = {
    "y": lambda n: "%y" if n == 2 else "%Y",
    "M": lambda n: "%m" if n <= 2 else ("%b" if n == 3 else "%B"),
    "d": lambda n: "%d",
    "D": lambda n: "%j",
    "H": lambda n: "%H",
    "h": lambda n: "%I",
    "a": lambda n: "%p",
    "m": lambda n: "%M",
    "s": lambda n: "%S",
    "S": lambda n: "%f",
    "E": lambda n: "%a" if n <= 3 else "%A",
    "Z": lambda n: "%z",
    "X": lambda n: "%z",
    "z": lambda n: "%Z",
}


def java_date_format(pattern: str) -> str:
    """Translate a Java date pattern to a ``strptime`` format (see the module docstring)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "'":
            if pattern.startswith("''", i):  # '' is a literal quote
                out.append("'")
                i += 2
                continue
            i += 1
            while True:  # a quoted literal; '' inside it is a quote
                if i >= n:
                    raise ValueError(f"date pattern {pattern!r}: unterminated quote")
                if pattern[i] == "'":
                    if pattern.startswith("''", i):
                        out.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                out.append("%%" if pattern[i] == "%" else pattern[i])
                i += 1
            continue
        if ch.isascii() and ch.isalpha():
            run = 1
            while i + run < n and pattern[i + run] == ch:
                run += 1
            make = _LETTERS.get(ch)
            if make is None:
                raise ValueError(f"date pattern {pattern!r}: letter {ch!r} is not supported")
            out.append(make(run))
            i += run
            continue
        out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


def java_replacement(replacement: str, pattern: re.Pattern[str]) -> str:
    """Translate a Java replacement string into a ``re.sub`` template for ``pattern``.

    ``$n`` takes as many digits as still name an existing group (Java's rule); ``${name}``
    names a group; a backslash makes the next character literal. Errors match Java's:
    a dangling ``$`` or a missing group is reported at configuration time.
    """
    groups = pattern.groups
    out: list[str] = []
    i, n = 0, len(replacement)
    while i < n:
        ch = replacement[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError(f"replacement {replacement!r}: character to escape is missing")
            out.append(replacement[i + 1].replace("\\", "\\\\"))
            i += 2
        elif ch == "$":
            if i + 1 >= n:
                raise ValueError(f"replacement {replacement!r}: illegal group reference")
            nxt = replacement[i + 1]
            if nxt == "{":
                end = replacement.find("}", i + 2)
                if end < 0:
                    raise ValueError(f"replacement {replacement!r}: named group is missing '}}'")
                name = replacement[i + 2 : end]
                if name not in pattern.groupindex:
                    raise ValueError(f"replacement {replacement!r}: no group named {name!r}")
                out.append(f"\\g<{name}>")
                i = end + 1
            elif nxt.isdigit():
                number = int(nxt)
                if number > groups:
                    raise ValueError(f"replacement {replacement!r}: no group {number}")
                i += 2
                while i < n and replacement[i].isdigit():
                    candidate = number * 10 + int(replacement[i])
                    if candidate > groups:
                        break
                    number = candidate
                    i += 1
                out.append(f"\\g<{number}>")
            else:
                raise ValueError(f"replacement {replacement!r}: illegal group reference")
        else:
            out.append(ch)
            i += 1
    return "".join(out)
