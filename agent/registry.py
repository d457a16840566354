"""Component types: which class a configuration's ``type`` names, and how it is built.

How to add a component type
---------------------------
One class, carrying one declaration, plus one line here:

1. Write the class in its own module (``agent/sources/foo.py``) against the interface of its
   kind (below) and declare what it accepts in a class attribute::

       class FooSource(PollableSource):
           SCHEMA = Schema(
               keys=(Key("host", required=True), Key("batchSize", integer(1), 100)),
               rules=_foo_rules,          # optional cross-key checks (agent.config.schema)
               batch_key="batchSize",     # optional: checked against transactionCapacity
               listen=("host", "port"),   # optional: a socket it binds, for port conflicts
           )

           @classmethod
           def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> FooSource:
               s = spec.settings          # every key of SCHEMA, converted, defaults applied
               return cls(spec.name, s["host"], s["batchSize"], ctx.metrics.source(spec.name))

   Keys are Flume's exact property names. ``from_spec`` indexes ``spec.settings`` and restates
   no default and no check: anything it could refuse belongs in the schema (a converter, a
   ``floor`` or a rule), so that ``--validate`` exit 0 means the agent starts. A key Flume
   accepts but flumelet never reads is declared with ``ignored="why"``.
2. Add ``Builtin("foo", "agent.sources.foo:FooSource", java=("org.apache.flume...FooSource",))``
   to the kind's tuple below (and drop it from ``FLUME_ONLY`` if it was there). The module is
   imported only when a configuration uses the type.
3. The tests pick the type up by themselves: tests/unit/test_component_types.py builds every
   registered type with its defaults and with sample values of every key, and checks that
   construction reads every key validation accepts (``ignored`` ones excepted).

A plug-in is the same class outside this package: ``type = mypackage.module.ClassName`` (or
``mypackage.module:ClassName``) imports it, its ``SCHEMA`` (none: it takes no keys) validates
its keys, and it is built like a built-in. tests/plugins/ holds an example source and sink.

The interface of each kind
--------------------------
``@classmethod from_spec(cls, spec, ctx: BuildContext, ...) -> instance``, where ``spec`` is the
validated ``agent.config.model`` spec (``spec.name``, ``spec.settings``, ``spec.location``):

- source: a ``PollableSource`` (``async process() -> Status``, never sleeps; call
  ``self.wakeup()`` when new input may exist) or an ``EventDrivenSource`` (accepts in
  ``start()``). The graph builder assigns ``source.channel_processor`` after ``from_spec``.
- sink: a ``Sink``; the graph builder assigns ``sink.channel`` after ``from_spec``.
  ``process()`` handles one batch in one channel transaction: nothing to take -> BACKOFF;
  failure -> roll back, then raise (the runner logs and backs off).
- channel: a ``Component`` with ``transaction()``, ``add_listener()`` and ``size()``
  (``agent.components.Channel``).
- interceptor: an ``agent.interceptors.base.Interceptor`` (``intercept(event)``).
- selector: ``from_spec(spec, ctx, channels)`` -> ``agent.selectors.ChannelSelector``.
- processor (a sink group's): ``from_spec(spec, sinks, ctx)`` -> ``agent.sinkprocessors``'s
  ``SinkProcessor``.

``ctx.clock`` is the only source of "now"; ``ctx.metrics`` gives counter groups
(``ctx.metrics.source(name)`` / ``.sink(name)`` / ``.channel(name)``); ``ctx.channels`` maps
channel names to the built channels. ``start()``/``stop()`` are async and idempotent; the
runtime starts channels, then sinks, then sources, and stops in reverse with a drain period.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.components import Clock, SystemClock
from agent.metrics import MetricsRegistry

if TYPE_CHECKING:
    from agent.components import Channel
    from agent.config.model import ComponentSpec
    from agent.config.schema import Schema

KINDS = ("source", "channel", "sink", "interceptor", "selector", "processor")


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


@dataclass(frozen=True)
class Builtin:
    """``alias`` (case-insensitive) or one of Flume's ``java`` class names (exact) -> ``target``."""

    alias: str
    target: str  # "package.module:Class", imported on first use
    java: tuple[str, ...] = ()


_F = "org.apache.flume"
_I = f"{_F}.interceptor"

BUILTINS: dict[str, tuple[Builtin, ...]] = {
    "source": (
        Builtin("seq", "agent.sources.seq:SequenceGeneratorSource",
                (f"{_F}.source.SequenceGeneratorSource",)),
        Builtin("spooldir", "agent.sources.spooldir:SpoolDirSource",
                (f"{_F}.source.SpoolDirectorySource",)),
        Builtin("avro", "agent.sources.avro:AvroSource", (f"{_F}.source.AvroSource",)),
    ),
    "channel": (
        Builtin("memory", "agent.channels.memory:MemoryChannel", (f"{_F}.channel.MemoryChannel",)),
        Builtin("file", "agent.channels.file:FileChannel", (f"{_F}.channel.file.FileChannel",)),
    ),
    "sink": (
        Builtin("logger", "agent.sinks.logger:LoggerSink", (f"{_F}.sink.LoggerSink",)),
        Builtin("null", "agent.sinks.null:NullSink", (f"{_F}.sink.NullSink",)),
        Builtin("file_roll", "agent.sinks.file_roll:RollingFileSink",
                (f"{_F}.sink.RollingFileSink",)),
        Builtin("avro", "agent.sinks.avro:AvroSink", (f"{_F}.sink.AvroSink",)),
        Builtin("spark", "agent.sinks.spark:SparkSink",
                ("org.apache.spark.streaming.flume.sink.SparkSink",)),
    ),
    "interceptor": (
        Builtin("timestamp", "agent.interceptors.headers:TimestampInterceptor",
                (f"{_I}.TimestampInterceptor$Builder",)),
        Builtin("host", "agent.interceptors.headers:HostInterceptor",
                (f"{_I}.HostInterceptor$Builder",)),
        Builtin("static", "agent.interceptors.headers:StaticInterceptor",
                (f"{_I}.StaticInterceptor$Builder",)),
        Builtin("remove_header", "agent.interceptors.headers:RemoveHeaderInterceptor",
                (f"{_I}.RemoveHeaderInterceptor$Builder",)),
        Builtin("uuid", "agent.interceptors.headers:UUIDInterceptor",
                (f"{_F}.sink.solr.morphline.UUIDInterceptor$Builder",)),
        Builtin("regex_filter", "agent.interceptors.regex:RegexFilterInterceptor",
                (f"{_I}.RegexFilteringInterceptor$Builder",)),
        Builtin("regex_extractor", "agent.interceptors.regex:RegexExtractorInterceptor",
                (f"{_I}.RegexExtractorInterceptor$Builder",)),
        Builtin("search_replace", "agent.interceptors.regex:SearchReplaceInterceptor",
                (f"{_I}.SearchAndReplaceInterceptor$Builder",)),
    ),
    "selector": (
        Builtin("replicating", "agent.selectors:ReplicatingSelector",
                (f"{_F}.channel.ReplicatingChannelSelector",)),
        Builtin("multiplexing", "agent.selectors:MultiplexingSelector",
                (f"{_F}.channel.MultiplexingChannelSelector",)),
    ),
    "processor": (
        Builtin("default", "agent.sinkprocessors:DefaultSinkProcessor",
                (f"{_F}.sink.DefaultSinkProcessor",)),
        Builtin("failover", "agent.sinkprocessors:FailoverSinkProcessor",
                (f"{_F}.sink.FailoverSinkProcessor",)),
        Builtin("load_balance", "agent.sinkprocessors:LoadBalancingSinkProcessor",
                (f"{_F}.sink.LoadBalancingSinkProcessor",)),
    ),
}

# Flume's own types (and well-known Flume plug-ins) that flumelet does not have:
# alias (None: named by class only) -> Java class. Named in one consistent message.
FLUME_ONLY: dict[str, tuple[tuple[str | None, str], ...]] = {
    "source": (
        ("netcat", f"{_F}.source.NetcatSource"),
        ("netcatudp", f"{_F}.source.NetcatUdpSource"),
        ("exec", f"{_F}.source.ExecSource"),
        ("syslogtcp", f"{_F}.source.SyslogTcpSource"),
        ("multiport_syslogtcp", f"{_F}.source.MultiportSyslogTCPSource"),
        ("syslogudp", f"{_F}.source.SyslogUDPSource"),
        ("http", f"{_F}.source.http.HTTPSource"),
        ("thrift", f"{_F}.source.ThriftSource"),
        ("jms", f"{_F}.source.jms.JMSSource"),
        ("taildir", f"{_F}.source.taildir.TaildirSource"),
        (None, f"{_F}.source.kafka.KafkaSource"),
        (None, f"{_F}.source.twitter.TwitterSource"),
        (None, f"{_F}.source.scribe.ScribeSource"),
        (None, f"{_F}.source.StressSource"),
    ),
    "channel": (
        ("jdbc", f"{_F}.channel.jdbc.JdbcChannel"),
        ("spillablememory", f"{_F}.channel.SpillableMemoryChannel"),
        (None, f"{_F}.channel.kafka.KafkaChannel"),
        (None, f"{_F}.channel.PseudoTxnMemoryChannel"),
    ),
    "sink": (
        ("hdfs", f"{_F}.sink.hdfs.HDFSEventSink"),
        ("irc", f"{_F}.sink.irc.IRCSink"),
        ("thrift", f"{_F}.sink.ThriftSink"),
        ("elasticsearch", f"{_F}.sink.elasticsearch.ElasticSearchSink"),
        ("hbase", f"{_F}.sink.hbase.HBaseSink"),
        ("asynchbase", f"{_F}.sink.hbase.AsyncHBaseSink"),
        ("hbase2", f"{_F}.sink.hbase2.HBase2Sink"),
        ("morphline_solr", f"{_F}.sink.solr.morphline.MorphlineSolrSink"),
        ("hive", f"{_F}.sink.hive.HiveSink"),
        ("http", f"{_F}.sink.http.HttpSink"),
        (None, f"{_F}.sink.kafka.KafkaSink"),
        (None, f"{_F}.sink.kite.DatasetSink"),
        (None, f"{_F}.sink.kudu.KuduSink"),
    ),
    "interceptor": (
        (None, f"{_F}.sink.solr.morphline.MorphlineInterceptor$Builder"),
    ),
    "selector": (("load_balancing", f"{_F}.channel.LoadBalancingChannelSelector"),),
    "processor": (),
}


class TypeLookupError(LookupError):
    """``type`` names nothing flumelet can build. ``unavailable``: it names something Flume
    has (an alias or a Java class) rather than a typo."""

    def __init__(self, message: str, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


@dataclass(frozen=True)
class ComponentType:
    """A resolved ``type``: ``name`` is what specs record (the alias, or a plug-in's path)."""

    kind: str
    name: str
    cls: Any
    schema: Schema
    plugin: bool = False


def _interface(kind: str) -> tuple[type, ...]:
    """The base classes a class of ``kind`` must derive from (imported lazily)."""
    from agent.components import Component, EventDrivenSource, PollableSource, Sink

    if kind == "source":
        return (PollableSource, EventDrivenSource)
    if kind == "sink":
        return (Sink,)
    if kind == "channel":
        return (Component,)
    if kind == "interceptor":
        from agent.interceptors.base import Interceptor

        return (Interceptor,)
    if kind == "selector":
        from agent.selectors import ChannelSelector

        return (ChannelSelector,)
    from agent.sinkprocessors import SinkProcessor

    return (SinkProcessor,)


def _names(kind: str) -> str:
    return ", ".join(b.alias for b in BUILTINS[kind])


def lookup(kind: str, type_value: str) -> ComponentType:
    """Resolve ``type_value`` for ``kind``: a built-in alias (any case), one of Flume's class
    names for a built-in (exact), or a Python plug-in's dotted path. Raises TypeLookupError."""
    return _lookup(kind, type_value.strip())


@functools.cache
def _lookup(kind: str, type_value: str) -> ComponentType:
    for builtin in BUILTINS[kind]:
        if type_value.lower() == builtin.alias or type_value in builtin.java:
            cls = import_path(builtin.target)
            return ComponentType(kind, builtin.alias, cls, cls.SCHEMA)
    for alias, java in FLUME_ONLY[kind]:
        if (alias is not None and type_value.lower() == alias) or type_value == java:
            raise TypeLookupError(_unavailable(kind, type_value, java), unavailable=True)
    if "." not in type_value and ":" not in type_value:
        known = [b.alias for b in BUILTINS[kind]]
        raise TypeLookupError(
            f"unknown {kind} type '{type_value}'{_close(type_value, known)} "
            f"(available: {_names(kind)}; a Python plug-in is named package.module.ClassName)"
        )
    return _plugin(kind, type_value)


def _plugin(kind: str, path: str) -> ComponentType:
    module_name, attr = _split(path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name.split(".")[0]:
            # not even its top package exists in Python: a class of the Java world
            raise TypeLookupError(_unavailable(kind, path, None), unavailable=True) from None
        raise TypeLookupError(f"{kind} plug-in '{path}' cannot be imported: {exc}") from exc
    except Exception as exc:  # the plug-in's own module failed: say so, do not crash
        raise TypeLookupError(
            f"{kind} plug-in '{path}' cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise TypeLookupError(f"{kind} plug-in '{path}': module {module_name} has no class {attr}")
    bases = _interface(kind)
    if not issubclass(cls, bases):
        wanted = " or ".join(f"{b.__module__}.{b.__qualname__}" for b in bases)
        raise TypeLookupError(f"{kind} plug-in '{path}' is not a {wanted}")
    from agent.config.schema import NO_KEYS, Schema  # here: agent.config imports this module

    schema = getattr(cls, "SCHEMA", NO_KEYS)
    if not isinstance(schema, Schema):
        raise TypeLookupError(
            f"{kind} plug-in '{path}': SCHEMA must be an agent.config.schema.Schema"
        )
    return ComponentType(kind, path, cls, schema, plugin=True)


def _unavailable(kind: str, type_value: str, java: str | None) -> str:
    named = f"'{type_value}'" + (f" ({java})" if java and java != type_value else "")
    return (
        f"{kind} type {named} is not available in flumelet: Java components do not run here "
        f"(available: {_names(kind)}; a Python plug-in is named package.module.ClassName)"
    )


def _close(word: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word.lower(), known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _split(path: str) -> tuple[str, str]:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    return module_name, attr


def import_path(path: str) -> Any:
    """Import ``pkg.mod:Name`` or ``pkg.mod.Name``."""
    module_name, attr = _split(path)
    if not module_name or not attr:
        raise ImportError(f"not a dotted class path: {path!r}")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name} has no {attr}") from None


def build(kind: str, spec: ComponentSpec, ctx: BuildContext, *extra: Any) -> Any:
    """The component for a validated ``spec``: its class's ``from_spec``.

    ``extra``: what the kind's interface adds (a selector's channels, a processor's sinks).
    Raises ComponentConfigError; validation has checked everything a built-in could refuse,
    so for those it only fires on an environment problem (a file, a locked directory).
    """
    try:
        component_type = lookup(kind, spec.type)
    except TypeLookupError as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
    factory: Callable[..., Any] = component_type.cls.from_spec
    try:
        if kind == "processor":
            return factory(spec, *extra, ctx)
        return factory(spec, ctx, *extra)
    except ComponentConfigError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ComponentConfigError(spec, str(exc)) from exc
