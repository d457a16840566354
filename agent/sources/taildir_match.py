"""Taildir's settings, pure: file groups (``filegroups.<g> = /dir/<regex on the file name>``
plus ``headers.<g>.<key> = value``) and the source's other keys.

As Flume's TaildirMatcher: the directory part is literal and must be absolute; the last path
element is a regular expression that must match the whole file name; directories never match.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_POSITION_FILE = "~/.flume/taildir_position.json"
JAVA_LONG_MAX = 2**63 - 1


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


@dataclass(frozen=True)
class TaildirSettings:
    groups: list[FileGroup]
    position_file: str = DEFAULT_POSITION_FILE
    batch_size: int = 100
    max_batch_count: int = JAVA_LONG_MAX
    skip_to_end: bool = False
    byte_offset_header: bool = False
    file_header: bool = False
    file_header_key: str = "file"
    idle_timeout: float = 120.0  # seconds
    write_pos_interval: float = 3.0  # seconds
    backoff_increment: float = 1.0  # seconds added per idle poll (backoffSleepIncrement)
    max_backoff: float = 5.0  # seconds (maxBackoffSleep)


def settings_from(s: Mapping[str, Any]) -> TaildirSettings:
    names = s.get("filegroups") or []
    if isinstance(names, str):
        names = names.split()
    paths = _family(s, "filegroups")
    headers = _family(s, "headers")
    for key, value in s.items():  # flat keys, when the config gives them that way
        if key.startswith("filegroups.") and key != "filegroups.":
            paths[key[len("filegroups."):]] = value
        elif key.startswith("headers.") and key != "headers.":
            headers[key[len("headers."):]] = value
    max_batch_count = int(s.get("maxBatchCount", JAVA_LONG_MAX))
    return TaildirSettings(
        groups=file_groups(list(names), paths, {k: str(v) for k, v in headers.items()}),
        position_file=os.path.expanduser(str(s.get("positionFile") or DEFAULT_POSITION_FILE)),
        batch_size=int(s.get("batchSize", 100)),
        max_batch_count=max_batch_count if max_batch_count > 0 else JAVA_LONG_MAX,
        skip_to_end=bool(s.get("skipToEnd", False)),
        byte_offset_header=bool(s.get("byteOffsetHeader", False)),
        file_header=bool(s.get("fileHeader", False)),
        file_header_key=str(s.get("fileHeaderKey") or "file"),
        idle_timeout=int(s.get("idleTimeout", 120_000)) / 1000,
        write_pos_interval=int(s.get("writePosInterval", 3000)) / 1000,
        backoff_increment=int(s.get("backoffSleepIncrement", 1000)) / 1000,
        max_backoff=int(s.get("maxBackoffSleep", 5000)) / 1000,
    )


def _family(s: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``<prefix>.<sub>`` keys, gathered by the config (under ``prefix`` or ``prefix.`` when
    a plain key has the same name) or left flat."""
    out: dict[str, Any] = {}
    for key in (prefix, prefix + "."):
        if isinstance(s.get(key), Mapping):
            out.update(s[key])
    return out
