"""flume-consumer through click's CliRunner: validate, usage errors, run dispatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from consumer import cli as cli_module
from consumer.cli import cli
from consumer.streaming import StreamingContext

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


@pytest.fixture(autouse=True)
def log_levels(monkeypatch):
    """Keep the CLI from replacing the test process's logging handlers."""
    levels: list[str] = []
    monkeypatch.setattr(cli_module, "setup_logging", levels.append)
    return levels


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="flume-consumer")


def test_validate_good_yaml_exits_0_and_describes_the_job():
    result = invoke("validate", str(FIXTURES / "valid.yaml"))
    assert result.exit_code == 0, result.output
    assert "OK: apache_combined lines, 3 filter(s), sum(bytes) by method, url over 60 s " \
           "window every 10 s, batch 2 s -> console(top 5), jsonl, sqlite" in result.output
    assert "sqlite: /tmp/checkout.db (table checkout_bytes)" in result.output


def test_validate_bad_yaml_lists_every_problem_and_exits_2():
    result = invoke("validate", str(FIXTURES / "broken.yaml"))
    assert result.exit_code == 2
    assert "broken.yaml:13: aggregation.type: unknown 'median'" in result.output
    assert "broken.yaml:4: receiver.port" in result.output
    assert result.output.rstrip().endswith("11 problem(s) found")


def test_validate_python_compiles_only(tmp_path):
    assert invoke("validate", str(FIXTURES / "hello_job.py")).exit_code == 0
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\ndef broken(:\n")
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:2: syntax error:" in result.output


def test_validate_usage_errors():
    result = invoke("validate", str(FIXTURES / "data.csv"))
    assert result.exit_code == 2 and "a job is a .py script or a .yaml/.yml file" in \
        result.output
    result = invoke("validate", "/nonexistent/job.yaml")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert invoke("validate").exit_code == 2


def test_default_job_option_errors_name_the_option():
    result = invoke("--window", "2.5", "--batch", "1")
    assert result.exit_code == 2
    assert "flume-consumer: --window: 2.5 s is not a multiple of batch (1 s)" in result.output
    result = invoke("--pull", "nohostport")
    assert result.exit_code == 2 and "expected host:port" in result.output
    result = invoke("--port", "0")
    assert result.exit_code == 2
    result = invoke("--top", "0")
    assert result.exit_code == 2


def test_default_job_options_reach_the_spec(monkeypatch):
    seen = {}

    def fake_run_job(spec, duration=None, watch=None):
        seen["spec"], seen["duration"] = spec, duration
        return 0

    monkeypatch.setattr(cli_module, "run_job", fake_run_job)
    result = invoke("--pull", "a:1", "--pull", "b:2", "--window", "60", "--slide", "2",
                    "--batch", "2", "--top", "3", "--sqlite", "x.db", "--checkpoint", "ck",
                    "--duration", "5")
    assert result.exit_code == 0, result.output
    spec = seen["spec"]
    assert spec.receiver.kind == "pull"
    assert spec.receiver.addresses == (("a", 1), ("b", 2))
    assert (spec.batch, spec.window, spec.slide, spec.checkpoint) == (2.0, 60.0, 2.0, "ck")
    assert [(o.kind, o.top, o.path) for o in spec.outputs] == \
        [("console", 3, None), ("sqlite", 10, "x.db")]
    assert seen["duration"] == 5.0
    invoke("--host", "0.0.0.0", "--port", "4141")
    assert (seen["spec"].receiver.host, seen["spec"].receiver.port) == ("0.0.0.0", 4141)
    assert seen["spec"].window == 300.0


def test_default_job_options_are_refused_with_a_subcommand():
    result = invoke("--port", "1234", "validate", str(FIXTURES / "valid.yaml"))
    assert result.exit_code == 2
    assert "--port: only for the built-in default job" in result.output


def test_run_yaml_dispatches_validated_spec_with_duration(monkeypatch):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli_module, "run_job",
                        lambda spec, duration=None, watch=None:
                        seen.update(spec=spec, d=duration) or 0)
    result = invoke("--duration", "3", "run", str(FIXTURES / "event_time.yaml"))
    assert result.exit_code == 0, result.output
    assert seen["spec"].name == "status_by_minute" and seen["d"] == 3.0
    result = invoke("run", "--duration", "4", str(FIXTURES / "event_time.yaml"))
    assert seen["d"] == 4.0


def test_run_bad_yaml_exits_2_without_running(monkeypatch):
    monkeypatch.setattr(cli_module, "run_job", lambda *a, **k: pytest.fail("must not run"))
    result = invoke("run", str(FIXTURES / "broken.yaml"))
    assert result.exit_code == 2 and "11 problem(s) found" in result.output
    result = invoke("run", str(FIXTURES / "event_time.yaml"), "extra")
    assert result.exit_code == 2 and "only .py jobs take arguments" in result.output


def test_run_python_script_gets_argv_and_its_exit_code():
    result = invoke("run", str(FIXTURES / "hello_job.py"), "spark", "--flag")
    assert result.exit_code == 0, result.output
    assert "('spark', 5)" in result.output and "('--flag', 6)" in result.output
    assert "argv0 True" in result.output
    result = invoke("run", str(FIXTURES / "hello_job.py"), "fail")
    assert result.exit_code == 3
    assert StreamingContext.startHooks == []  # the script's web UI hook ends with the run


def test_log_level_from_the_group_or_the_command(log_levels, monkeypatch):
    monkeypatch.setattr(cli_module, "run_job", lambda *a, **k: 0)
    invoke("--log-level", "debug", "run", str(FIXTURES / "event_time.yaml"))
    invoke("run", "--log-level", "ERROR", str(FIXTURES / "event_time.yaml"))
    invoke("--log-level", "warning")
    assert log_levels == ["DEBUG", "ERROR", "WARNING"]
    assert invoke("--log-level", "LOUD").exit_code == 2


def test_run_python_script_that_raises_exits_1(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("raise RuntimeError('boom')\n")
    assert invoke("run", str(script)).exit_code == 1


def test_help_lists_commands_and_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for word in ("--pull", "--checkpoint", "--sqlite", "--duration", "run", "validate"):
        assert word in result.output
