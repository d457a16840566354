"""The declarative table of every supported component type: its keys, converters and defaults.

One TypeSpec per type. Keys are Flume's exact property names relative to the component, so a
Flume user's file reads the same here. Cross-key rules that a table cannot express live in
small ``finish`` hooks next to their type.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config.converters import (
    JAVA_LONG_MAX,
    Converter,
    charset,
    choice,
    integer,
    ip_filter_rules,
    regex,
    to_bool,
    to_str,
    to_words,
)
from agent.config.issues import IssueCode
from protocol.limits import ListenerLimits


@dataclass(frozen=True)
class Key:
    """One property. ``default`` is used when the key is absent (None: "not set").

    ``floor``: Flume silently replaces values below it with the default; we do the same but
    report a warning so the surprise is visible.
    """

    name: str
    convert: Converter = to_str
    default: Any = None
    required: bool = False
    floor: int | None = None


@dataclass(frozen=True)
class KeyFamily:
    """``<prefix>.<sub> = value`` keys with a user-chosen ``<sub>``.

    Gathered into ``settings[prefix] = {sub: value}``, or kept as flat ``prefix.sub`` keys
    when ``flat`` (for pass-through namespaces such as ``deserializer.*``).
    """

    prefix: str
    convert: Converter = to_str
    flat: bool = False


@dataclass(frozen=True)
class Problem:
    """What a ``finish`` hook reports. ``key`` (relative) locates the line; ``warning`` marks a
    fallback Flume applies silently, which never fails loading."""

    code: IssueCode
    message: str
    key: str | None = None
    warning: bool = False


@dataclass(frozen=True)
class FinishContext:
    present: frozenset[str]  # keys explicitly set in the file or by -D
    env: Mapping[str, str]


Finish = Callable[[dict[str, Any], FinishContext], list[Problem]]


@dataclass(frozen=True)
class TypeSpec:
    kind: str  # source | channel | sink | interceptor | selector | processor
    alias: str  # canonical lower-case name, the ``type`` of the resulting spec
    keys: tuple[Key, ...] = ()
    families: tuple[KeyFamily, ...] = ()
    class_names: tuple[str, ...] = ()  # Java class names Flume also accepts (matched exactly)
    batch_key: str | None = None  # compared with the channel's transactionCapacity
    listen: tuple[str, str] | None = None  # (host key, port key) of a socket this type binds
    finish: Finish | None = None
    extra_aliases: tuple[str, ...] = field(default=())  # other accepted aliases


# --- cross-key rules -------------------------------------------------------------------------


def _memory_finish(settings: dict[str, Any], ctx: FinishContext) -> list[Problem]:
    if settings["transactionCapacity"] > settings["capacity"]:
        return [
            Problem(
                IssueCode.BAD_VALUE,
                f"transactionCapacity ({settings['transactionCapacity']}) must not exceed "
                f"capacity ({settings['capacity']})",
                "transactionCapacity",
            )
        ]
    return []


# Codecs in which the byte 0x0A can be something other than a whole "\n" character.
_NOT_LINE_SAFE = {"utf_16", "utf_16_le", "utf_16_be", "utf_32", "utf_32_le", "utf_32_be", "utf_7"}


def _spooldir_finish(settings: dict[str, Any], ctx: FinishContext) -> list[Problem]:
    if settings["deserializer"] == "LINE" and (
        codecs.lookup(settings["inputCharset"]).name.replace("-", "_") in _NOT_LINE_SAFE
    ):
        return [
            Problem(
                IssueCode.BAD_VALUE,
                f"inputCharset {settings['inputCharset']!r} is not supported by the LINE "
                "deserializer (only charsets where byte 0x0A is always a newline, e.g. UTF-8, "
                "ISO-8859-*)",
                "inputCharset",
            )
        ]
    # The deprecated key wins only when given explicitly and the LINE deserializer is used.
    if "bufferMaxLineLength" in ctx.present and settings["deserializer"] == "LINE":
        settings["deserializer.maxLineLength"] = settings["bufferMaxLineLength"]
        return [
            Problem(
                IssueCode.BAD_KEY,
                "bufferMaxLineLength is deprecated; it overrides deserializer.maxLineLength",
                "bufferMaxLineLength",
                warning=True,
            )
        ]
    return []


def _ssl_finish(store: str, env_prefix: str, required: bool) -> Finish:
    """Fill ``<store>``/-password/-type from FLUME_SSL_* variables (component > environment),
    exclude SSLv3 always, and for a server require a keystore when ssl is on."""

    def finish(settings: dict[str, Any], ctx: FinishContext) -> list[Problem]:
        problems: list[Problem] = []
        for suffix, env_name in (("", "PATH"), ("-password", "PASSWORD"), ("-type", "TYPE")):
            key = store + suffix
            env_value = ctx.env.get(f"{env_prefix}_{env_name}")
            if key not in ctx.present and env_value:
                settings[key] = env_value
        if "SSLv3" not in settings["exclude-protocols"]:
            settings["exclude-protocols"] = [*settings["exclude-protocols"], "SSLv3"]
        if required and settings["ssl"] and not settings[store]:
            problems.append(
                Problem(
                    IssueCode.MISSING_REQUIRED,
                    f"ssl = true needs '{store}' (or {env_prefix}_PATH in the environment)",
                    "ssl",
                )
            )
        return problems

    return finish


def _avro_source_finish(settings: dict[str, Any], ctx: FinishContext) -> list[Problem]:
    problems = _ssl_finish("keystore", "FLUME_SSL_KEYSTORE", True)(settings, ctx)
    if settings["ipFilter"] and not settings["ipFilterRules"]:
        problems.append(
            Problem(IssueCode.MISSING_REQUIRED, "ipFilter = true needs 'ipFilterRules'", "ipFilter")
        )
    return problems


def _regex_extractor_finish(settings: dict[str, Any], ctx: FinishContext) -> list[Problem]:
    """Turn ``serializers = s1 s2`` + ``serializers.<s>.*`` into an ordered list of dicts."""
    problems: list[Problem] = []
    raw: dict[str, str] = settings.pop("serializers.", {})
    names = settings["serializers"]
    result = []
    for name in names:
        entry = {
            "name": raw.get(f"{name}.name"),
            "type": raw.get(f"{name}.type", "passthrough"),
            "pattern": raw.get(f"{name}.pattern"),
        }
        if not entry["name"]:
            problems.append(
                Problem(
                    IssueCode.MISSING_REQUIRED, f"missing required key 'serializers.{name}.name'"
                )
            )
        type_name = str(entry["type"])
        kind = _SERIALIZER_TYPES.get(type_name) or _SERIALIZER_TYPES.get(type_name.lower())
        if kind is None:
            problems.append(
                Problem(
                    IssueCode.UNKNOWN_TYPE,
                    f"unknown serializer type {entry['type']!r}",
                    f"serializers.{name}.type",
                )
            )
        else:
            entry["type"] = kind
        if kind == "millis" and not entry["pattern"]:
            problems.append(
                Problem(
                    IssueCode.MISSING_REQUIRED,
                    f"missing required key 'serializers.{name}.pattern' for the millis serializer",
                    f"serializers.{name}.type",
                )
            )
        result.append(entry)
    for sub in raw:
        owner, _, leaf = sub.partition(".")
        if owner not in names or leaf not in ("name", "type", "pattern"):
            problems.append(
                Problem(
                    IssueCode.UNKNOWN_KEY,
                    f"unknown key 'serializers.{sub}' (serializers are: {' '.join(names) or '-'})",
                    f"serializers.{sub}",
                )
            )
    settings["serializers"] = result
    return problems


_SERIALIZER_TYPES = {
    "passthrough": "passthrough",
    "default": "passthrough",
    "millis": "millis",
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer": "passthrough",
    "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer": "millis",
}


# --- the table -------------------------------------------------------------------------------

_PORT = integer(0, 65535)
_COMPRESSION = choice("none", "deflate")


def to_list(raw: str) -> list[str]:
    """Flume's comma-separated lists (``dataDirs``)."""
    return [part.strip() for part in raw.split(",") if part.strip()]


_LEVEL = integer(-1, 9)
_POSITIVE = integer(1)
_NON_NEGATIVE = integer(0)
_PKG = "org.apache.flume"


def _listener_limit_keys() -> tuple[Key, ...]:
    """Every listener's limits (protocol.limits.ListenerLimits), in the keys' units."""
    defaults = ListenerLimits()
    return tuple(
        Key(key, integer(0 if key.endswith("timeout") else 1, bits=64),
            round(getattr(defaults, name) / scale))
        for key, (name, scale) in ListenerLimits.KEYS.items() if key in ListenerLimits.AGENT_KEYS
    )


_LISTENER_LIMITS = _listener_limit_keys()

_TLS_LISTS = (
    Key("exclude-protocols", to_words, ["SSLv3"]),
    Key("include-protocols", to_words, []),
    Key("exclude-cipher-suites", to_words, []),
    Key("include-cipher-suites", to_words, []),
)

SOURCES = (
    TypeSpec(
        "source",
        "seq",
        keys=(
            Key("totalEvents", integer(0, bits=64), JAVA_LONG_MAX),
            Key("batchSize", _POSITIVE, 1),
        ),
        class_names=(f"{_PKG}.source.SequenceGeneratorSource",),
        batch_key="batchSize",
    ),
    TypeSpec(
        "source",
        "spooldir",
        keys=(
            Key("spoolDir", required=True),
            Key("fileSuffix", default=".COMPLETED"),
            Key("deletePolicy", choice("never", "immediate"), "never"),
            Key("fileHeader", to_bool, False),
            Key("fileHeaderKey", default="file"),
            Key("basenameHeader", to_bool, False),
            Key("basenameHeaderKey", default="basename"),
            Key("includePattern", regex, "^.*$"),
            Key("ignorePattern", regex, "^$"),
            Key("trackerDir", default=".flumespool"),
            Key("trackingPolicy", choice("rename", "tracker_dir"), "rename"),
            Key("consumeOrder", choice("oldest", "youngest", "random"), "oldest"),
            Key("pollDelay", _NON_NEGATIVE, 500),
            Key("recursiveDirectorySearch", to_bool, False),
            Key("followSymlinks", to_bool, True),  # flumelet's (Flume always follows)
            Key("maxBackoff", _NON_NEGATIVE, 4000),
            Key("batchSize", _POSITIVE, 100),
            Key("inputCharset", charset, "UTF-8"),
            Key("decodeErrorPolicy", choice("FAIL", "REPLACE", "IGNORE", upper=True), "FAIL"),
            Key(
                "deserializer",
                # Flume's AVRO deserializer (Avro container files) is not supported.
                choice(
                    "LINE",
                    "BLOB",
                    upper=True,
                    unavailable=("AVRO", f"{_PKG}.serialization.AvroEventDeserializer$Builder"),
                    aliases={
                        f"{_PKG}.serialization.LineDeserializer$Builder": "LINE",
                        f"{_PKG}.sink.solr.morphline.BlobDeserializer$Builder": "BLOB",
                    },
                ),
                "LINE",
            ),
            Key("deserializer.maxLineLength", _POSITIVE, 2048),
            Key("deserializer.outputCharset", charset, "UTF-8"),
            Key("deserializer.maxBlobLength", _POSITIVE, 100_000_000),
            Key("bufferMaxLineLength", _POSITIVE, None),
            Key("bufferMaxLines", integer(), None),  # deprecated and ignored, as in Flume
        ),
        families=(KeyFamily("deserializer", flat=True),),
        class_names=(f"{_PKG}.source.SpoolDirectorySource",),
        batch_key="batchSize",
        finish=_spooldir_finish,
    ),
    TypeSpec(
        "source",
        "avro",
        keys=(
            Key("bind", required=True),
            Key("port", _PORT, required=True),
            Key("threads", integer(), None),
            Key("compression-type", _COMPRESSION, "none"),
            Key("compression-level", _LEVEL, 6),
            Key("ssl", to_bool, False),
            Key("keystore"),
            Key("keystore-password"),
            Key("keystore-type", default="JKS"),
            *_TLS_LISTS,
            Key("ipFilter", to_bool, False),
            Key("ipFilterRules", ip_filter_rules, None),
            *_LISTENER_LIMITS,
        ),
        class_names=(f"{_PKG}.source.AvroSource",),
        listen=("bind", "port"),
        finish=_avro_source_finish,
    ),
)

CHANNELS = (
    TypeSpec(
        "channel",
        "memory",
        keys=(
            Key("capacity", integer(1, fallback=100), 100),
            Key("transactionCapacity", integer(1, fallback=100), 100),
            Key("keep-alive", _NON_NEGATIVE, 3),
            Key("byteCapacityBufferPercentage", integer(0, 100), 20),
            # Flume defaults to 80% of the JVM's max heap; flumelet has no heap limit, so
            # None means "no byte limit". 0 also means unlimited, as in Flume.
            Key("byteCapacity", integer(0, bits=64), None),
        ),
        class_names=(f"{_PKG}.channel.MemoryChannel",),
        finish=_memory_finish,
    ),
    TypeSpec(
        "channel",
        "file",
        keys=(
            Key("dataDirs", to_list, ["~/.flume/file-channel/data"]),
            Key("checkpointDir", default="~/.flume/file-channel/checkpoint"),
            Key("capacity", integer(1, fallback=1_000_000), 1_000_000),
            Key("transactionCapacity", integer(1, fallback=10_000), 10_000),
            Key("maxFileSize", integer(1, bits=64), 2_146_435_071),
            Key("keep-alive", _NON_NEGATIVE, 3),
            # accepted for compatibility; flumelet's single log needs no checkpoint files
            Key("checkpointInterval", integer(0, bits=64), 30_000),
            Key("minimumRequiredSpace", integer(0, bits=64), 524_288_000),
            Key("useDualCheckpoints", to_bool, False),
            Key("backupCheckpointDir"),
            Key("checkpointOnClose", to_bool, True),
        ),
        class_names=(f"{_PKG}.channel.file.FileChannel",),
        finish=_memory_finish,
    ),
)

SINKS = (
    TypeSpec(
        "sink",
        "logger",
        keys=(Key("maxBytesToLog", _NON_NEGATIVE, 16),),
        class_names=(f"{_PKG}.sink.LoggerSink",),
    ),
    TypeSpec(
        "sink",
        "null",
        keys=(Key("batchSize", _POSITIVE, 100),),
        class_names=(f"{_PKG}.sink.NullSink",),
        batch_key="batchSize",
    ),
    TypeSpec(
        "sink",
        "file_roll",
        keys=(
            Key("sink.directory", required=True),
            Key("sink.rollInterval", integer(0, bits=64), 30),
            Key(
                "sink.serializer",
                choice(
                    "TEXT",
                    upper=True,
                    aliases={f"{_PKG}.serialization.BodyTextEventSerializer$Builder": "TEXT"},
                    unavailable=("HEADER_AND_TEXT", "AVRO_EVENT"),
                ),
                "TEXT",
            ),
            Key("sink.serializer.appendNewline", to_bool, True),
            Key("sink.batchSize", _POSITIVE, 100),
            Key("sink.pathManager", choice("DEFAULT", upper=True), "DEFAULT"),
            Key("sink.pathManager.prefix", default=""),
            Key("sink.pathManager.extension", default=""),
        ),
        families=(KeyFamily("sink.serializer", flat=True),),
        class_names=(f"{_PKG}.sink.RollingFileSink",),
        batch_key="sink.batchSize",
    ),
    TypeSpec(
        "sink",
        "avro",
        keys=(
            Key("hostname", required=True),
            Key("port", integer(1, 65535), required=True),
            Key("batch-size", integer(), 100, floor=1),
            Key("connect-timeout", integer(bits=64), 20000, floor=1000),
            Key("request-timeout", integer(bits=64), 20000, floor=1000),
            Key("reset-connection-interval", _NON_NEGATIVE, 0),
            Key("compression-type", _COMPRESSION, "none"),
            Key("compression-level", _LEVEL, 6),
            Key("ssl", to_bool, False),
            Key("trust-all-certs", to_bool, False),
            Key("truststore"),
            Key("truststore-password"),
            Key("truststore-type", default="JKS"),
            *_TLS_LISTS,
            # Flume: 2 x CPUs; None lets the runtime decide.
            Key("maxIoWorkers", integer(), None, floor=1),
        ),
        class_names=(f"{_PKG}.sink.AvroSink",),
        batch_key="batch-size",
        finish=_ssl_finish("truststore", "FLUME_SSL_TRUSTSTORE", False),
    ),
    TypeSpec(
        "sink",
        "spark",
        keys=(
            Key("hostname", default="0.0.0.0"),
            Key("port", _PORT, required=True),
            Key("threads", _POSITIVE, 10),
            Key("timeout", _POSITIVE, 60),
            Key("backoffInterval", _NON_NEGATIVE, 200),
            *_LISTENER_LIMITS,
        ),
        class_names=("org.apache.spark.streaming.flume.sink.SparkSink",),
        listen=("hostname", "port"),
    ),
)

_I = f"{_PKG}.interceptor"
INTERCEPTORS = (
    TypeSpec(
        "interceptor",
        "timestamp",
        keys=(Key("headerName", default="timestamp"), Key("preserveExisting", to_bool, False)),
        class_names=(f"{_I}.TimestampInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "host",
        keys=(
            Key("hostHeader", default="host"),
            Key("useIP", to_bool, True),
            Key("preserveExisting", to_bool, False),
        ),
        class_names=(f"{_I}.HostInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "static",
        keys=(
            Key("key", default="key"),
            Key("value", default="value"),
            Key("preserveExisting", to_bool, True),
        ),
        class_names=(f"{_I}.StaticInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "remove_header",
        keys=(
            Key("withName"),
            Key("fromList"),
            Key("fromListSeparator", regex, r"\s*,\s*"),
            Key("matching", regex, None),
        ),
        class_names=(f"{_I}.RemoveHeaderInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "uuid",
        keys=(
            Key("headerName", default="id"),
            Key("preserveExisting", to_bool, True),
            Key("prefix", default=""),
        ),
        class_names=("org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "regex_filter",
        keys=(Key("regex", regex, ".*"), Key("excludeEvents", to_bool, False)),
        class_names=(f"{_I}.RegexFilteringInterceptor$Builder",),
    ),
    TypeSpec(
        "interceptor",
        "regex_extractor",
        keys=(Key("regex", regex, required=True), Key("serializers", to_words, [])),
        families=(KeyFamily("serializers", flat=False),),
        class_names=(f"{_I}.RegexExtractorInterceptor$Builder",),
        finish=_regex_extractor_finish,
    ),
    TypeSpec(
        "interceptor",
        "search_replace",
        keys=(
            Key("searchPattern", regex, required=True),
            Key("replaceString", default=""),
            Key("charset", charset, "UTF-8"),
        ),
        class_names=(f"{_I}.SearchAndReplaceInterceptor$Builder",),
    ),
)

SELECTORS = (
    TypeSpec(
        "selector",
        "replicating",
        keys=(Key("optional", to_words, []),),
        class_names=(f"{_PKG}.channel.ReplicatingChannelSelector",),
    ),
    TypeSpec(
        "selector",
        "multiplexing",
        keys=(Key("header", default="flume.selector.header"), Key("default", to_words, [])),
        families=(KeyFamily("mapping", to_words), KeyFamily("optional", to_words)),
        class_names=(f"{_PKG}.channel.MultiplexingChannelSelector",),
    ),
)

PROCESSORS = (
    TypeSpec("processor", "default", class_names=(f"{_PKG}.sink.DefaultSinkProcessor",)),
    TypeSpec(
        "processor",
        "failover",
        keys=(Key("maxpenalty", integer(0, bits=64, fallback=30000), 30000),),
        families=(KeyFamily("priority", integer()),),
        class_names=(f"{_PKG}.sink.FailoverSinkProcessor",),
    ),
    TypeSpec(
        "processor",
        "load_balance",
        keys=(
            Key("selector", choice("round_robin", "random"), "round_robin"),
            Key("backoff", to_bool, False),
            Key("selector.maxTimeOut", integer(0, bits=64), 30000),
        ),
        class_names=(f"{_PKG}.sink.LoadBalancingSinkProcessor",),
    ),
)

# Flume types flumelet does not implement: named in UNKNOWN_TYPE messages.
UNSUPPORTED_FLUME_ALIASES: dict[str, frozenset[str]] = {
    "source": frozenset(
        [
            "thrift",
            "exec",
            "jms",
            "netcat",
            "netcatudp",
            "syslogtcp",
            "multiport_syslogtcp",
            "syslogudp",
            "http",
            "taildir",
        ]
    ),
    "channel": frozenset(["file", "jdbc", "spillablememory"]),
    "sink": frozenset(
        [
            "hdfs",
            "irc",
            "thrift",
            "elasticsearch",
            "hbase",
            "hbase2",
            "asynchbase",
            "morphline_solr",
            "hive",
            "http",
        ]
    ),
    "interceptor": frozenset(),
    "selector": frozenset(),
    "processor": frozenset(),
}


class Registry:
    """Looks a ``type`` value up: aliases case-insensitively, Java class names exactly."""

    def __init__(self, specs: tuple[TypeSpec, ...]) -> None:
        self._by_alias = {}
        self._by_class = {}
        for spec in specs:
            for alias in (spec.alias, *spec.extra_aliases):
                self._by_alias[alias.lower()] = spec
            for class_name in spec.class_names:
                self._by_class[class_name] = spec
        self.aliases = tuple(spec.alias for spec in specs)

    def lookup(self, type_value: str) -> TypeSpec | None:
        return self._by_class.get(type_value) or self._by_alias.get(type_value.lower())


REGISTRIES: dict[str, Registry] = {
    "source": Registry(SOURCES),
    "channel": Registry(CHANNELS),
    "sink": Registry(SINKS),
    "interceptor": Registry(INTERCEPTORS),
    "selector": Registry(SELECTORS),
    "processor": Registry(PROCESSORS),
}
