"""Component types: what a configuration's ``type`` names, resolved in one place.

A ``type`` is a built-in alias (any case), one of Flume's Java class names for a built-in
(exact case), or a Python plug-in's dotted path; Flume types flumelet lacks, and any other
Java class, get one consistent UNAVAILABLE message. See ``agent/registry.py`` for how to add
a type and the interface each kind implements. Built-in classes are imported on first use.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass
from typing import Any

from agent.components import EventDrivenSource, PollableSource, Sink
from agent.config.schema import NO_KEYS, Schema
from agent.interceptors.base import Interceptor
from agent.selectors import ChannelSelector
from agent.sinkprocessors import SinkProcessor

KINDS = ("source", "channel", "sink", "interceptor", "selector", "processor")

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
        Builtin("exec", "agent.sources.exec:ExecSource", (f"{_F}.source.ExecSource",)),
        Builtin("netcat", "agent.sources.netcat:NetcatSource", (f"{_F}.source.NetcatSource",)),
        Builtin("netcatudp", "agent.sources.netcat:NetcatUdpSource",
                (f"{_F}.source.NetcatUdpSource",)),
        Builtin("syslogtcp", "agent.sources.syslog:SyslogTcpSource",
                (f"{_F}.source.SyslogTcpSource",)),
        Builtin("multiport_syslogtcp", "agent.sources.syslog:MultiportSyslogTcpSource",
                (f"{_F}.source.MultiportSyslogTCPSource",)),
        Builtin("syslogudp", "agent.sources.syslog:SyslogUdpSource",
                (f"{_F}.source.SyslogUDPSource",)),
        Builtin("http", "agent.sources.http_source:HttpSource",
                (f"{_F}.source.http.HTTPSource",)),
        Builtin("taildir", "agent.sources.taildir:TaildirSource",
                (f"{_F}.source.taildir.TaildirSource",)),
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
        Builtin("hdfs", "agent.sinks.hdfs:HdfsSink", (f"{_F}.sink.hdfs.HDFSEventSink",)),
        Builtin("http", "agent.sinks.http_sink:HttpSink", (f"{_F}.sink.http.HttpSink",)),
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
        ("thrift", f"{_F}.source.ThriftSource"),
        ("jms", f"{_F}.source.jms.JMSSource"),
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
        ("irc", f"{_F}.sink.irc.IRCSink"),
        ("thrift", f"{_F}.sink.ThriftSink"),
        ("elasticsearch", f"{_F}.sink.elasticsearch.ElasticSearchSink"),
        ("hbase", f"{_F}.sink.hbase.HBaseSink"),
        ("asynchbase", f"{_F}.sink.hbase.AsyncHBaseSink"),
        ("hbase2", f"{_F}.sink.hbase2.HBase2Sink"),
        ("morphline_solr", f"{_F}.sink.solr.morphline.MorphlineSolrSink"),
        ("hive", f"{_F}.sink.hive.HiveSink"),
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


# What a plug-in class of each kind must derive from (a channel: see _is_channel).
INTERFACES: dict[str, tuple[type, ...]] = {
    "source": (PollableSource, EventDrivenSource),
    "sink": (Sink,),
    "interceptor": (Interceptor,),
    "selector": (ChannelSelector,),
    "processor": (SinkProcessor,),
}


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
    if not _implements(kind, cls):
        raise TypeLookupError(f"{kind} plug-in '{path}' is not a {_wanted(kind)}")
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


def _implements(kind: str, cls: type) -> bool:
    if kind == "channel":  # agent.components.Channel is a protocol
        return all(callable(getattr(cls, m, None)) for m in _CHANNEL_METHODS)
    return issubclass(cls, INTERFACES[kind])


_CHANNEL_METHODS = ("transaction", "add_listener", "size", "start", "stop")


def _wanted(kind: str) -> str:
    if kind == "channel":
        return "channel (agent.components.Channel: " + ", ".join(_CHANNEL_METHODS) + ")"
    return " or ".join(f"{b.__module__}.{b.__qualname__}" for b in INTERFACES[kind])


def _close(word: str, known: list[str]) -> str:
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
