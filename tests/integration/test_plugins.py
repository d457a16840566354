"""Plug-ins by class name, as in Flume: Python classes with their own keys; Java classes
(Flume's own or anyone's) get one consistent message."""

from __future__ import annotations

import asyncio

import pytest

from agent.config.issues import IssueCode
from agent.config.loader import load_text
from agent.registry import BuildContext
from agent.runtime import BackoffPolicy, build_agent
from tests.plugins.greeting import COLLECTED

C = IssueCode
PLUGINS = "tests.plugins.greeting"


def agent_text(source: str = "", sink: str = "", interceptor: str = "") -> str:
    return (
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"
        f"a1.sources.r1.type = {PLUGINS}.GreetingSource\na1.sources.r1.channels = c1\n"
        "a1.channels.c1.type = memory\n"
        f"a1.sinks.k1.type = {PLUGINS}:CollectingSink\na1.sinks.k1.channel = c1\n"
        + source + sink + interceptor
    )


def test_plugin_source_sink_and_interceptor_run_with_their_own_keys() -> None:
    text = agent_text(
        "a1.sources.r1.greeting = hi\na1.sources.r1.count = 12\na1.sources.r1.batchSize = 4\n",
        "a1.sinks.k1.batchSize = 5\n",
        "a1.sources.r1.interceptors = up\n"
        f"a1.sources.r1.interceptors.up.type = {PLUGINS}.UpperCaseInterceptor\n"
        "a1.sources.r1.interceptors.up.header = case\n",
    )
    result = load_text(text, "a1", strict=True)
    assert result.config is not None, [str(i) for i in result.issues]
    source = result.config.sources["r1"]
    assert source.type == f"{PLUGINS}.GreetingSource"
    assert source.settings == {"greeting": "hi", "count": 12, "batchSize": 4}
    COLLECTED.pop("k1", None)

    async def run() -> None:
        agent = build_agent(result.config, BuildContext())
        agent.policy = BackoffPolicy(step=0.01, maximum=0.01, error=0.01)
        await agent.start()
        for _ in range(500):
            if len(COLLECTED["k1"]) == 12:
                break
            await asyncio.sleep(0.01)
        await agent.stop(grace=1.0)

    asyncio.run(run())
    assert COLLECTED["k1"] == [f"HI {n}".encode() for n in range(12)]


def test_plugin_keys_are_validated_like_builtin_ones() -> None:
    result = load_text(
        agent_text("a1.sources.r1.count = many\na1.sources.r1.greting = hi\n"), "a1", env={}
    )
    assert [(i.code, i.line) for i in result.issues] == [
        (C.BAD_NUMBER, 9), (C.DROPPED, 9), (C.UNKNOWN_KEY, 10)
    ]
    assert "did you mean 'greeting'?" in result.issues[2].message
    assert result.config is not None and result.config.sources == {}


@pytest.mark.parametrize(
    ("type_", "code", "message"),
    [
        (f"{PLUGINS}.NotASource", C.UNKNOWN_TYPE,
         "is not a agent.components.PollableSource or agent.components.EventDrivenSource"),
        (f"{PLUGINS}.Missing", C.UNKNOWN_TYPE, f"module {PLUGINS} has no class Missing"),
        ("tests.plugins.nothere.Source", C.UNKNOWN_TYPE, "cannot be imported: No module named"),
        ("org.apache.flume.source.kafka.KafkaSource", C.UNAVAILABLE,
         "source type 'org.apache.flume.source.kafka.KafkaSource' is not available in flumelet"),
        ("thrift", C.UNAVAILABLE,
         "source type 'thrift' (org.apache.flume.source.ThriftSource) is not available"),
        ("org.apache.flume.source.ThriftSource", C.UNAVAILABLE,
         "source type 'org.apache.flume.source.ThriftSource' is not available in flumelet"),
        ("com.example.flume.TwitterFirehose", C.UNAVAILABLE,
         "source type 'com.example.flume.TwitterFirehose' is not available in flumelet"),
        ("sqe", C.UNKNOWN_TYPE, "unknown source type 'sqe' (did you mean 'seq'?)"),
    ],
)
def test_types_that_cannot_be_built_stop_the_file(type_: str, code: str, message: str) -> None:
    result = load_text(agent_text().replace(f"{PLUGINS}.GreetingSource", type_), "a1")
    assert [(i.code, i.line, i.is_error) for i in result.issues] == [(code, 4, True)]
    assert message in result.issues[0].message
    assert result.config is None


@pytest.mark.parametrize(
    ("kind_key", "java"),
    [
        ("a1.sinks.k1.type", "org.apache.flume.sink.elasticsearch.ElasticSearchSink"),
        ("a1.sinks.k1.type", "org.apache.flume.sink.hbase.HBaseSink"),
        ("a1.sinks.k1.type", "org.apache.flume.sink.kafka.KafkaSink"),
        ("a1.channels.c1.type", "org.apache.flume.channel.kafka.KafkaChannel"),
    ],
)
def test_flume_java_classes_get_the_same_message(kind_key: str, java: str) -> None:
    text = agent_text() + f"{kind_key} = {java}\n"
    result = load_text(text, "a1")
    [issue] = [i for i in result.issues if i.code == C.UNAVAILABLE]
    kind = kind_key.split(".")[1].rstrip("s")
    assert issue.message.startswith(f"{kind} type '{java}' is not available in flumelet")
    assert result.config is None
