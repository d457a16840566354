"""flume-agent's command line, driven through click's CliRunner (no process, no ports)."""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agent.cli import interpret_system_properties, main
from agent.runtime.reload import ReloadSource

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "configs" / "example-seq-logger.conf")
BROKEN = str(ROOT / "tests" / "fixtures" / "configs" / "many-problems.conf")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() points the root logger at the runner's stderr; put the old handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A stand-in agent.runtime whose run_agent records its arguments and returns 7."""
    calls: list[dict[str, Any]] = []

    def run_agent(config: Any, *, grace: float, metrics_port: int | None, reload: Any,
                  **_: Any) -> int:
        calls.append({"config": config, "grace": grace, "metrics_port": metrics_port,
                      "reload": reload})
        return 7

    stub = types.ModuleType("agent.runtime")
    stub.run_agent = run_agent  # type: ignore[attr-defined]
    stub.ReloadSource = ReloadSource  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agent.runtime", stub)
    return calls


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_validate_prints_the_resolved_graph_without_loading_the_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "agent.runtime", None)  # any import would fail
    result = invoke("agent", "-f", EXAMPLE, "-n", "a1", "--validate")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "agent a1: configuration is valid" in out
    assert "r1 (seq) -> replicating selector -> channels c1" in out
    assert "c1 (memory) -> sinks k1" in out
    assert "    totalEvents = 100" in out
    assert "    capacity = 1000" in out
    assert "    maxBytesToLog = 16" in out
    assert result.stderr == ""


def test_validate_shows_interceptors_selectors_and_sink_groups() -> None:
    out = invoke("-f", str(ROOT / "configs" / "failover-sinkgroup.conf"), "-n", "a1", "--validate")
    assert out.exit_code == 0
    assert "sink group g1 (failover): k1 k2" in out.stdout
    assert "priority = {k1: 5, k2: 10}" in out.stdout
    out = invoke("-f", str(ROOT / "configs" / "interceptors.conf"), "-n", "a1", "--validate")
    assert "-> interceptors host ts dc id drop-odd extract rewrite tidy ->" in out.stdout
    assert "interceptor extract type=regex_extractor" in out.stdout


def test_strict_prints_every_issue_and_exits_2() -> None:
    result = invoke("agent", "-f", BROKEN, "-n", "a1", "--validate", "--strict")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert sum("[" in line and "]" in line for line in lines) == 11
    assert any(":29: a1.sources.r2 [MISSING_REQUIRED]" in line for line in lines)
    assert "agent 'a1' not started: 11 errors" in lines[-1]
    assert result.stdout == ""


def test_flume_rules_run_what_remains_and_say_what_is_dropped(
    runtime: list[dict[str, Any]],
) -> None:
    result = invoke("-f", BROKEN, "-n", "a1", "--grace", "2.5")
    assert result.exit_code == 7
    assert len(runtime) == 1 and runtime[0]["grace"] == 2.5
    config = runtime[0]["config"]
    assert list(config.sources) == ["r1"] and config.sinks == {}
    summary = result.stderr.splitlines()[-1]
    assert "agent 'a1': 16 warnings; NOT STARTED (as Flume would not start them): " in summary
    assert "source r2, sink k1, sink k2, sink k3, sink group g1" in summary
    assert "--strict refuses such a file" in summary
    # --lenient (the old name of the default) is still accepted
    assert invoke("-f", BROKEN, "-n", "a1", "--lenient").exit_code == 7
    assert invoke("-f", BROKEN, "-n", "a1", "--lenient", "--strict").exit_code == 2


def test_validate_prints_warnings_and_the_graph_that_would_run() -> None:
    result = invoke("-f", BROKEN, "-n", "a1", "--validate")
    assert result.exit_code == 0
    assert "r1 (seq) -> replicating selector -> channels c1" in result.stdout
    assert ":45: a1.sinks.k1 [UNKNOWN_KEY] warning: unknown key 'batchsize'" in result.stderr


def test_unknown_component_types_stop_the_agent_as_in_flume(
    runtime: list[dict[str, Any]],
) -> None:
    unknown = str(ROOT / "tests" / "fixtures" / "configs" / "unknown-type.conf")
    result = invoke("-f", unknown, "-n", "a1")
    assert result.exit_code == 2 and runtime == []
    assert "agent 'a1' not started: 1 error" in result.stderr


def test_unknown_agent_name_lists_the_agents_in_the_file() -> None:
    result = invoke("-f", EXAMPLE, "-n", "nope")
    assert result.exit_code == 2
    assert "no agent named 'nope'" in result.stderr
    assert "agents defined: a1" in result.stderr


def test_missing_file_is_a_clear_error() -> None:
    result = invoke("-f", "/nonexistent/flume.conf", "-n", "a1")
    assert result.exit_code == 2
    assert "/nonexistent/flume.conf: [BAD_FILE] file not found" in result.stderr


def test_only_the_agent_word_is_accepted_before_the_options() -> None:
    assert invoke("agent", "-f", EXAMPLE, "-n", "a1", "--validate").exit_code == 0
    result = invoke("avro-client", "-f", EXAMPLE, "-n", "a1")
    assert result.exit_code == 2
    assert "unexpected arguments: avro-client" in result.stderr


def test_agent_override_with_d_changes_the_loaded_value() -> None:
    result = invoke(
        "-f", EXAMPLE, "-n", "a1", "--validate", "-Da1.channels.c1.capacity=5000", "-Dx.y=1"
    )
    assert result.exit_code == 0
    assert "    capacity = 5000" in result.stdout
    assert "-Dx.y is not used by flumelet; ignored" in result.stderr


def test_bad_override_is_reported_as_coming_from_the_command_line() -> None:
    result = invoke("-f", EXAMPLE, "-n", "a1", "--strict", "-Da1.channels.c1.capacity=many")
    assert result.exit_code == 2
    assert "<command line>: a1.channels.c1 [BAD_NUMBER]" in result.stderr


def test_monitoring_and_grace_reach_the_runtime(runtime: list[dict[str, Any]]) -> None:
    result = invoke(
        "agent",
        "-c",
        "conf",
        "-f",
        EXAMPLE,
        "-n",
        "a1",
        "-Dflume.monitoring.type=http",
        "-Dflume.monitoring.port=34545",
    )
    assert result.exit_code == 7
    assert runtime[0]["metrics_port"] == 34545 and runtime[0]["grace"] == 10.0
    assert runtime[0]["config"].name == "a1"


def test_root_logger_sets_the_level(runtime: list[dict[str, Any]]) -> None:
    invoke("-f", EXAMPLE, "-n", "a1", "-Dflume.root.logger=DEBUG,console")
    assert logging.getLogger().level == logging.DEBUG
    assert runtime[0]["metrics_port"] is None


def test_system_property_interpretation() -> None:
    props = interpret_system_properties(
        ("flume.monitoring.type=HTTP", "a1.sinks.k1.port=1", "flume.root.logger=WARN,LOGFILE"),
        "a1",
    )
    assert props.metrics_port == 41414
    assert props.overrides == {"a1.sinks.k1.port": "1"}
    assert props.log_level == logging.WARNING
    assert props.warnings == []
    other = interpret_system_properties(("flume.monitoring.type=ganglia", "a2.x=1"), "a1")
    assert other.metrics_port is None and len(other.warnings) == 2


def test_malformed_monitoring_port_is_a_usage_error() -> None:
    result = invoke(
        "-f", EXAMPLE, "-n", "a1", "-Dflume.monitoring.type=http", "-Dflume.monitoring.port=abc"
    )
    assert result.exit_code == 2
    assert "flume.monitoring.port must be a number" in result.stderr


def test_the_file_is_polled_for_changes_unless_no_reload_conf(
    runtime: list[dict[str, Any]],
) -> None:
    assert invoke("-f", EXAMPLE, "-n", "a1").exit_code == 7
    reload = runtime[-1]["reload"]
    assert reload.path == EXAMPLE and reload.interval == 30.0  # flume-ng's period
    assert reload.load().config == runtime[-1]["config"]
    assert invoke("-f", EXAMPLE, "-n", "a1", "--no-reload-conf").exit_code == 7
    assert runtime[-1]["reload"] is None
