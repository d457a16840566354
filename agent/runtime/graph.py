"""The graph builder: a validated ``AgentConfig`` -> wired components (nothing started).

Every problem is collected before failing, so one run shows all of them.
"""

from __future__ import annotations

from typing import Any

from agent.channel_processor import DefaultChannelProcessor
from agent.components import Component, EventDrivenSource, PollableSource, Sink
from agent.config.model import AgentConfig
from agent.interceptors import build_interceptor
from agent.registry import BuildContext, ComponentConfigError, build, resolve
from agent.runtime.agent import Agent
from agent.selectors import SelectorConfigError, build_selector
from agent.sinkprocessors import DefaultSinkProcessor, SinkProcessor


class AgentBuildError(Exception):
    """One or more components could not be built; ``problems`` lists each with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("cannot build agent:\n  " + "\n  ".join(problems))
        self.problems = problems


def build_agent(config: AgentConfig, ctx: BuildContext | None = None) -> Agent:
    ctx = ctx if ctx is not None else BuildContext()
    problems: list[str] = []

    def attempt(action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except ComponentConfigError as exc:
            problems.append(str(exc))
        return None

    for name, spec in config.channels.items():
        channel = attempt(build, "channel", spec, ctx)
        if channel is not None:
            ctx.channels[name] = channel

    sources: dict[str, Component] = {}
    for name, spec in config.sources.items():
        source = attempt(build, "source", spec, ctx)
        if source is None:
            continue
        if not isinstance(source, PollableSource | EventDrivenSource):
            problems.append(str(ComponentConfigError(spec, "is neither pollable nor event-driven")))
            continue
        missing = [c for c in spec.channels if c not in ctx.channels]
        if missing or not spec.channels:
            what = f"unknown channel(s) {', '.join(missing)}" if missing else "no channels"
            problems.append(str(ComponentConfigError(spec, what)))
            continue
        try:
            selector = build_selector(spec.selector, {c: ctx.channels[c] for c in spec.channels})
        except SelectorConfigError as exc:
            problems.append(str(ComponentConfigError(spec, f"selector: {exc}")))
            continue
        interceptors = [attempt(build_interceptor, i, ctx.clock) for i in spec.interceptors]
        if any(i is None for i in interceptors):
            continue
        source.channel_processor = DefaultChannelProcessor(selector, interceptors)
        sources[name] = source

    sinks: dict[str, Sink] = {}
    for name, spec in config.sinks.items():
        sink = attempt(build, "sink", spec, ctx)
        if sink is None:
            continue
        if spec.channel not in ctx.channels:
            problems.append(str(ComponentConfigError(spec, f"unknown channel {spec.channel!r}")))
            continue
        sink.channel = ctx.channels[spec.channel]
        sinks[name] = sink

    processors: dict[str, SinkProcessor] = {}
    grouped: set[str] = set()
    for name, spec in config.sinkgroups.items():
        members = [sinks[s] for s in spec.sinks if s in sinks]
        grouped.update(spec.sinks)
        try:
            cls = resolve("sinkgroup", spec.type)
            processors[name] = cls.from_spec(spec, members, ctx)
        except (LookupError, ValueError, TypeError) as exc:
            problems.append(str(ComponentConfigError(spec, str(exc))))
    for name, sink in sinks.items():
        if name not in grouped:
            processors[name] = DefaultSinkProcessor(sink)

    if problems:
        raise AgentBuildError(problems)
    return Agent(config.name, dict(ctx.channels), sources, sinks, processors, ctx)
