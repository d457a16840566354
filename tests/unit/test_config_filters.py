"""${VAR} substitution (Flume's EnvVarResolverProperties) and configfilters (env, external)."""

from __future__ import annotations

import pytest

from agent.cli import interpret_system_properties
from agent.config.issues import IssueCode
from agent.config.loader import LoadResult, load_text

C = IssueCode
BASE = """\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
"""


def load(extra: str, env: dict[str, str], **kw: object) -> LoadResult:
    return load_text(BASE + extra, "a1", env=env, **kw)  # type: ignore[arg-type]


def test_environment_variables_are_substituted_in_values() -> None:
    result = load(
        "a1.sinks.k1.hostname = ${COLLECTOR}\na1.sinks.k1.port = ${PORT}\n"
        "a1.channels.c1.capacity = ${CAP}0\n",
        {"COLLECTOR": "collector.example", "PORT": "4545", "CAP": "50"},
    )
    assert result.issues == [] and result.config is not None
    assert result.config.sinks["k1"].settings["hostname"] == "collector.example"
    assert result.config.sinks["k1"].settings["port"] == 4545
    assert result.config.channels["c1"].settings["capacity"] == 500


def test_an_unset_variable_becomes_empty_as_in_flume_and_says_so() -> None:
    result = load("a1.sinks.k1.hostname = h\na1.sinks.k1.port = ${NO_SUCH_PORT}\n", {})
    assert [(i.code, i.line) for i in result.issues] == [
        (C.MISSING_REQUIRED, 7), (C.UNSET_VARIABLE, 10), (C.EMPTY_VALUE, 10), (C.DROPPED, 10)
    ]
    assert "${NO_SUCH_PORT} is not set in the environment" in result.issues[1].message


def test_substitution_can_be_turned_off_like_flume_without_the_resolver() -> None:
    result = load("a1.sinks.k1.hostname = ${HOST}\na1.sinks.k1.port = 1\n", {"HOST": "h"},
                  resolve_env=False)
    assert result.config is not None
    assert result.config.sinks["k1"].settings["hostname"] == "${HOST}"
    assert not interpret_system_properties(
        ("propertiesImplementation=java.util.Properties",), "a1").resolve_env
    assert interpret_system_properties(
        ("propertiesImplementation=org.apache.flume.node.EnvVarResolverProperties",), "a1"
    ).resolve_env


def test_env_config_filter_in_every_quoting() -> None:
    result = load(
        "a1.configfilters = f1\na1.configfilters.f1.type = env\n"
        "a1.sinks.k1.hostname = ${f1['HOST_NAME']}\na1.sinks.k1.port = ${f1[PORT]}\n"
        'a1.sinks.k1.truststore-password = ${f1["SECRET"]}\n',
        {"HOST_NAME": "h.example", "PORT": "4141", "SECRET": "s3cret"},
    )
    assert result.issues == [], [str(i) for i in result.issues]
    assert result.config is not None
    settings = result.config.sinks["k1"].settings
    assert (settings["hostname"], settings["port"]) == ("h.example", 4141)
    assert settings["truststore-password"] == "s3cret"


def test_external_config_filter_runs_its_command_with_the_key() -> None:
    calls: list[tuple[list[str], str]] = []

    def run(argv: list[str], charset: str) -> str | None:
        calls.append((argv, charset))
        return {"db_host": "db.example"}.get(argv[-1])

    result = load(
        "a1.configfilters = vault\na1.configfilters.vault.type = external\n"
        "a1.configfilters.vault.command = /usr/bin/secret --quiet\n"
        "a1.configfilters.vault.charset = ISO-8859-1\n"
        "a1.sinks.k1.hostname = ${vault['db_host']}\na1.sinks.k1.port = 1\n"
        "a1.sinks.k1.truststore = ${vault['missing']}\n",
        {}, run=run,
    )
    assert calls == [(["/usr/bin/secret", "--quiet", "db_host"], "ISO-8859-1"),
                     (["/usr/bin/secret", "--quiet", "missing"], "ISO-8859-1")]
    assert [(i.code, i.line) for i in result.issues] == [(C.UNSET_VARIABLE, 15)]
    assert result.config is not None
    assert result.config.sinks["k1"].settings["hostname"] == "db.example"


def test_a_real_external_command(tmp_path) -> None:
    script = tmp_path / "lookup.sh"
    script.write_text('#!/bin/sh\necho "value-of-$1"\necho "ignored second line"\n')
    script.chmod(0o755)
    result = load(
        f"a1.configfilters = x\na1.configfilters.x.type = external\n"
        f"a1.configfilters.x.command = {script}\n"
        "a1.sinks.k1.hostname = ${x['host']}\na1.sinks.k1.port = 1\n", {}
    )
    assert result.config is not None
    assert result.config.sinks["k1"].settings["hostname"] == "value-of-host"


@pytest.mark.parametrize(
    ("filters", "codes"),
    [
        ("a1.configfilters = f1\na1.configfilters.f1.type = hadoop\n", [C.UNAVAILABLE]),
        ("a1.configfilters = f1\n", [C.UNDEFINED_COMPONENT]),
        ("a1.configfilters = f1\na1.configfilters.f1.type = external\n", [C.MISSING_REQUIRED]),
        ("a1.configfilters.f2.type = env\n", [C.UNDEFINED_COMPONENT]),
    ],
)
def test_filter_problems_leave_references_as_they_are(filters: str, codes: list[str]) -> None:
    result = load(filters + "a1.sinks.k1.hostname = h\na1.sinks.k1.port = 1\n", {})
    assert [i.code for i in result.issues] == codes
    assert result.config is not None  # Flume logs the filter's problem and goes on
