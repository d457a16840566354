"""Taildir file groups, pure: ``filegroups.<g> = /dir/<regex on the file name>`` plus
``headers.<g>.<key> = value``.

As Flume's TaildirMatcher: the directory part is literal and must be absolute; the last path
element is a regular expression that must match the whole file name; directories never match.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileGroup:
    name: str
    directory: str
    pattern: re.Pattern[str]
    headers: Mapping[str, str] = field(default_factory=dict)

    def matches(self, filename: str) -> bool:
        return self.pattern.fullmatch(filename) is not None


def file_groups(names: Sequence[str], paths: Mapping[str, str],
                headers: Mapping[str, str]) -> list[FileGroup]:
    """The groups in ``filegroups`` order. ``headers`` holds the ``<group>.<key>`` suffixes of
    ``headers.*``. Raises ValueError listing every problem."""
    problems = []
    groups = []
    if not names:
        problems.append("'filegroups' names no group")
    for name in names:
        path = paths.get(name)
        if not path:
            problems.append(f"filegroup {name!r} has no 'filegroups.{name}' path")
            continue
        directory, regex = posixpath.split(path)
        if not posixpath.isabs(directory):
            problems.append(f"filegroups.{name} = {path!r}: the directory must be absolute")
            continue
        if not regex:
            problems.append(f"filegroups.{name} = {path!r}: no file name pattern after the "
                            "last '/'")
            continue
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            problems.append(f"filegroups.{name}: bad regular expression {regex!r}: {exc}")
            continue
        prefix = name + "."
        group_headers = {key[len(prefix):]: value for key, value in headers.items()
                         if key.startswith(prefix) and len(key) > len(prefix)}
        groups.append(FileGroup(name, posixpath.normpath(directory), pattern, group_headers))
    known = set(names)
    for key in headers:
        if key.split(".", 1)[0] not in known or "." not in key:
            problems.append(f"headers.{key}: no file group {key.split('.', 1)[0]!r} "
                            f"(filegroups: {' '.join(names) or '-'})")
    if problems:
        raise ValueError("; ".join(problems))
    return groups
