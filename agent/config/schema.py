"""The vocabulary a component type declares its settings with: keys, key families and rules.

Every component class carries one ``SCHEMA = Schema(...)`` (see ``agent/registry.py`` for how
a type is added). Keys are Flume's exact property names relative to the component, so a
Flume user's file reads the same here. The config layer converts every value, applies the
defaults and runs the rules; the class then reads ``spec.settings[key]`` and restates nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.converters import Converter, to_str
from agent.config.issues import IssueCode


@dataclass(frozen=True)
class Key:
    """One property. ``default`` is used when the key is absent (None: "not set").

    ``floor``: Flume silently replaces values below it with the default; so do we, with a
    warning. ``ignored``: why flumelet accepts the key (Flume files set it) but never reads it.
    """

    name: str
    convert: Converter = to_str
    default: Any = None
    required: bool = False
    floor: int | None = None
    ignored: str = ""


@dataclass(frozen=True)
class KeyFamily:
    """``<prefix>.<sub> = value`` keys with a user-chosen ``<sub>``, gathered into
    ``settings[prefix] = {sub: value}`` (``settings[prefix + "."]`` when a plain key already
    has the prefix's name, for the rules to merge)."""

    prefix: str
    convert: Converter = to_str


@dataclass(frozen=True)
class Problem:
    """What a rule reports. ``key`` (relative) locates the line; ``warning`` marks a fallback
    Flume applies silently, which does not make the component invalid."""

    code: IssueCode
    message: str
    key: str | None = None
    warning: bool = False


@dataclass(frozen=True)
class RuleContext:
    present: frozenset[str]  # keys explicitly set in the file or by -D
    env: Mapping[str, str]


# Cross-key checks after every value converted. A rule may complete ``settings`` (fill a key
# from the environment, fold a deprecated key into its successor); it never does I/O beyond
# reading files the settings name (a TLS key store), so --validate can run it.
Rules = Callable[[dict[str, Any], RuleContext], list[Problem]]


@dataclass(frozen=True)
class Schema:
    """What one component type accepts.

    ``batch_key`` is compared with the channel's ``transactionCapacity``; ``listen`` names the
    (host key, port key) of a socket the type binds, for port-conflict checks;
    ``exclusive_dir`` names the key of a directory the type locks (a list: its first), which
    two components of an agent cannot share.
    """

    keys: tuple[Key, ...] = ()
    families: tuple[KeyFamily, ...] = ()
    rules: Rules | None = None
    batch_key: str | None = None
    listen: tuple[str, str] | None = None
    exclusive_dir: str | None = None

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)


NO_KEYS = Schema()
