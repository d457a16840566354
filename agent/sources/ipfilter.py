"""Flume's ``ipFilterRules``: the first rule matching the peer decides; none matching -> allow
(Netty's IpFilterRuleHandler default, which Flume's Avro source uses).

Rules are ``(allow|deny, ip|name, pattern)`` with ``*`` wildcards; ``name`` rules match the
peer's host name (resolved by the caller, since this module does no I/O).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence


def allowed(rules: Sequence[tuple[str, str, str]], ip: str, hostname: str | None = None) -> bool:
    for verdict, kind, pattern in rules:
        subject = ip if kind.lower() == "ip" else hostname
        if subject is not None and fnmatch.fnmatchcase(subject.lower(), pattern.lower()):
            return verdict.lower() == "allow"
    return True
