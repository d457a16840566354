"""Typed settings, defaults, aliases, wiring rules and Flume's pruning (strict mode unless said)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.config.issues import IssueCode
from agent.config.loader import LoadResult, load_text
from agent.config.model import AgentConfig
from protocol.limits import ListenerLimits
from tests.tls import make_cert

C = IssueCode
BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
"""
LIMIT_KEYS = set(ListenerLimits.AGENT_KEYS)


def load(extra: str = "", *, base: str = BASE, strict: bool = True, **kw: object) -> LoadResult:
    """``base`` + ``extra``; a key of ``extra`` that ``base`` has replaces that line in place."""
    lines = base.splitlines()
    for line in textwrap.dedent(extra).splitlines():
        key = line.split("=")[0].strip()
        same = [i for i, old in enumerate(lines) if old.split("=")[0].strip() == key]
        if same:
            lines[same[0]] = line
        else:
            lines.append(line)
    text = "\n".join(lines) + "\n"
    return load_text(text, "a1", file="t.conf", strict=strict, env=kw.pop("env", {}), **kw)  # type: ignore[arg-type]


def ok(extra: str = "", **kw: object) -> AgentConfig:
    result = load(extra, **kw)  # type: ignore[arg-type]
    assert result.errors == [], "\n".join(map(str, result.errors))
    assert result.config is not None
    return result.config


def codes(result: LoadResult) -> list[tuple[IssueCode, int]]:
    return [(i.code, i.line) for i in result.issues]


def test_defaults_of_the_minimal_flow() -> None:
    config = ok()
    assert config.sources["r1"].settings == {"totalEvents": 2**63 - 1, "batchSize": 1}
    assert config.channels["c1"].settings == {
        "capacity": 100,
        "transactionCapacity": 100,
        "keep-alive": 3,
        "byteCapacityBufferPercentage": 20,
        "byteCapacity": None,
    }
    assert config.sinks["k1"].settings == {"maxBytesToLog": 16}
    assert config.sinks["k1"].channel == "c1"
    selector = config.sources["r1"].selector
    assert selector is not None and selector.type == "replicating"
    assert selector.settings == {"optional": []}
    assert config.sources["r1"].location is not None
    assert str(config.sources["r1"].location) == "t.conf:4"


def test_spooldir_defaults_and_deprecated_line_length() -> None:
    config = ok(
        base=BASE.replace("type = seq", "type = SPOOLDIR"),
        extra="""\
        a1.sources.r1.spoolDir = /data/in
        a1.sources.r1.bufferMaxLineLength = 300
        a1.sources.r1.consumeOrder = Youngest
        a1.sources.r1.deserializer.schemaType = LITERAL
        """,
        strict=False,  # the deprecated key is a warning
    )
    settings = config.sources["r1"].settings
    assert config.sources["r1"].type == "spooldir"
    assert settings["spoolDir"] == "/data/in"
    assert settings["fileSuffix"] == ".COMPLETED"
    assert settings["deletePolicy"] == "never"
    assert settings["trackingPolicy"] == "rename"
    assert settings["consumeOrder"] == "youngest"
    assert settings["pollDelay"] == 500 and settings["maxBackoff"] == 4000
    assert settings["batchSize"] == 100
    assert settings["includePattern"] == "^.*$" and settings["ignorePattern"] == "^$"
    assert settings["decodeErrorPolicy"] == "FAIL" and settings["deserializer"] == "LINE"
    assert settings["deserializer.maxLineLength"] == 300  # the deprecated key overrides
    assert settings["deserializer.outputCharset"] == "UTF-8"
    assert "deserializer.schemaType" not in settings  # an AVRO deserializer key: ignored
    result = load(
        base=BASE.replace("type = seq", "type = spooldir"),
        extra="a1.sources.r1.spoolDir = /in\na1.sources.r1.deserializer.schemaType = LITERAL\n",
        strict=False,
    )
    assert [(i.code, i.line) for i in result.issues] == [(C.UNKNOWN_KEY, 10)]


def test_avro_source_and_sink_keys() -> None:
    config = ok(
        base=BASE.replace("type = seq", "type = avro").replace("type = logger", "type = avro"),
        extra="""\
        a1.sources.r1.bind = 0.0.0.0
        a1.sources.r1.port = 4141
        a1.sources.r1.compression-type = DEFLATE
        a1.sources.r1.ipFilter = true
        a1.sources.r1.ipFilterRules = allow:ip:127.*,deny:name:*
        a1.sinks.k1.hostname = collector
        a1.sinks.k1.port = 4545
        a1.sinks.k1.request-timeout = 500
        a1.sinks.k1.include-protocols = TLSv1.2 TLSv1.3
        """,
        strict=False,  # request-timeout below its floor is a warning
    )
    source = config.sources["r1"].settings
    assert source["port"] == 4141 and source["compression-type"] == "deflate"
    assert source["compression-level"] == 6 and source["threads"] is None
    assert source["ipFilterRules"] == [("allow", "ip", "127.*"), ("deny", "name", "*")]
    assert source["keystore-type"] == "JKS" and source["exclude-protocols"] == ["SSLv3"]
    sink = config.sinks["k1"].settings
    assert sink["batch-size"] == 100 and sink["connect-timeout"] == 20000
    assert sink["request-timeout"] == 20000  # Flume: < 1000 ms falls back to the default
    assert sink["reset-connection-interval"] == 0 and sink["maxIoWorkers"] is None
    assert sink["include-protocols"] == ["TLSv1.2", "TLSv1.3"]


def test_request_timeout_fallback_is_a_visible_warning() -> None:
    result = load(
        base=BASE.replace("type = logger", "type = avro"),
        extra="a1.sinks.k1.hostname = h\na1.sinks.k1.port = 1\na1.sinks.k1.request-timeout = 5\n",
        strict=False,
    )
    assert result.config is not None
    assert codes(result) == [(C.BAD_VALUE, 11)]
    assert not result.issues[0].is_error


def test_ssl_source_needs_a_keystore_unless_the_environment_gives_one(tmp_path: Path) -> None:
    base = BASE.replace("type = seq", "type = avro")
    extra = "a1.sources.r1.bind = h\na1.sources.r1.port = 1\na1.sources.r1.ssl = true\n"
    assert codes(load(extra, base=base)) == [(C.MISSING_REQUIRED, 11)]
    cert, key = make_cert(tmp_path)
    pem = tmp_path / "agent.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    config = ok(extra, base=base, env={"FLUME_SSL_KEYSTORE_PATH": str(pem)})
    assert config.sources["r1"].settings["keystore"] == str(pem)
    # a key store that cannot be loaded is found by validation, not at start
    missing = load(extra, base=base, env={"FLUME_SSL_KEYSTORE_PATH": "/nonexistent.pem"})
    assert codes(missing) == [(C.BAD_VALUE, 4)]
    assert "cannot load keystore /nonexistent.pem" in missing.issues[0].message


def test_spark_sink_by_alias_and_class_name() -> None:
    for type_name in ("spark", "org.apache.spark.streaming.flume.sink.SparkSink"):
        config = ok(
            base=BASE.replace("type = logger", f"type = {type_name}"),
            extra="a1.sinks.k1.port = 9999\n",
        )
        assert config.sinks["k1"].type == "spark"
        settings = config.sinks["k1"].settings
        assert {k: v for k, v in settings.items() if k not in LIMIT_KEYS} == {
            "hostname": "0.0.0.0",
            "port": 9999,
            "threads": 10,
            "timeout": 60,
            "backoffInterval": 200,
        }
        assert settings["max-connections"] == 1000 and settings["idle-timeout"] == 600_000


def test_listener_limits_are_keys_of_the_avro_source() -> None:
    config = ok(base=BASE.replace("type = seq", "type = avro"), extra="""\
        a1.sources.r1.bind = 0.0.0.0
        a1.sources.r1.port = 4141
        a1.sources.r1.max-events-per-call = 5000
        a1.sources.r1.frame-timeout = 0
        """)
    settings = config.sources["r1"].settings
    assert settings["max-events-per-call"] == 5000 and settings["frame-timeout"] == 0
    assert settings["max-call-bytes"] == 128 * 2**20
    bad = load(base=BASE.replace("type = seq", "type = avro"),
               extra="a1.sources.r1.bind = h\na1.sources.r1.port = 1\n"
                     "a1.sources.r1.max-connections = 0\n")
    assert [code for code, _ in codes(bad)] == [C.BAD_VALUE]
    # a combination the limits refuse is found by validation, not at start
    small = load(base=BASE.replace("type = seq", "type = avro"),
                 extra="a1.sources.r1.bind = h\na1.sources.r1.port = 1\n"
                       "a1.sources.r1.max-buffered-bytes = 1000\n")
    assert [(i.code, "max-buffered-bytes" in i.message) for i in small.issues] == [
        (C.BAD_VALUE, True)
    ]


def test_class_names_are_case_sensitive_but_aliases_are_not() -> None:
    assert ok(base=BASE.replace("type = memory", "type = MeMoRy")).channels["c1"].type == "memory"
    fqcn = "org.apache.flume.channel.MemoryChannel"
    assert ok(base=BASE.replace("type = memory", f"type = {fqcn}")).channels["c1"].type == "memory"
    result = load(base=BASE.replace("type = memory", f"type = {fqcn.upper()}"))
    assert codes(result) == [(C.UNAVAILABLE, 6)]  # no such Python module: a Java class


def test_file_roll_and_null_sinks() -> None:
    config = ok(
        base=BASE.replace("type = logger", "type = file_roll"),
        extra="a1.sinks.k1.sink.directory = /out\na1.sinks.k1.sink.serializer = text\n",
    )
    assert config.sinks["k1"].settings == {
        "sink.directory": "/out",
        "sink.rollInterval": 30,
        "sink.serializer": "TEXT",
        "sink.serializer.appendNewline": True,
        "sink.batchSize": 100,
        "sink.pathManager": "DEFAULT",
        "sink.pathManager.prefix": "",
        "sink.pathManager.extension": "",
    }
    assert ok(base=BASE.replace("type = logger", "type = null")).sinks["k1"].settings == {
        "batchSize": 100
    }


def test_interceptor_chain_with_aliases_and_builder_class_names() -> None:
    config = ok(
        """\
        a1.sources.r1.interceptors = a b c d e f g h
        a1.sources.r1.interceptors.a.type = @I.TimestampInterceptor$Builder
        a1.sources.r1.interceptors.b.type = HOST
        a1.sources.r1.interceptors.c.type = static
        a1.sources.r1.interceptors.d.type = remove_header
        a1.sources.r1.interceptors.d.fromList = x, y
        a1.sources.r1.interceptors.e.type = org.apache.flume.sink.solr.morphline.\\
            UUIDInterceptor$Builder
        a1.sources.r1.interceptors.f.type = regex_filter
        a1.sources.r1.interceptors.g.type = regex_extractor
        a1.sources.r1.interceptors.g.regex = (\\\\d+)-(\\\\d+)
        a1.sources.r1.interceptors.g.serializers = s1 s2
        a1.sources.r1.interceptors.g.serializers.s1.name = first
        a1.sources.r1.interceptors.g.serializers.s2.name = when
        a1.sources.r1.interceptors.g.serializers.s2.type = @I.@M
        a1.sources.r1.interceptors.g.serializers.s2.pattern = yyyyMMdd
        a1.sources.r1.interceptors.h.type = search_replace
        a1.sources.r1.interceptors.h.searchPattern = a+
        """.replace("@I", "org.apache.flume.interceptor").replace(
            "@M", "RegexExtractorInterceptorMillisSerializer"
        )
    )
    chain = config.sources["r1"].interceptors
    assert [(i.name, i.type) for i in chain] == [
        ("a", "timestamp"),
        ("b", "host"),
        ("c", "static"),
        ("d", "remove_header"),
        ("e", "uuid"),
        ("f", "regex_filter"),
        ("g", "regex_extractor"),
        ("h", "search_replace"),
    ]
    assert chain[1].settings == {"hostHeader": "host", "useIP": True, "preserveExisting": False}
    assert chain[2].settings == {"key": "key", "value": "value", "preserveExisting": True}
    assert chain[4].settings == {"headerName": "id", "preserveExisting": True, "prefix": ""}
    assert chain[5].settings == {"regex": ".*", "excludeEvents": False}
    assert chain[6].settings["regex"] == r"(\d+)-(\d+)"
    assert chain[6].settings["serializers"] == [
        {"name": "first", "type": "passthrough", "pattern": None},
        {"name": "when", "type": "millis", "pattern": "yyyyMMdd"},
    ]
    assert chain[7].settings == {"searchPattern": "a+", "replaceString": "", "charset": "UTF-8"}


def test_interceptor_problems_drop_the_source_in_lenient_mode() -> None:
    extra = "a1.sources.r1.interceptors = i1\na1.sources.r1.interceptors.i1.type = morph\n"
    assert codes(load(extra)) == [(C.UNKNOWN_TYPE, 10)]
    result = load(extra, strict=False)
    assert result.config is not None and result.config.sources == {}
    assert list(result.config.sinks) == ["k1"]  # the rest still runs, like Flume


MUX = (
    BASE.replace("a1.channels = c1", "a1.channels = c1 c2 c3")
    .replace("r1.channels = c1", "r1.channels = c1 c2 c3")
    .replace("a1.sinks = k1", "a1.sinks = k1 k2 k3")
    + "a1.channels.c2.type = memory\na1.channels.c3.type = memory\n"
    + "a1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n"
    + "a1.sinks.k3.type = null\na1.sinks.k3.channel = c3\n"
)


def test_multiplexing_selector_settings() -> None:
    config = ok(
        """\
        a1.sources.r1.selector.type = Multiplexing
        a1.sources.r1.selector.header = state
        a1.sources.r1.selector.mapping.CZ = c1
        a1.sources.r1.selector.mapping.US = c2 c3
        a1.sources.r1.selector.optional.US = c3 c1
        a1.sources.r1.selector.default = c3
        """,
        base=MUX,
    )
    selector = config.sources["r1"].selector
    assert selector is not None and selector.type == "multiplexing"
    assert selector.settings == {
        "header": "state",
        "default": ["c3"],
        "mapping": {"CZ": ["c1"], "US": ["c2", "c3"]},
        "optional": {"US": ["c1"]},  # c3 is required for US, so not optional
    }


def test_replicating_optional_must_be_among_the_source_channels() -> None:
    result = load("a1.sources.r1.selector.optional = c1 c9\n")
    assert codes(result) == [(C.INVALID_SELECTOR, 9)]


def test_failover_priorities_are_completed_like_flume() -> None:
    config = ok(
        """\
        a1.sinks = k1 k2 k3
        a1.sinks.k2.type = logger
        a1.sinks.k2.channel = c1
        a1.sinks.k3.type = logger
        a1.sinks.k3.channel = c1
        a1.sinkgroups = g1
        a1.sinkgroups.g1.sinks = k1 k2 k3
        a1.sinkgroups.g1.processor.type = FAILOVER
        a1.sinkgroups.g1.processor.priority.k2 = 10
        """
    )
    group = config.sinkgroups["g1"]
    assert group.type == "failover" and group.sinks == ("k1", "k2", "k3")
    assert group.settings == {"maxpenalty": 30000, "priority": {"k1": -1, "k2": 10, "k3": -2}}


def test_duplicate_failover_priority_is_an_error_not_a_silent_drop() -> None:
    extra = (
        "a1.sinks = k1 k2\na1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n"
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n"
        "a1.sinkgroups.g1.processor.type = failover\n"
        "a1.sinkgroups.g1.processor.priority.k1 = 1\na1.sinkgroups.g1.processor.priority.k2 = 1\n"
    )
    assert codes(load(extra)) == [(C.BAD_VALUE, 15)]
    lenient = load(extra, strict=False).config
    assert lenient is not None and lenient.sinkgroups["g1"].sinks == ("k1",)


def test_load_balance_and_default_processor() -> None:
    config = ok(
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\n"
        "a1.sinkgroups.g1.processor.type = load_balance\n"
    )
    assert config.sinkgroups["g1"].settings == {
        "selector": "round_robin",
        "backoff": False,
        "selector.maxTimeOut": 30000,
    }
    default = ok("a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1\n").sinkgroups["g1"]
    assert default.type == "default" and default.settings == {}


def test_lenient_cascade_drops_dependants_of_an_invalid_channel() -> None:
    text = MUX.replace(
        "a1.channels.c2.type = memory", "a1.channels.c2.type = memory\na1.channels.c2.capacity = -5"
    )
    strict = load(base=text)
    assert codes(strict) == [(C.BAD_VALUE, 10)] and strict.config is None
    # Flume falls back to capacity 100 for a non-positive value
    fallback = load(base=text, strict=False).config
    assert fallback is not None and fallback.channels["c2"].settings["capacity"] == 100

    text = MUX + "a1.channels.c2.transactionCapacity = 1000\n"
    result = load(base=text, strict=False)
    config = result.config
    assert config is not None
    assert config.sources["r1"].channels == ("c1", "c3")  # the invalid channel is left out
    assert "k2" not in config.sinks and "c2" not in config.channels
    # k2 is dropped because its channel is gone, c2 for its own problem (line 15)
    assert codes(result) == [(C.DROPPED, 12), (C.BAD_VALUE, 15), (C.DROPPED, 15)]
    assert "channel 'c2' is dropped" in result.issues[2].message
    assert all(not i.is_error for i in result.issues)


def test_agent_with_nothing_valid_is_invalid_even_when_lenient() -> None:
    text = BASE.replace("type = memory", "type = memory\na1.channels.c1.keep-alive = x")
    result = load(base=text, strict=False)
    assert result.config is None
    assert [i.code for i in result.errors] == [C.INVALID_AGENT]


def test_unused_channel_is_removed_with_a_warning() -> None:
    text = BASE.replace("a1.channels = c1", "a1.channels = c1 spare") + (
        "a1.channels.spare.type = memory\n"
    )
    result = load(base=text, strict=False)
    assert result.config is not None and list(result.config.channels) == ["c1"]
    assert codes(result) == [(C.UNUSED_COMPONENT, 9)]
    assert load(base=text).config is None  # strict: every warning is an error


def test_overrides_replace_file_keys_and_report_as_command_line() -> None:
    result = load(overrides={"a1.channels.c1.capacity": "5000", "a1.sinks.k1.maxBytesToLog": "x"})
    assert [(i.code, i.file, i.line) for i in result.issues] == [
        (C.BAD_NUMBER, "<command line>", 0)
    ]
    fine = load(overrides={"a1.channels.c1.capacity": "5000"}).config
    assert fine is not None and fine.channels["c1"].settings["capacity"] == 5000


def test_other_agents_in_the_file_are_listed_and_ignored() -> None:
    result = load(base=BASE + BASE.replace("a1.", "a2."))
    assert result.agents_in_file == ["a1", "a2"]
    assert result.issues == []
    missing = load_text(BASE, "zz", file="t.conf")
    assert missing.config is None and [i.code for i in missing.issues] == [C.NO_AGENT]
    assert "agents defined: a1" in missing.issues[0].message


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("a1.channels.c1.capacity = 2147483648", C.BAD_NUMBER),  # beyond Java int
        ("a1.channels.c1.capacity = 1_000", C.BAD_NUMBER),
        ("a1.channels.c1.byteCapacityBufferPercentage = 101", C.BAD_VALUE),
        ("a1.sources.r1.batchSize = 0", C.BAD_VALUE),
        ("a1.sinks.k1.maxBytesToLog = +16", None),  # Java's parseInt accepts a sign
    ],
)
def test_number_edge_cases(line: str, code: IssueCode | None) -> None:
    result = load(line + "\n")
    found = [i.code for i in result.issues if i.code is not C.INVALID_AGENT]
    assert found == ([code] if code else [])


def test_default_processor_takes_exactly_one_sink() -> None:
    extra = (
        "a1.sinks = k1 k2\na1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n"
        "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n"
    )
    assert codes(load(extra)) == [(C.BAD_VALUE, 12)]
    result = load(extra, strict=False)
    # the group is dropped and, as in Flume, its sinks with it (they do not run on their own)
    assert result.config is not None and result.config.sinkgroups == {}
    assert list(result.config.sinks) == []
    assert codes(result) == [(C.DROPPED, 7), (C.DROPPED, 9), (C.BAD_VALUE, 12), (C.DROPPED, 12)]


def test_port_conflict_drops_the_second_listener_in_lenient_mode() -> None:
    base = (
        BASE.replace("type = seq", "type = avro").replace("type = logger", "type = spark")
        + "a1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 7000\na1.sinks.k1.port = 7000\n"
    )
    assert codes(load(base=base)) == [(C.PORT_CONFLICT, 11)]
    config = load(base=base, strict=False).config
    assert config is not None and list(config.sources) == ["r1"] and config.sinks == {}
    # different ports, or an ephemeral port 0, never conflict
    assert ok(base=base.replace("k1.port = 7000", "k1.port = 7001")).sinks["k1"].type == "spark"
    assert ok(base=base.replace("= 7000", "= 0")).sources["r1"].settings["port"] == 0


def test_singular_and_plural_channel_keys_get_a_hint() -> None:
    result = load(base=BASE.replace("r1.channels = c1", "r1.channel = c1"))
    assert codes(result) == [(C.MISSING_REQUIRED, 4), (C.UNKNOWN_KEY, 5)]
    assert "sources take 'channels' (plural)" in result.issues[1].message
    result = load(base=BASE.replace("k1.channel = c1", "k1.channels = c1"))
    assert codes(result) == [(C.MISSING_REQUIRED, 7), (C.UNKNOWN_KEY, 8)]
    assert "sinks take 'channel' (singular)" in result.issues[1].message


def test_str_of_an_issue_matches_the_documented_format() -> None:
    result = load(base=BASE.replace("type = logger", "type = avro") + "a1.sinks.k1.hostname = h\n")
    assert [str(i) for i in result.issues] == [
        "t.conf:7: a1.sinks.k1 [MISSING_REQUIRED] missing required key 'port'"
    ]
