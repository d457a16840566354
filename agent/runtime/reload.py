"""Reloading the configuration file while the agent runs, as flume-ng does (every 30 s).

``ConfigReloader.check()`` reads the file; when its content changed it loads it (every issue is
logged, as at start) and, if it loads, makes the running agent match it. A file that does not
load leaves the agent as it is (Flume stops everything it cannot rebuild; keeping the last good
configuration loses nothing).

Only what changed restarts (``plan``), and nothing in a channel is lost:

- a source whose spec changed, or whose channel is replaced, is stopped and built again;
- a sink processor (a sink group, or a sink on its own) restarts when its spec, one of its
  sinks' or its channel changes; its current batch settles (commit or roll back) first, so
  the events stay in the channel for the new sinks;
- a channel whose settings changed is replaced once empty: its sources stop, its sinks get up
  to ``grace`` seconds to drain it, then it is rebuilt. A file channel that keeps its data
  directory is simply reopened (its log holds the events). A channel that does not drain in
  time keeps running as it is, its sources start again, and the change is tried again at the
  next check: the reload goes on until the agent matches the file.

Specs are compared without their file locations, so moving lines restarts nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config.loader import LoadResult
from agent.config.model import AgentConfig, ComponentSpec
from agent.runtime.agent import Agent
from agent.runtime.graph import build_channel, build_processor, build_sinks, build_source

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0  # seconds, flume-ng's polling period


def _bare(spec: ComponentSpec | None) -> Any:
    """A spec without file locations (nested selector and interceptors included)."""
    if spec is None:
        return None
    changes: dict[str, Any] = {"location": None}
    if getattr(spec, "selector", None) is not None:
        changes["selector"] = _bare(spec.selector)  # type: ignore[attr-defined]
    if getattr(spec, "interceptors", None):
        changes["interceptors"] = tuple(_bare(i) for i in spec.interceptors)  # type: ignore
    return dataclasses.replace(spec, **changes)


def same(a: ComponentSpec | None, b: ComponentSpec | None) -> bool:
    return _bare(a) == _bare(b)


def same_config(a: AgentConfig, b: AgentConfig) -> bool:
    return all(
        set(x) == set(y) and all(same(x[n], y[n]) for n in x)
        for x, y in (
            (a.sources, b.sources), (a.channels, b.channels), (a.sinks, b.sinks),
            (a.sinkgroups, b.sinkgroups),
        )
    )


def units(config: AgentConfig) -> dict[str, tuple[str, ...]]:
    """Sink processors: each sink group with its sinks, and every other sink on its own."""
    grouped = {sink for group in config.sinkgroups.values() for sink in group.sinks}
    result = {name: group.sinks for name, group in config.sinkgroups.items()}
    result.update({name: (name,) for name in config.sinks if name not in grouped})
    return result


@dataclass
class Plan:
    """Names to stop (old config) and to start (new config); a changed part is in both."""

    stop_sources: set[str]
    stop_units: set[str]
    stop_channels: set[str]
    start_channels: set[str]
    start_units: set[str]
    start_sources: set[str]


def plan(old: AgentConfig, new: AgentConfig, replaced: set[str] | None = None) -> Plan:
    """What to restart to go from ``old`` to ``new``. ``replaced``: the channels that really
    get new objects (default: every changed or removed one)."""
    if replaced is None:
        replaced = {c for c in old.channels if not same(old.channels[c], new.channels.get(c))}
    added = set(new.channels) - set(old.channels)
    stop_sources = {
        name for name, spec in old.sources.items()
        if not same(spec, new.sources.get(name)) or set(spec.channels) & replaced
    }
    old_units, new_units = units(old), units(new)

    def unit_changed(name: str) -> bool:
        sinks = old_units[name]
        return (
            new_units.get(name) != sinks
            or not same(old.sinkgroups.get(name), new.sinkgroups.get(name))
            or any(not same(old.sinks[k], new.sinks.get(k)) for k in sinks)
            or any(old.sinks[k].channel in replaced for k in sinks)
        )

    stop_units = {name for name in old_units if unit_changed(name)}
    return Plan(
        stop_sources=stop_sources,
        stop_units=stop_units,
        stop_channels=replaced,
        start_channels=(replaced & set(new.channels)) | added,
        start_units={n for n in new_units if n not in old_units or n in stop_units},
        start_sources={n for n in new.sources if n not in old.sources or n in stop_sources},
    )


def _keeps_its_log(agent: Agent, name: str, new: AgentConfig) -> bool:
    """A file channel reopened on the same data directory finds its events in its log."""
    old, spec = agent.channels.get(name), new.channels.get(name)
    if spec is None or spec.type != "file" or type(old).__name__ != "FileChannel":
        return False
    directory = Path(spec.settings["dataDirs"][0]).expanduser()
    return directory.resolve() == Path(getattr(old, "dir", "")).resolve()


async def reconfigure(agent: Agent, new: AgentConfig, grace: float) -> bool:
    """Make ``agent`` run ``new``; True when it does entirely (else the next call goes on)."""
    old = agent.config
    first = plan(old, new)
    for name in sorted(first.stop_sources):
        await agent.stop_source(name, grace)
    # a replaced channel must be empty first (unless its log carries the events over)
    kept: set[str] = set()
    for name in sorted(first.stop_channels):
        if name not in agent.channels or _keeps_its_log(agent, name, new):
            continue
        if not await agent.drain([name], grace):
            if name in new.channels:
                left = agent.channels[name].size()
                log.warning("agent %s: channel %s still holds %d event(s) after %.1f s; its "
                            "new settings wait for the next check", agent.name, name, left, grace)
                kept.add(name)
            else:
                log.warning("agent %s: channel %s is removed from the configuration with %d "
                            "event(s) its sinks did not take", agent.name, name,
                            agent.channels[name].size())
    steps = plan(old, new, first.stop_channels - kept)
    steps.start_sources |= first.stop_sources & set(new.sources)  # every stopped one again
    applied = _Applied(old, new, kept)
    for name in sorted(steps.stop_units):
        await agent.stop_processor(name, grace)
    for name in sorted(steps.stop_channels):
        await agent.stop_channel(name)
    for name in sorted(steps.start_channels):
        ok = await _attempt(agent, f"channel {name}", _start_channel(agent, new, name))
        applied.channel(name, ok)
    for name in sorted(steps.start_units):
        ok = await _attempt(agent, f"sink processor {name}", _start_unit(agent, new, name))
        applied.unit(name, ok)
    for name in sorted(steps.start_sources):
        ok = await _attempt(agent, f"source {name}", _start_source(agent, new, name))
        applied.source(name, ok)
    agent.config = applied.config()
    done = same_config(agent.config, new)
    log.info("agent %s: configuration reloaded%s", agent.name, "" if done else " in part")
    return done


async def _attempt(agent: Agent, what: str, start: Awaitable[None]) -> bool:
    try:
        await start
    except Exception as exc:  # a port in use, a directory locked: retried at the next check
        log.error("agent %s: reload could not start %s: %s", agent.name, what, exc)
        return False
    return True


async def _start_channel(agent: Agent, config: AgentConfig, name: str) -> None:
    await agent.start_channel(name, build_channel(config.channels[name], agent.ctx))


async def _start_unit(agent: Agent, config: AgentConfig, name: str) -> None:
    group = config.sinkgroups.get(name)
    names = group.sinks if group is not None else (name,)
    sinks = build_sinks([config.sinks[k] for k in names], agent.ctx, agent.channels)
    await agent.start_processor(name, build_processor(name, group, sinks, agent.ctx))


async def _start_source(agent: Agent, config: AgentConfig, name: str) -> None:
    await agent.start_source(name, build_source(config.sources[name], agent.ctx, agent.channels))


class _Applied:
    """What runs after a reload: the new specs of what started, the old of what was kept."""

    def __init__(self, old: AgentConfig, new: AgentConfig, kept: set[str]) -> None:
        self.old, self.new = old, new
        self.channels = {n: old.channels[n] for n in old.channels if n in new.channels}
        self.channels.update({n: old.channels[n] for n in kept})
        self.sources = {n: s for n, s in old.sources.items() if same(s, new.sources.get(n))}
        self.sinks = {n: s for n, s in old.sinks.items() if same(s, new.sinks.get(n))}
        self.groups = {n: g for n, g in old.sinkgroups.items() if same(g, new.sinkgroups.get(n))}

    def channel(self, name: str, ok: bool) -> None:
        if ok:
            self.channels[name] = self.new.channels[name]
        else:
            self.channels.pop(name, None)

    def source(self, name: str, ok: bool) -> None:
        if ok:
            self.sources[name] = self.new.sources[name]
        else:
            self.sources.pop(name, None)

    def unit(self, name: str, ok: bool) -> None:
        group = self.new.sinkgroups.get(name)
        for sink in group.sinks if group is not None else (name,):
            if ok:
                self.sinks[sink] = self.new.sinks[sink]
            else:
                self.sinks.pop(sink, None)
        if group is not None and ok:
            self.groups[name] = group
        else:
            self.groups.pop(name, None)

    def config(self) -> AgentConfig:
        return AgentConfig(self.new.name, self.sources, self.channels, self.sinks, self.groups)


@dataclass(frozen=True)
class ReloadSource:
    """Where a running agent's configuration comes from: ``load`` loads ``path`` (and
    reports its issues)."""

    path: str
    load: Callable[[], LoadResult]
    interval: float = DEFAULT_INTERVAL


class ConfigReloader:
    """Polls ``path``; ``load`` loads it (and reports its issues)."""

    def __init__(
        self,
        agent: Agent,
        path: str,
        load: Callable[[], LoadResult],
        *,
        grace: float = 10.0,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.agent = agent
        self.path = Path(path)
        self.load = load
        self.grace = grace
        self.interval = interval
        self._digest = self._read_digest()
        self._desired: AgentConfig | None = None

    def _read_digest(self) -> bytes | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None

    async def check(self) -> bool:
        """One poll: True when the agent was reconfigured (in full or in part)."""
        digest = self._read_digest()
        if digest is not None and digest != self._digest:
            self._digest = digest
            log.info("agent %s: %s changed; reloading", self.agent.name, self.path)
            result = self.load()
            if result.config is None:
                log.error("agent %s: %s does not load (%d errors); the running configuration "
                          "stays", self.agent.name, self.path, len(result.errors))
                self._desired = None
            else:
                self._desired = result.config
        if self._desired is None or same_config(self._desired, self.agent.config):
            return False
        if await reconfigure(self.agent, self._desired, self.grace):
            self._desired = None
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                try:
                    await self.check()
                except Exception:
                    log.exception("agent %s: reload failed", self.agent.name)
