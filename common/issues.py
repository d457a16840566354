"""PURE problems as data, for the agent's configuration and the consumer's jobs alike.

A check records an issue instead of raising, so one run shows a user every problem, each
saying where it is. :class:`Issue` is what both kinds offer (the agent's ``ConfigIssue`` adds
a code and the component, a job's ``Issue`` the setting's path); :func:`where` writes their
location the same way.
"""

from __future__ import annotations

import enum
from typing import Protocol, runtime_checkable

__all__ = ["Issue", "Severity", "where"]


class Severity(enum.StrEnum):
    ERROR = "error"  # refuses to run
    WARNING = "warning"  # runs (as Flume would); --strict refuses


@runtime_checkable
class Issue(Protocol):
    @property
    def file(self) -> str: ...

    @property
    def line(self) -> int | None: ...  # 1-based; 0 or None: not tied to a line

    @property
    def message(self) -> str: ...

    @property
    def severity(self) -> Severity: ...

    @property
    def is_error(self) -> bool: ...


def where(file: str, line: int | None) -> str:
    """``file:line``, or ``file`` for a problem not tied to a line."""
    return f"{file}:{line}" if line else file
