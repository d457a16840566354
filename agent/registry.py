"""Component types: canonical alias -> class, imported lazily by dotted path.

Lazy imports let each engineer's component plug in by adding nothing but its own module:
the registry names ``agent.sources.spooldir:SpoolDirSource`` and only imports it when a
configuration uses ``spooldir``. A ``type`` that is no alias is taken as a dotted path
(``package.module:Class`` or ``package.module.Class``), as Flume accepts class names.

The convention every component class follows
------------------------------------------------
``@classmethod from_spec(cls, spec, ctx: BuildContext) -> instance``

- ``spec`` is the validated ``agent.config.model`` spec: ``spec.name``, ``spec.settings`` (Flume's
  own property keys, defaults applied, values converted), ``spec.location`` for error messages.
- ``ctx.clock`` is the only source of "now" (``agent.components.Clock``).
- ``ctx.metrics`` is the agent's ``agent.metrics.MetricsRegistry``: take your counter group with
  ``ctx.metrics.source(name)`` / ``.sink(name)`` / ``.channel(name)`` and add Flume's counters.
- ``ctx.channels`` maps channel names to the built channels (filled before sources and sinks).
- Sources are ``PollableSource`` (``async process() -> Status``, never sleeps; call
  ``self.wakeup()`` when new input may exist) or ``EventDrivenSource`` (accepts in ``start()``).
  The graph builder assigns ``source.channel_processor`` after ``from_spec``.
- Sinks subclass ``Sink``; the graph builder assigns ``sink.channel`` after ``from_spec``.
  ``process()`` handles one batch in one channel transaction: nothing to take -> BACKOFF;
  failure -> roll back, then raise (the runner logs and backs off).
- Raise ``ComponentConfigError`` (below) from ``from_spec`` for bad settings.
- ``start()``/``stop()`` are async and idempotent; the runtime starts channels, then sinks, then
  sources, and stops in reverse with a drain period.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.components import Clock, SystemClock
from agent.metrics import MetricsRegistry

if TYPE_CHECKING:
    from agent.components import Channel
    from agent.config.model import ComponentSpec


@dataclass
class BuildContext:
    """What every ``from_spec`` receives besides its spec."""

    clock: Clock = field(default_factory=SystemClock)
    metrics: MetricsRegistry = field(default_factory=MetricsRegistry)
    channels: dict[str, Channel] = field(default_factory=dict)


class ComponentConfigError(ValueError):
    """A component refused its settings; the message names the component and where it came from."""

    def __init__(self, spec: ComponentSpec, problem: str) -> None:
        where = f" ({spec.location})" if spec.location is not None else ""
        super().__init__(f"{spec.kind} {spec.name}{where}: {problem}")
        self.spec = spec
        self.problem = problem


SOURCES = {
    "seq": "agent.sources.seq:SequenceGeneratorSource",
    "spooldir": "agent.sources.spooldir:SpoolDirSource",
    "avro": "agent.sources.avro:AvroSource",
    "exec": "agent.sources.exec:ExecSource",
    "netcat": "agent.sources.netcat:NetcatSource",
    "netcatudp": "agent.sources.netcat:NetcatUdpSource",
    "syslogtcp": "agent.sources.syslog:SyslogTcpSource",
    "multiport_syslogtcp": "agent.sources.syslog:MultiportSyslogTcpSource",
    "syslogudp": "agent.sources.syslog:SyslogUdpSource",
    "http": "agent.sources.http_source:HttpSource",
    "taildir": "agent.sources.taildir:TaildirSource",
}
SINKS = {
    "logger": "agent.sinks.logger:LoggerSink",
    "null": "agent.sinks.null:NullSink",
    "file_roll": "agent.sinks.file_roll:RollingFileSink",
    "avro": "agent.sinks.avro:AvroSink",
    "spark": "agent.sinks.spark:SparkSink",
    "hdfs": "agent.sinks.hdfs:HdfsSink",
    "http": "agent.sinks.http_sink:HttpSink",
}
CHANNELS = {"memory": "agent.channels.memory:MemoryChannel",
            "file": "agent.channels.file:FileChannel"}
SINK_PROCESSORS = {
    "default": "agent.sinkprocessors:DefaultSinkProcessor",
    "failover": "agent.sinkprocessors:FailoverSinkProcessor",
    "load_balance": "agent.sinkprocessors:LoadBalancingSinkProcessor",
}
REGISTRY: dict[str, dict[str, str]] = {
    "source": SOURCES,
    "sink": SINKS,
    "channel": CHANNELS,
    "sinkgroup": SINK_PROCESSORS,
}


def import_path(path: str) -> Any:
    """Import ``pkg.mod:Name`` or ``pkg.mod.Name``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"not a dotted class path: {path!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name} has no {attr}") from None


def resolve(kind: str, type_: str) -> Any:
    """The class for a component ``kind`` (source/sink/channel/sinkgroup) and ``type`` alias."""
    aliases = REGISTRY.get(kind)
    if aliases is None:
        raise LookupError(f"unknown component kind {kind!r}")
    path = aliases.get(type_.lower())
    if path is None:
        if "." not in type_:
            known = ", ".join(sorted(aliases))
            raise LookupError(f"unknown {kind} type {type_!r} (known: {known})")
        path = type_
    try:
        return import_path(path)
    except ImportError as exc:
        raise LookupError(f"{kind} type {type_!r} is not available: {exc}") from exc


def build(kind: str, spec: ComponentSpec, ctx: BuildContext) -> Any:
    """Resolve ``spec.type`` among ``kind``'s aliases and call the class's ``from_spec``."""
    try:
        cls = resolve(kind, spec.type)
    except LookupError as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
    try:
        return cls.from_spec(spec, ctx)
    except ComponentConfigError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
