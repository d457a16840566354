"""Interceptors: pure ``event -> event | None`` rewrites, run by the channel processor.

Each class declares its keys in ``SCHEMA`` and is built with ``from_settings(settings, clock)``
from the validated settings (see ``agent/registry.py``). They mutate headers in place as
Flume's do and never touch I/O; ``clock`` is the only notion of time.
"""

from __future__ import annotations

from agent.interceptors.base import Interceptor, InterceptorChain

__all__ = ["Interceptor", "InterceptorChain"]
