"""Flume's naming scheme: flat ``<agent>.<kind>.<name>.<key>`` entries -> per-component key maps.

This layer only sorts keys (reference §4.2): it knows the four name lists and that component
names run to the next dot, nothing about component types.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

KINDS = ("sources", "channels", "sinks", "sinkgroups")
FILTERS = "configfilters"
SINGULAR = {"sources": "source", "channels": "channel", "sinks": "sink", "sinkgroups": "sinkgroup"}


@dataclass(frozen=True)
class Entry:
    """One effective property (file line or -D override). ``value`` is already trimmed."""

    key: str
    value: str
    file: str
    line: int = 0


@dataclass
class NameList:
    names: list[str]
    entry: Entry


@dataclass
class RawComponent:
    """Every key of one component, relative to ``<agent>.<kind>.<name>.``, in file order."""

    kind: str
    name: str
    props: dict[str, Entry] = field(default_factory=dict)

    @property
    def anchor(self) -> Entry | None:
        """The entry a component-level issue points at: its ``type`` line, else its first key."""
        return self.props.get("type") or next(iter(self.props.values()), None)


@dataclass
class BadKey:
    entry: Entry
    reason: str


@dataclass
class AgentLayout:
    name: str
    lists: dict[str, NameList] = field(default_factory=dict)
    components: dict[str, dict[str, RawComponent]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    bad_keys: list[BadKey] = field(default_factory=list)
    filters: dict[str, RawComponent] = field(default_factory=dict)  # <agent>.configfilters.*


def agents_in(entries: list[Entry]) -> list[str]:
    """Agent names in order of first appearance (the part of each dotted key before its dot)."""
    seen: dict[str, None] = {}
    for entry in entries:
        head, dot, rest = entry.key.partition(".")
        if dot and head and rest:
            seen.setdefault(head, None)
    return list(seen)


def layout_agent(agent: str, entries: list[Entry]) -> AgentLayout:
    layout = AgentLayout(agent)
    prefix = agent + "."
    for entry in entries:
        if not entry.key.startswith(prefix):
            continue
        rest = entry.key[len(prefix) :]
        if rest in (*KINDS, FILTERS):
            layout.lists[rest] = NameList(entry.value.split(), entry)
            continue
        kind, dot, tail = rest.partition(".")
        if kind == FILTERS:
            name, dot, key = tail.partition(".")
            if name and dot and key:
                filters = layout.filters.setdefault(name, RawComponent(kind, name))
                filters.props[key] = entry
                continue
        if kind not in KINDS or not dot:
            close = difflib.get_close_matches(kind, [*KINDS, "configfilters"], n=1, cutoff=0.6)
            hint = f"; did you mean '{agent}.{close[0]}'?" if close else ""
            layout.bad_keys.append(
                BadKey(entry, f"'{kind}' is not sources, channels, sinks or sinkgroups{hint}")
            )
            continue
        name, dot, key = tail.partition(".")
        if not name or not dot or not key:
            layout.bad_keys.append(
                BadKey(entry, f"expected {agent}.{kind}.<name>.<key>, got '{entry.key}'")
            )
            continue
        component = layout.components[kind].setdefault(name, RawComponent(kind, name))
        component.props[key] = entry
    return layout
