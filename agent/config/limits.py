"""The listener-limit keys every socket-listening component accepts (``max-connections``,
``max-frame-bytes``, ``idle-timeout`` ...; protocol.limits.ListenerLimits), declared once.

A component adds ``*LISTENER_KEYS`` to its schema and ``limits_rules`` to its rules, and builds
its limits with ``limits_from(settings)``; a combination the limits refuse (a buffer smaller
than a frame) is then reported by validation, not at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config.converters import integer
from agent.config.issues import IssueCode
from agent.config.schema import Key, Problem, RuleContext
from protocol.limits import ListenerLimits

_DEFAULTS = ListenerLimits()

# in the keys' units (milliseconds for the timeouts, as Flume's own timeouts)
LISTENER_KEYS = tuple(
    Key(
        key,
        integer(0 if key.endswith("timeout") else 1, bits=64),
        round(getattr(_DEFAULTS, name) / scale),
    )
    for key, (name, scale) in ListenerLimits.KEYS.items()
    if key in ListenerLimits.AGENT_KEYS
)


def limits_from(settings: Mapping[str, Any]) -> ListenerLimits:
    return _DEFAULTS.with_settings({key.name: settings[key.name] for key in LISTENER_KEYS})


def limits_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    try:
        limits_from(settings)
    except ValueError as exc:
        return [Problem(IssueCode.BAD_VALUE, str(exc), "max-buffered-bytes")]
    return []
