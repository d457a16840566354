"""The graph builder: a validated ``AgentConfig`` -> wired components (nothing started).

Every problem is collected before failing, so one run shows all of them.
"""

from __future__ import annotations

from typing import Any

from agent.channel_processor import DefaultChannelProcessor
from agent.components import Component, Sink
from agent.config.model import AgentConfig
from agent.registry import BuildContext, ComponentConfigError, build
from agent.runtime.agent import Agent
from agent.selectors import ReplicatingSelector
from agent.sinkprocessors import DefaultSinkProcessor, SinkProcessor


class AgentBuildError(Exception):
    """One or more components could not be built; ``problems`` lists each with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("cannot build agent:\n  " + "\n  ".join(problems))
        self.problems = problems


def build_agent(config: AgentConfig, ctx: BuildContext | None = None) -> Agent:
    """Every component of a validated configuration, wired. Validation has resolved every
    name and checked every setting, so a failure here is an environment problem (a file
    that cannot be read, a directory already locked)."""
    ctx = ctx if ctx is not None else BuildContext()
    problems: list[str] = []

    def attempt(kind: str, spec: Any, *extra: Any) -> Any:
        try:
            return build(kind, spec, ctx, *extra)
        except ComponentConfigError as exc:
            problems.append(str(exc))
        return None

    for name, spec in config.channels.items():
        channel = attempt("channel", spec)
        if channel is not None:
            ctx.channels[name] = channel

    sources: dict[str, Component] = {}
    for name, spec in config.sources.items():
        source = attempt("source", spec)
        own = {c: ctx.channels[c] for c in spec.channels if c in ctx.channels}
        selector = (  # no selector keys: Flume's replicating selector
            attempt("selector", spec.selector, own) if spec.selector else ReplicatingSelector(own)
        )
        interceptors = [attempt("interceptor", i) for i in spec.interceptors]
        if source is None or selector is None or None in interceptors:
            continue
        source.channel_processor = DefaultChannelProcessor(selector, interceptors)
        sources[name] = source

    sinks: dict[str, Sink] = {}
    for name, spec in config.sinks.items():
        sink = attempt("sink", spec)
        if sink is not None and spec.channel in ctx.channels:
            sink.channel = ctx.channels[spec.channel]
            sinks[name] = sink

    processors: dict[str, SinkProcessor] = {}
    grouped: set[str] = set()
    for name, spec in config.sinkgroups.items():
        grouped.update(spec.sinks)
        processor = attempt("processor", spec, [sinks[s] for s in spec.sinks if s in sinks])
        if processor is not None:
            processors[name] = processor
    for name, sink in sinks.items():
        if name not in grouped:
            processors[name] = DefaultSinkProcessor(sink)

    if problems:
        raise AgentBuildError(problems)
    return Agent(config.name, dict(ctx.channels), sources, sinks, processors, ctx)
