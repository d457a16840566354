"""Agent layout -> AgentConfig: build every component, wire them, check cross-component rules.

Every problem becomes a ConfigIssue; nothing raises. The wiring pass follows Flume's own
pruning (reference §4.6) so the result holds exactly what Flume would run: a source loses
channels that are invalid, a component that depends on a dropped one is dropped too, channels
nobody uses are removed, and the agent is invalid only when nothing runnable remains. Every
component dropped is named in a DROPPED warning (Flume only logs it among its INFO lines).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config.build import Built, Reporter, build_component
from agent.config.issues import IssueCode
from agent.config.model import (
    AgentConfig,
    ComponentSpec,
    Location,
    SinkGroupSpec,
    SinkSpec,
    SourceSpec,
)
from agent.config.structure import SINGULAR, AgentLayout, Entry, RawComponent

_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


@dataclass
class _Source:
    raw: RawComponent
    built: Built
    channels: list[str]
    channels_entry: Entry
    selector: Built
    interceptors: list[tuple[str, Built]]


@dataclass
class _Sink:
    raw: RawComponent
    built: Built
    channel: str
    channel_entry: Entry


@dataclass
class _Group:
    raw: RawComponent
    built: Built | None  # None: its processor is invalid (the group and its sinks are dropped)
    sinks: list[str]
    sinks_entry: Entry


class AgentValidator:
    def __init__(self, layout: AgentLayout, reporter: Reporter, env: Mapping[str, str]) -> None:
        self.layout = layout
        self.agent = layout.name
        self.reporter = reporter
        self.env = env
        self.report = reporter.report

    def path(self, kind: str, name: str) -> str:
        return f"{self.agent}.{kind}.{name}"

    # --- driver ------------------------------------------------------------------------------

    def run(self) -> AgentConfig | None:
        self._check_keys()
        names = {kind: self._names(kind) for kind in ("sources", "channels", "sinks", "sinkgroups")}
        if "channels" not in self.layout.lists:
            self.report(
                IssueCode.MISSING_REQUIRED,
                f"missing required key '{self.agent}.channels' (the agent's channel list)",
                self.agent,
                fatal=True,
            )
        channels = {}
        for name in names["channels"]:
            built = self._build_plain("channels", name)
            if built is not None:
                channels[name] = built
        self._check_directories(channels)
        sources = {n: b for n in names["sources"] if (b := self._build_source(n)) is not None}
        sinks = {n: k for n in names["sinks"] if (k := self._build_sink(n)) is not None}
        groups = {n: g for n in names["sinkgroups"] if (g := self._build_group(n)) is not None}

        self._check_references_of_invalid(names, sources, sinks, groups)
        self._wire_sources(sources, channels, set(names["channels"]))
        self._wire_sinks(sinks, channels, set(names["channels"]))
        self._check_ports(sources, sinks)
        self._wire_groups(groups, sinks, set(names["sinks"]))
        self._drop_unused_channels(channels, sources, sinks)
        self._say_what_is_dropped(names, channels, sources, sinks, groups)
        if not self._agent_is_runnable(channels, sources, sinks):
            return None
        return self._assemble(channels, sources, sinks, groups)

    # --- structure ---------------------------------------------------------------------------

    def _check_keys(self) -> None:
        for bad in self.layout.bad_keys:
            self.report(
                IssueCode.BAD_KEY,
                f"invalid key: {bad.reason}; Flume ignores it",
                self.agent,
                bad.entry,
            )

    def _names(self, kind: str) -> list[str]:
        """The listed names that have keys, after reporting list-level problems."""
        listed = self.layout.lists.get(kind)
        configured = self.layout.components[kind]
        result: list[str] = []
        if listed is not None:
            for name in listed.names:
                where = f"{self.agent}.{kind}"
                if name in result:
                    self.report(
                        IssueCode.DUPLICATE_NAME,
                        f"{SINGULAR[kind]} '{name}' is listed twice; it is started once",
                        where,
                        listed.entry,
                    )
                elif "." in name:
                    self.report(
                        IssueCode.BAD_KEY,
                        f"{SINGULAR[kind]} name '{name}' contains a dot, so no key can configure "
                        "it (a name runs to the next dot); it is ignored",
                        where,
                        listed.entry,
                    )
                elif name not in configured:
                    self.report(
                        IssueCode.UNDEFINED_COMPONENT,
                        _listed_but_empty(SINGULAR[kind], name, f"{where}.{name}", configured),
                        self.path(kind, name),
                        listed.entry,
                    )
                else:
                    result.append(name)
        listed_names = set(listed.names) if listed else set()
        for name, raw in configured.items():
            if name not in listed_names:
                self.report(
                    IssueCode.UNDEFINED_COMPONENT,
                    f"{SINGULAR[kind]} '{name}' is configured but not listed in "
                    f"'{self.agent}.{kind}', so it is ignored, as Flume ignores it"
                    + _did_you_mean(name, [n for n in listed_names if n not in configured]),
                    self.path(kind, name),
                    raw.anchor,
                )
        return result

    # --- components --------------------------------------------------------------------------

    def _build_plain(
        self, kind: str, name: str, props: Mapping[str, Entry] | None = None
    ) -> Built | None:
        raw = self.layout.components[kind][name]
        return build_component(
            SINGULAR[kind],
            self.path(kind, name),
            raw.props if props is None else props,
            raw.anchor,
            self.reporter,
            self.env,
            fatal_unknown_type=True,
            is_handled=lambda key: kind == "sinks" and key == "channel",
        )

    def _build_source(self, name: str) -> _Source | None:
        raw = self.layout.components["sources"][name]
        path = self.path("sources", name)
        own = {
            k: e
            for k, e in raw.props.items()
            if k != "channels"
            and k != "interceptors"
            and not k.startswith(("selector.", "interceptors."))
        }
        if "channel" in own and "channels" not in raw.props:
            hint = own.pop("channel")
            self.report(
                IssueCode.UNKNOWN_KEY,
                "sources take 'channels' (plural); 'channel' is for sinks",
                path,
                hint,
            )
        built = build_component(
            "source", path, own, raw.anchor, self.reporter, self.env, fatal_unknown_type=True
        )
        ok = built is not None
        channels_entry = raw.props.get("channels")
        channels: list[str] = []
        if channels_entry is None:
            self.report(
                IssueCode.MISSING_REQUIRED, "missing required key 'channels'", path, raw.anchor
            )
            ok = False
        elif channels_entry.value:
            for channel in channels_entry.value.split():
                if channel in channels:
                    self.report(
                        IssueCode.DUPLICATE_NAME,
                        f"channel '{channel}' is listed twice",
                        path,
                        channels_entry,
                    )
                else:
                    channels.append(channel)
        else:
            ok = False
        selector = self._build_selector(raw, path)
        interceptors = self._build_interceptors(raw, path)
        if not ok or built is None or selector is None or interceptors is None:
            return None
        assert channels_entry is not None
        return _Source(raw, built, channels, channels_entry, selector, interceptors)

    def _build_selector(self, raw: RawComponent, path: str) -> Built | None:
        props = {
            k[len("selector.") :]: e for k, e in raw.props.items() if k.startswith("selector.")
        }
        anchor = props.get("type") or raw.anchor
        return build_component(
            "selector",
            path,
            props,
            anchor,
            self.reporter,
            self.env,
            default_type="replicating",
            key_prefix="selector.",
        )

    def _build_interceptors(self, raw: RawComponent, path: str) -> list[tuple[str, Built]] | None:
        listed_entry = raw.props.get("interceptors")
        listed = listed_entry.value.split() if listed_entry else []
        props: dict[str, dict[str, Entry]] = {}
        for key, entry in raw.props.items():
            if key.startswith("interceptors."):
                name, dot, sub = key[len("interceptors.") :].partition(".")
                if not dot or not sub:
                    self.report(IssueCode.BAD_KEY, f"invalid interceptor key '{key}'", path, entry)
                    continue
                props.setdefault(name, {})[sub] = entry
        for name, group in props.items():
            if name not in listed:
                self.report(
                    IssueCode.UNDEFINED_COMPONENT,
                    f"interceptor '{name}' is configured but not listed in 'interceptors', "
                    "so it is ignored, as Flume ignores it",
                    path,
                    next(iter(group.values())),
                )
        result: list[tuple[str, Built]] = []
        ok = True
        for name in listed:
            earlier = next((b for n, b in result if n == name), None)
            if earlier is not None:
                self.report(
                    IssueCode.DUPLICATE_NAME,
                    f"interceptor '{name}' is listed twice; like Flume, it runs twice",
                    path,
                    listed_entry,
                )
                result.append((name, earlier))
                continue
            group = props.get(name, {})
            built = build_component(
                "interceptor",
                path,
                group,
                group.get("type") or next(iter(group.values()), listed_entry),
                self.reporter,
                self.env,
                key_prefix=f"interceptors.{name}.",
            )
            if built is None:
                ok = False
            else:
                result.append((name, built))
        return result if ok else None

    def _build_sink(self, name: str) -> _Sink | None:
        raw = self.layout.components["sinks"][name]
        path = self.path("sinks", name)
        props = dict(raw.props)
        if "channels" in props and "channel" not in props:
            self.report(
                IssueCode.UNKNOWN_KEY,
                "sinks take 'channel' (singular); 'channels' is for sources",
                path,
                props.pop("channels"),
            )
        built = self._build_plain("sinks", name, props)
        entry = raw.props.get("channel")
        if entry is None:
            self.report(
                IssueCode.MISSING_REQUIRED, "missing required key 'channel'", path, raw.anchor
            )
            return None
        if not entry.value:
            return None
        if len(entry.value.split()) != 1:
            self.report(
                IssueCode.BAD_VALUE,
                f"a sink drains exactly one channel, got '{entry.value}'",
                path,
                entry,
            )
            return None
        if built is None:
            return None
        return _Sink(raw, built, entry.value, entry)

    def _build_group(self, name: str) -> _Group | None:
        raw = self.layout.components["sinkgroups"][name]
        path = self.path("sinkgroups", name)
        processor_props = {
            k[len("processor.") :]: e for k, e in raw.props.items() if k.startswith("processor.")
        }
        for key, entry in raw.props.items():
            if key != "sinks" and not key.startswith("processor."):
                self.report(
                    IssueCode.UNKNOWN_KEY,
                    f"unknown key '{key}' for a sink group (known: sinks, processor.*); "
                    "Flume ignores it",
                    path,
                    entry,
                )
        built = build_component(
            "processor",
            path,
            processor_props,
            processor_props.get("type") or raw.anchor,
            self.reporter,
            self.env,
            default_type="default",
            key_prefix="processor.",
            fatal_unknown_type=True,
        )
        sinks_entry = raw.props.get("sinks")
        if sinks_entry is None:
            self.report(
                IssueCode.MISSING_REQUIRED, "missing required key 'sinks'", path, raw.anchor
            )
            return None
        sinks: list[str] = []
        for sink in sinks_entry.value.split():
            if sink in sinks:
                self.report(
                    IssueCode.DUPLICATE_NAME,
                    f"sink '{sink}' is listed twice; it is used once",
                    path,
                    sinks_entry,
                )
            else:
                sinks.append(sink)
        if not sinks:
            return None
        return _Group(raw, built, sinks, sinks_entry)

    # --- wiring ------------------------------------------------------------------------------

    def _check_references_of_invalid(
        self,
        names: dict[str, list[str]],
        sources: dict[str, _Source],
        sinks: dict[str, _Sink],
        groups: dict[str, _Group],
    ) -> None:
        """Report dangling names of components that failed to build, so one run shows all."""
        declared_channels = set(names["channels"])
        components = self.layout.components
        for name in names["sources"]:
            entry = components["sources"][name].props.get("channels")
            if name not in sources and entry is not None:
                for channel in dict.fromkeys(entry.value.split()):
                    if channel not in declared_channels:
                        self._report_dangling(self.path("sources", name), channel, entry)
        for name in names["sinks"]:
            entry = components["sinks"][name].props.get("channel")
            if (
                name not in sinks
                and entry is not None
                and len(entry.value.split()) == 1
                and entry.value not in declared_channels
            ):
                self._report_dangling(self.path("sinks", name), entry.value, entry)
        for name in names["sinkgroups"]:
            entry = components["sinkgroups"][name].props.get("sinks")
            if name not in groups and entry is not None:
                for sink in dict.fromkeys(entry.value.split()):
                    if sink not in names["sinks"]:
                        self._report_unknown_sink(self.path("sinkgroups", name), sink, entry)

    def _report_dangling(self, path: str, channel: str, entry: Entry) -> None:
        self.report(
            IssueCode.DANGLING_CHANNEL,
            f"channel '{channel}' is not defined in '{self.agent}.channels'",
            path,
            entry,
        )

    def _report_unknown_sink(self, path: str, sink: str, entry: Entry) -> None:
        self.report(
            IssueCode.UNDEFINED_COMPONENT,
            f"sink '{sink}' is not defined in '{self.agent}.sinks'",
            path,
            entry,
        )

    def _dropped(self, path: str, reason: str, entry: Entry | None) -> None:
        if not self.reporter.strict:  # strict: the errors that caused it say enough
            self.report(
                IssueCode.DROPPED, f"{_what(path)} is dropped, as Flume drops it: {reason}",
                path, entry,
            )

    def _wire_sources(
        self, sources: dict[str, _Source], channels: dict[str, Built], declared: set[str]
    ) -> None:
        for name in list(sources):
            source = sources[name]
            path = self.path("sources", name)
            usable = []
            for channel in source.channels:
                if channel not in declared:
                    self._report_dangling(path, channel, source.channels_entry)
                elif channel in channels:
                    usable.append(channel)
            ok = bool(usable)
            if not usable:
                self._dropped(path, "none of its channels is valid", source.channels_entry)
            ok = self._check_selector(source, path, usable) and ok
            if ok:
                ok = self._check_batch(path, source.built, [(c, channels[c]) for c in usable])
            if ok:
                source.channels = usable
            else:
                del sources[name]

    def _check_selector(self, source: _Source, path: str, usable: list[str]) -> bool:
        settings = source.selector.settings
        referenced: list[tuple[str, str]] = []  # (setting key, channel)
        if source.selector.type.plugin:
            return True  # its own business
        if source.selector.type.name == "replicating":
            referenced += [("optional", c) for c in settings["optional"]]
        else:
            for value, chans in settings["mapping"].items():
                referenced += [(f"mapping.{value}", c) for c in chans]
            for value, chans in settings["optional"].items():
                referenced += [(f"optional.{value}", c) for c in chans]
            referenced += [("default", c) for c in settings["default"]]
        ok = True
        props = source.raw.props
        for key, channel in referenced:
            entry = props.get(f"selector.{key}")
            if channel not in source.channels:
                self.report(
                    IssueCode.INVALID_SELECTOR,
                    f"selector.{key} names channel '{channel}', which is not one of the "
                    f"source's channels ({' '.join(source.channels)})",
                    path,
                    entry,
                )
                ok = False
            elif channel not in usable:
                self._dropped(path, f"its selector uses invalid channel '{channel}'", entry)
                ok = False
        return ok

    def _check_batch(self, path: str, built: Built, channels: list[tuple[str, Built]]) -> bool:
        key = built.type.schema.batch_key
        if key is None:
            return True
        ok = True
        batch = built.settings[key]
        for channel_name, channel in channels:
            capacity = channel.settings.get("transactionCapacity")
            if capacity is not None and batch > capacity:
                self.report(
                    IssueCode.BATCH_EXCEEDS_TRANSACTION,
                    f"{key} ({batch}) exceeds the transactionCapacity ({capacity}) of channel "
                    f"'{channel_name}'",
                    path,
                    self._entry_of(path, key) or built.anchor,
                )
                ok = False
        return ok

    def _entry_of(self, path: str, key: str) -> Entry | None:
        kind, name = path.split(".")[1:3]
        return self.layout.components[kind][name].props.get(key)

    def _wire_sinks(
        self, sinks: dict[str, _Sink], channels: dict[str, Built], declared: set[str]
    ) -> None:
        for name in list(sinks):
            sink = sinks[name]
            path = self.path("sinks", name)
            if sink.channel not in declared:
                self._report_dangling(path, sink.channel, sink.channel_entry)
                del sinks[name]
            elif sink.channel not in channels:
                self._dropped(path, f"its channel '{sink.channel}' is invalid", sink.channel_entry)
                del sinks[name]
            elif not self._check_batch(path, sink.built, [(sink.channel, channels[sink.channel])]):
                del sinks[name]

    def _check_directories(self, channels: dict[str, Built]) -> None:
        """A directory a type locks (a file channel's data directory) serves one channel."""
        owners: dict[str, str] = {}
        for name in list(channels):
            built = channels[name]
            key = built.type.schema.exclusive_dir
            if key is None or not built.settings[key]:
                continue
            value = built.settings[key]
            directory = os.path.realpath(os.path.expanduser(value[0] if isinstance(
                value, list) else value))
            path = self.path("channels", name)
            if directory in owners:
                self.report(
                    IssueCode.DIRECTORY_CONFLICT,
                    f"{key} {directory} is already used by channel '{owners[directory]}': the "
                    "second channel would find it locked, as in Flume",
                    path,
                    self._entry_of(path, key) or built.anchor,
                )
                del channels[name]
            else:
                owners[directory] = name

    def _check_ports(self, sources: dict[str, _Source], sinks: dict[str, _Sink]) -> None:
        """Two listeners on one port clash when their hosts are equal or either is a wildcard."""
        listeners: list[tuple[str, str, Built, dict[str, Any]]] = [
            *(("sources", name, s.built, sources) for name, s in sources.items()),
            *(("sinks", name, s.built, sinks) for name, s in sinks.items()),
        ]
        taken: list[tuple[str, int, str]] = []
        for kind, name, built, owner in listeners:
            if built.type.schema.listen is None:
                continue
            host_key, port_key = built.type.schema.listen
            host, port = built.settings[host_key], built.settings[port_key]
            if port == 0:  # an ephemeral port never conflicts
                continue
            path = self.path(kind, name)
            clash = next(
                (
                    other
                    for h, p, other in taken
                    if p == port and (h == host or h in _WILDCARD_HOSTS or host in _WILDCARD_HOSTS)
                ),
                None,
            )
            if clash is not None:
                self.report(
                    IssueCode.PORT_CONFLICT,
                    f"{host}:{port} is already bound by {clash}",
                    path,
                    self._entry_of(path, port_key) or built.anchor,
                )
                del owner[name]
            else:
                taken.append((host, port, path))

    def _wire_groups(
        self, groups: dict[str, _Group], sinks: dict[str, _Sink], declared: set[str]
    ) -> None:
        owner: dict[str, str] = {}
        for name in list(groups):
            group = groups[name]
            path = self.path("sinkgroups", name)
            kept: list[str] = []
            for sink in group.sinks:
                if sink not in declared:
                    self._report_unknown_sink(path, sink, group.sinks_entry)
                elif sink in owner:
                    self.report(
                        IssueCode.DUPLICATE_NAME,
                        f"sink '{sink}' already belongs to sink group '{owner[sink]}'",
                        path,
                        group.sinks_entry,
                    )
                elif sink in sinks:
                    owner[sink] = name
                    kept.append(sink)
            group.sinks = kept
            if not kept:
                self._dropped(path, "none of its sinks is valid", group.sinks_entry)
                del groups[name]
            elif group.built is None or not self._check_processor(group, group.built, path):
                # Flume has taken the sinks out of the standalone set already: they go too
                for sink in kept:
                    self._dropped(
                        self.path("sinks", sink),
                        f"its sink group '{name}' is invalid",
                        self.layout.components["sinks"][sink].anchor,
                    )
                    del sinks[sink]
                del groups[name]

    def _check_processor(self, group: _Group, built: Built, path: str) -> bool:
        kind, settings = built.type.name, built.settings
        if kind == "default" and len(group.sinks) > 1:
            self.report(
                IssueCode.BAD_VALUE,
                "the default sink processor takes exactly one sink; use failover or load_balance",
                path,
                group.raw.props.get("processor.type") or group.sinks_entry,
            )
            return False
        if kind != "failover":
            return True
        priorities: dict[str, int] = settings["priority"]
        for sink in list(priorities):
            if sink not in group.sinks:
                self.report(
                    IssueCode.BAD_KEY,
                    f"processor.priority.{sink}: '{sink}' is not a sink of this group",
                    path,
                    group.raw.props.get(f"processor.priority.{sink}"),
                )
                del priorities[sink]
        next_priority = 0
        resolved: dict[str, int] = {}
        seen: dict[int, str] = {}
        for sink in group.sinks:
            if sink in priorities:
                priority = priorities[sink]
            else:  # Flume gives unprioritised sinks -1, -2, ... in list order
                next_priority -= 1
                priority = next_priority
            if priority in seen:
                self.report(
                    IssueCode.BAD_VALUE,
                    f"sink '{sink}' has the same priority ({priority}) as '{seen[priority]}'; "
                    "it is left out of the group, as Flume silently leaves it out",
                    path,
                    group.raw.props.get(f"processor.priority.{sink}") or group.sinks_entry,
                )
                continue
            seen[priority] = sink
            resolved[sink] = priority
        settings["priority"] = resolved
        group.sinks = [s for s in group.sinks if s in resolved]
        return True

    def _drop_unused_channels(
        self, channels: dict[str, Built], sources: dict[str, _Source], sinks: dict[str, _Sink]
    ) -> None:
        used = {c for s in sources.values() for c in s.channels}
        used |= {s.channel for s in sinks.values()}
        for name in list(channels):
            if name in used:
                continue
            if self.reporter.fatal_count:  # nothing starts anyway: say only what matters
                del channels[name]
                continue
            self.report(
                IssueCode.UNUSED_COMPONENT,
                f"channel '{name}' is not used by any valid source or sink; removed, as Flume "
                "removes it",
                self.path("channels", name),
                self.layout.components["channels"][name].anchor,
            )
            del channels[name]

    def _say_what_is_dropped(
        self,
        names: dict[str, list[str]],
        channels: dict[str, Built],
        sources: dict[str, _Source],
        sinks: dict[str, _Sink],
        groups: dict[str, _Group],
    ) -> None:
        """One DROPPED warning for every configured component that will not run and has not
        been named as dropped yet, pointing at the line of its first problem."""
        if self.reporter.strict or self.reporter.fatal_count:
            return  # the errors say enough
        kept: dict[str, Mapping[str, Any]] = {
            "sources": sources, "channels": channels, "sinks": sinks, "sinkgroups": groups
        }
        said = {
            i.component
            for i in self.reporter.issues
            if i.code in (IssueCode.DROPPED, IssueCode.UNUSED_COMPONENT)
        }
        for kind, listed in names.items():
            for name in listed:
                path = self.path(kind, name)
                if name in kept[kind] or path in said:
                    continue
                first = next(
                    (i for i in self.reporter.issues if i.component == path and i.line), None
                )
                anchor = self.layout.components[kind][name].anchor
                if first is not None:  # right after the problem that drops it
                    anchor = Entry("", "", first.file, first.line)
                self.report(
                    IssueCode.DROPPED, f"{_what(path)} is dropped, as Flume drops it", path, anchor
                )

    def _agent_is_runnable(
        self, channels: dict[str, Built], sources: dict[str, _Source], sinks: dict[str, _Sink]
    ) -> bool:
        if channels and (sources or sinks):
            return True
        if self.reporter.fatal_count:
            return False  # that error explains it
        what = "no valid channel" if not channels else "no valid source or sink"
        self.report(
            IssueCode.INVALID_AGENT,
            f"agent '{self.agent}' has {what}; nothing would run (Flume does not start it either)",
            self.agent,
            fatal=True,
        )
        return False

    # --- result ------------------------------------------------------------------------------

    def _location(self, built: Built) -> Location | None:
        entry = built.anchor
        return Location(entry.file, entry.line) if entry else None

    def _assemble(
        self,
        channels: dict[str, Built],
        sources: dict[str, _Source],
        sinks: dict[str, _Sink],
        groups: dict[str, _Group],
    ) -> AgentConfig:
        return AgentConfig(
            name=self.agent,
            sources={
                name: SourceSpec(
                    kind="source",
                    name=name,
                    type=s.built.type.name,
                    settings=s.built.settings,
                    location=self._location(s.built),
                    channels=tuple(s.channels),
                    selector=ComponentSpec(
                        "selector",
                        name,
                        s.selector.type.name,
                        s.selector.settings,
                        self._location(s.selector),
                    ),
                    interceptors=tuple(
                        ComponentSpec(
                            "interceptor", iname, b.type.name, b.settings, self._location(b)
                        )
                        for iname, b in s.interceptors
                    ),
                )
                for name, s in sources.items()
            },
            channels={
                name: ComponentSpec("channel", name, b.type.name, b.settings, self._location(b))
                for name, b in channels.items()
            },
            sinks={
                name: SinkSpec(
                    kind="sink",
                    name=name,
                    type=s.built.type.name,
                    settings=s.built.settings,
                    location=self._location(s.built),
                    channel=s.channel,
                )
                for name, s in sinks.items()
            },
            sinkgroups={
                name: SinkGroupSpec(
                    kind="sinkgroup",
                    name=name,
                    type=built.type.name,
                    settings=built.settings,
                    location=self._location(built),
                    sinks=tuple(g.sinks),
                )
                for name, g in groups.items()
                if (built := g.built) is not None  # always: invalid groups were removed
            },
        )


def _what(path: str) -> str:
    """``a1.sinkgroups.g1`` -> ``sink group 'g1'``."""
    _, kind, name = path.split(".", 2)
    return f"{SINGULAR[kind].replace('sinkg', 'sink g')} '{name}'"


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean to list it as '{close[0]}'?)" if close else ""


def _listed_but_empty(kind: str, name: str, prefix: str, configured: Mapping[str, Any]) -> str:
    message = f"{kind} '{name}' is listed but has no properties (expected {prefix}.type ...)"
    close = difflib.get_close_matches(name.lstrip("#"), list(configured), n=1, cutoff=0.6)
    if close:
        message += f"; did you mean '{close[0]}'?"
    return message + "; it is ignored, as Flume ignores it"
