"""Interceptors: pure ``event -> event | None`` rewrites, run by the channel processor.

Each class is built with ``from_settings(settings, clock)`` from Flume's keys (defaults applied by
the config layer; missing keys fall back to Flume's defaults here too). They mutate headers in
place as Flume's do and never touch I/O; ``clock`` is the only notion of time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agent.interceptors.base import Interceptor, InterceptorChain
from agent.registry import ComponentConfigError, import_path

if TYPE_CHECKING:
    from agent.components import Clock
    from agent.config.model import ComponentSpec

INTERCEPTORS = {
    "timestamp": "agent.interceptors.headers:TimestampInterceptor",
    "host": "agent.interceptors.headers:HostInterceptor",
    "static": "agent.interceptors.headers:StaticInterceptor",
    "remove_header": "agent.interceptors.headers:RemoveHeaderInterceptor",
    "uuid": "agent.interceptors.headers:UUIDInterceptor",
    "regex_filter": "agent.interceptors.regex:RegexFilterInterceptor",
    "regex_extractor": "agent.interceptors.regex:RegexExtractorInterceptor",
    "search_replace": "agent.interceptors.regex:SearchReplaceInterceptor",
}


def build_interceptor(spec: ComponentSpec, clock: Clock) -> Interceptor:
    """Build one interceptor; bad settings raise ``ComponentConfigError`` naming it."""
    path = INTERCEPTORS.get(spec.type.lower())
    if path is None:
        known = ", ".join(sorted(INTERCEPTORS))
        raise ComponentConfigError(spec, f"unknown interceptor type {spec.type!r} (known: {known})")
    cls = import_path(path)
    settings: Mapping[str, Any] = spec.settings
    try:
        interceptor: Interceptor = cls.from_settings(settings, clock)
    except (ValueError, TypeError, KeyError) as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
    return interceptor


__all__ = ["INTERCEPTORS", "Interceptor", "InterceptorChain", "build_interceptor"]
