"""The graph builder: a validated ``AgentConfig`` -> wired components (nothing started).

``build_agent`` builds everything and collects every problem before failing, so one run shows
all of them; the ``build_*`` functions build one part (a reload rebuilds only what changed).
Validation has resolved every name and checked every setting, so a failure here is an
environment problem (a file that cannot be read, a directory already locked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.channel_processor import DefaultChannelProcessor
from agent.components import Channel, Component, Sink
from agent.config.model import AgentConfig, ComponentSpec, SinkGroupSpec, SinkSpec, SourceSpec
from agent.registry import BuildContext, ComponentConfigError, build
from agent.runtime.agent import Agent
from agent.selectors import ReplicatingSelector
from agent.sinkprocessors import DefaultSinkProcessor, SinkProcessor


class AgentBuildError(Exception):
    """One or more components could not be built; ``problems`` lists each with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("cannot build agent:\n  " + "\n  ".join(problems))
        self.problems = problems


def build_channel(spec: ComponentSpec, ctx: BuildContext) -> Channel:
    channel: Channel = build("channel", spec, ctx)
    return channel


def build_source(
    spec: SourceSpec, ctx: BuildContext, channels: Mapping[str, Channel]
) -> Component:
    """The source with its channel processor (interceptors, then the selector)."""
    missing = [c for c in spec.channels if c not in channels]
    if missing:
        raise ComponentConfigError(spec, f"its channel(s) {', '.join(missing)} did not start")
    own = {c: channels[c] for c in spec.channels}
    selector = (  # no selector keys: Flume's replicating selector
        build("selector", spec.selector, ctx, own) if spec.selector else ReplicatingSelector(own)
    )
    interceptors = [build("interceptor", i, ctx) for i in spec.interceptors]
    source: Any = build("source", spec, ctx)
    source.channel_processor = DefaultChannelProcessor(selector, interceptors)
    component: Component = source
    return component


def build_sinks(
    specs: Sequence[SinkSpec], ctx: BuildContext, channels: Mapping[str, Channel]
) -> list[Sink]:
    sinks = []
    for spec in specs:
        if spec.channel not in channels:
            raise ComponentConfigError(spec, f"its channel {spec.channel} did not start")
        sink: Sink = build("sink", spec, ctx)
        sink.channel = channels[spec.channel]
        sinks.append(sink)
    return sinks


def build_processor(
    name: str, group: SinkGroupSpec | None, sinks: list[Sink], ctx: BuildContext
) -> SinkProcessor:
    """A sink group's processor, or the default one of a sink on its own (``group`` None)."""
    if group is None:
        return DefaultSinkProcessor(sinks[0])
    processor: SinkProcessor = build("processor", group, ctx, sinks)
    return processor


def build_agent(config: AgentConfig, ctx: BuildContext | None = None) -> Agent:
    ctx = ctx if ctx is not None else BuildContext()
    problems: list[str] = []

    def attempt(make: Any, *args: Any) -> Any:
        try:
            return make(*args)
        except ComponentConfigError as exc:
            problems.append(str(exc))
        return None

    for name, spec in config.channels.items():
        channel = attempt(build_channel, spec, ctx)
        if channel is not None:
            ctx.channels[name] = channel

    sources: dict[str, Component] = {}
    for name, spec in config.sources.items():
        if all(c in ctx.channels for c in spec.channels):  # else its channel's problem says it
            source = attempt(build_source, spec, ctx, ctx.channels)
            if source is not None:
                sources[name] = source

    grouped = {sink: g for g, group in config.sinkgroups.items() for sink in group.sinks}
    sinks: dict[str, Sink] = {}
    for name, spec in config.sinks.items():
        if spec.channel in ctx.channels:
            built = attempt(build_sinks, [spec], ctx, ctx.channels)
            if built is not None:
                sinks[name] = built[0]

    processors: dict[str, SinkProcessor] = {}
    for name, group in config.sinkgroups.items():
        members = [sinks[s] for s in group.sinks if s in sinks]
        if len(members) == len(group.sinks):
            processor = attempt(build_processor, name, group, members, ctx)
            if processor is not None:
                processors[name] = processor
    for name, sink in sinks.items():
        if name not in grouped:
            processors[name] = DefaultSinkProcessor(sink)

    if problems:
        raise AgentBuildError(problems)
    return Agent(config.name, dict(ctx.channels), sources, sinks, processors, ctx, config=config)
