"""Configuration problems as data: every check appends a ConfigIssue instead of raising
(a :class:`common.issues.Issue`, like a consumer job's problems).

Collecting issues (rather than failing on the first) lets one run of ``--validate`` show a user
everything wrong with a file, each with its file, line and component.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from common.issues import Severity as Severity  # re-exported: the shared severities
from common.issues import where


class IssueCode(enum.StrEnum):
    NO_AGENT = "NO_AGENT"  # the requested agent name has no keys in the file
    INVALID_AGENT = "INVALID_AGENT"  # nothing runnable remains (Flume: the agent is not started)
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    UNAVAILABLE = "UNAVAILABLE"  # exists in Flume (a type, class or value), not in flumelet
    MISSING_TYPE = "MISSING_TYPE"
    MISSING_REQUIRED = "MISSING_REQUIRED"
    DANGLING_CHANNEL = "DANGLING_CHANNEL"  # a source/sink names a channel that is not defined
    UNDEFINED_COMPONENT = "UNDEFINED_COMPONENT"  # listed but never configured, or the reverse
    BAD_NUMBER = "BAD_NUMBER"
    BAD_VALUE = "BAD_VALUE"  # enum, boolean, range or cross-key rule
    DUPLICATE_NAME = "DUPLICATE_NAME"  # a name listed twice, or a sink in two sink groups
    DUPLICATE_KEY = "DUPLICATE_KEY"  # the same key twice in the file: the last one wins
    PORT_CONFLICT = "PORT_CONFLICT"  # two components would listen on the same host:port
    DIRECTORY_CONFLICT = "DIRECTORY_CONFLICT"  # two components would lock one directory
    UNKNOWN_KEY = "UNKNOWN_KEY"  # a key the component's type does not know
    BAD_KEY = "BAD_KEY"  # a key that does not follow Flume's naming scheme
    EMPTY_VALUE = "EMPTY_VALUE"
    UNSET_VARIABLE = "UNSET_VARIABLE"  # ${VAR} not in the environment, a filter without a value
    BATCH_EXCEEDS_TRANSACTION = "BATCH_EXCEEDS_TRANSACTION"
    INVALID_SELECTOR = "INVALID_SELECTOR"
    UNUSED_COMPONENT = "UNUSED_COMPONENT"  # a channel no valid source or sink uses (removed)
    DROPPED = "DROPPED"  # removed, as Flume removes it: it or what it needs is invalid
    BAD_FILE = "BAD_FILE"  # the file cannot be read or decoded


@dataclass(frozen=True)
class ConfigIssue:
    """One problem. ``line`` is 1-based; 0 means "not from a file line" (a -D override, a default).

    ``component`` is the dotted path of what is affected (``a1.sinks.k1``), or the agent name.
    """

    code: IssueCode
    message: str
    file: str
    line: int = 0
    component: str = ""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        who = f" {self.component}" if self.component else ""
        level = "warning: " if self.severity is Severity.WARNING else ""
        return f"{where(self.file, self.line)}:{who} [{self.code}] {level}{self.message}"
