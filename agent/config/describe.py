"""Human-readable rendering of a validated AgentConfig (what ``flume-agent --validate`` prints).

Shows the wiring first (source -> interceptors -> selector -> channels -> sinks, sink groups),
then every component with every setting, defaults included, so a user sees exactly what
would run. Passwords are masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.config.model import AgentConfig, ComponentSpec, SourceSpec

_SECRET_SUFFIX = "-password"


def format_value(value: Any) -> str:
    """Render a setting the way a user would write it in a properties file."""
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return " ".join(value) if value else "(empty)"
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k}: {format_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def _settings(settings: Mapping[str, Any], indent: str) -> list[str]:
    lines = []
    for key, value in settings.items():
        shown = "******" if key.endswith(_SECRET_SUFFIX) and value else format_value(value)
        lines.append(f"{indent}{key} = {shown}")
    return lines


def _source_flow(source: SourceSpec) -> str:
    parts = [f"{source.name} ({source.type})"]
    if source.interceptors:
        parts.append("interceptors " + " ".join(i.name for i in source.interceptors))
    selector = source.selector.type if source.selector else "replicating"
    parts.append(f"{selector} selector")
    parts.append("channels " + " ".join(source.channels))
    return " -> ".join(parts)


def _component(header: str, spec: ComponentSpec, indent: str = "    ") -> list[str]:
    where = f"  [{spec.location}]" if spec.location else ""
    return [f"  {header}{where}", *_settings(spec.settings, indent)]


def describe(config: AgentConfig) -> str:
    grouped = {sink: group.name for group in config.sinkgroups.values() for sink in group.sinks}
    lines = [f"agent {config.name}: configuration is valid", "", "flow:"]
    for source in config.sources.values():
        lines.append(f"  {_source_flow(source)}")
    for channel in config.channels.values():
        readers = [
            s.name + (f" (group {grouped[s.name]})" if s.name in grouped else "")
            for s in config.sinks.values()
            if s.channel == channel.name
        ]
        lines.append(f"  {channel.name} ({channel.type}) -> sinks {' '.join(readers) or '(none)'}")
    for group in config.sinkgroups.values():
        lines.append(f"  sink group {group.name} ({group.type}): {' '.join(group.sinks)}")

    lines += ["", "sources:"]
    for source in config.sources.values():
        lines += _component(
            f"{source.name} type={source.type} channels={' '.join(source.channels)}", source
        )
        for interceptor in source.interceptors:
            lines += _component(
                f"  interceptor {interceptor.name} type={interceptor.type}", interceptor, "      "
            )
        if source.selector is not None:
            selector = source.selector
            lines += _component(f"  selector type={selector.type}", selector, "      ")
    lines += ["", "channels:"]
    for channel in config.channels.values():
        lines += _component(f"{channel.name} type={channel.type}", channel)
    lines += ["", "sinks:"]
    for sink in config.sinks.values():
        lines += _component(f"{sink.name} type={sink.type} channel={sink.channel}", sink)
    if config.sinkgroups:
        lines += ["", "sink groups:"]
        for group in config.sinkgroups.values():
            lines += _component(
                f"{group.name} processor={group.type} sinks={' '.join(group.sinks)}", group
            )
    return "\n".join(lines)
