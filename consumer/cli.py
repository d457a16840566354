"""``flume-consumer``: the consumer daemon.

* ``flume-consumer [OPTIONS]`` runs the built-in default job (Apache access-log top URLs);
* ``flume-consumer run JOB.yaml`` runs a declarative job, ``run JOB.py [ARGS]...`` a
  pyspark.streaming-style script (as ``__main__``, with ``sys.argv = [JOB.py, *ARGS]``);
* ``flume-consumer validate JOB`` checks a job without running it (nothing is opened/bound).

Exit codes: 0 clean stop, 1 runtime failure, 2 bad job or usage, 130 forced stop (a second
SIGTERM/SIGINT). See docs/jobs.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from consumer.jobs.default import OPTION_NAMES, WINDOW_S, default_job_data
from consumer.jobs.graph import BuiltJob
from consumer.jobs.runner import EXIT_OK, EXIT_USAGE, run_job, run_script, summarize
from consumer.jobs.spec import Issue, JobInvalid, JobSpec, OutputSpec, ReceiverSpec, UiSpec
from consumer.jobs.validate import load_job_file, parse_address, validate_job
from consumer.streaming import StreamingContext
from consumer.streaming.process import setup_logging
from consumer.ui import attach_script_ui, attach_terminal_view, attach_web_ui, wants_live_view

__all__ = ["cli", "main"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_JOB_OPTIONS = ("host", "port", "pull", "checkpoint", "batch", "window", "slide", "top",
                       "sqlite")
YAML_SUFFIXES = (".yaml", ".yml")


def _job_kind(path: str) -> str:
    if path.endswith(".py"):
        return "py"
    if path.endswith(YAML_SUFFIXES):
        return "yaml"
    raise click.BadParameter(f"{path}: a job is a .py script or a .yaml/.yml file",
                             param_hint="JOB")


def _report(issues: list[Issue]) -> None:
    for issue in issues:
        click.echo(str(issue), err=True)
    click.echo(f"{len(issues)} problem(s) found", err=True)


def _check_pull(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...],
                ) -> tuple[str, ...]:
    for value in values:
        parsed = parse_address(value)
        if isinstance(parsed, str):
            raise click.BadParameter(parsed)
    return values


log_level_option = click.option(
    "--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="INFO",
    show_default=True, help="Log level (logs go to stderr; results to stdout).")
ui_port_option = click.option(
    "--ui-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
    help="Web UI and /metrics port (default 4040, or the job's ui setting; 0: no UI).")
plain_option = click.option(
    "--plain", is_flag=True, default=None,
    help="Print results in Spark's pprint format even on a terminal (no live view).")
duration_option = click.option(
    "--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
    help="Stop gracefully by itself after SECONDS.")


class ConsumerGroup(click.Group):
    """The command group, with a hint for a job file given without its command."""

    def resolve_command(self, ctx: click.Context, args: list[str],
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        first = args[0] if args else ""
        if first not in self.commands and first.endswith((".py", *YAML_SUFFIXES)):
            raise click.UsageError(f"{first} is a job: run it with 'flume-consumer run {first}' "
                                   f"(or check it with 'flume-consumer validate {first}')")
        return super().resolve_command(ctx, args)


@click.group(cls=ConsumerGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flumelet", prog_name="flume-consumer",
                      message="%(prog)s (flumelet) %(version)s")
@click.option("--host", default=ReceiverSpec.host, show_default=True,
              help="Push receiver: address to listen on for Flume's avro sink.")
@click.option("--port", type=click.IntRange(1, 65535), default=ReceiverSpec.port,
              show_default=True,
              help="Push receiver: port to listen on.")
@click.option("--pull", multiple=True, metavar="HOST:PORT", callback=_check_pull,
              help="Poll a SparkSink at HOST:PORT instead of listening (repeatable).")
@click.option("--checkpoint", metavar="DIR", default=None,
              help="Checkpoint directory: state survives restarts, events are acknowledged "
                   "only once checkpointed.")
@click.option("--batch", type=float, default=JobSpec.batch, show_default=True,
              metavar="SECONDS",
              help="Batch interval.")
@click.option("--window", type=float, default=WINDOW_S, show_default=True, metavar="SECONDS",
              help="Window length (a multiple of --batch).")
@click.option("--slide", type=float, default=JobSpec.slide, show_default=True,
              metavar="SECONDS",
              help="Slide interval (a multiple of --batch).")
@click.option("--top", type=click.IntRange(min=1), default=OutputSpec.top, show_default=True,
              metavar="N",
              help="URLs printed per window.")
@click.option("--sqlite", metavar="PATH", default=None,
              help="Also write every window's counts to this SQLite database.")
@duration_option
@log_level_option
@ui_port_option
@plain_option
@click.pass_context
def cli(ctx: click.Context, host: str, port: int, pull: tuple[str, ...], checkpoint: str | None,
        batch: float, window: float, slide: float, top: int, sqlite: str | None,
        duration: float | None, log_level: str, ui_port: int | None,
        plain: bool | None) -> None:
    """Spark-Streaming-style consumer for Flume events.

    Without a command, runs the built-in job: request counts per URL of Apache combined
    access-log events over a sliding window, top URLs printed every slide."""
    ctx.ensure_object(dict)
    ctx.obj.update(duration=duration, log_level=log_level, ui_port=ui_port, plain=plain)
    if ctx.invoked_subcommand is not None:
        given = [f"--{name}" for name in DEFAULT_JOB_OPTIONS
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)}: only for the built-in default job "
                                   "(a job file sets these itself)")
        return
    setup_logging(log_level)
    data = default_job_data(host=host, port=port, pull=pull, checkpoint=checkpoint, batch=batch,
                            window=window, slide=slide, top=top, sqlite=sqlite)
    spec, issues = validate_job(data, "flume-consumer")
    if spec is None:
        _report([Issue(i.file, None, OPTION_NAMES.get(i.path, i.path), i.message)
                 for i in issues])
        ctx.exit(EXIT_USAGE)
    ctx.exit(run_job(spec, duration=duration, watch=watcher(spec, ui_port, bool(plain))))


def watcher(spec: JobSpec, ui_port: int | None, plain: bool,
            ) -> Callable[[Any, BuiltJob], None]:
    """What watches the job once it is built: the web UI unless its port is 0, the live
    terminal view when stdout is a terminal and ``--plain`` was not given."""
    port = spec.ui.port if ui_port is None else ui_port
    live = wants_live_view(sys.stdout, plain)

    def watch(ssc: Any, built: BuiltJob) -> None:
        if port:
            attach_web_ui(ssc, spec, built, host=spec.ui.host, port=port)
        if live:
            attach_terminal_view(ssc, spec, built)

    return watch


@cli.command(context_settings={"ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@duration_option
@log_level_option
@ui_port_option
@plain_option
@click.argument("job", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, duration: float | None, log_level: str, ui_port: int | None,
        plain: bool | None, job: str, args: tuple[str, ...]) -> None:
    """Run JOB: a .yaml declarative job, or a .py pyspark.streaming-style script that gets
    ARGS as its sys.argv[1:]."""
    kind = _job_kind(job)
    parent: dict[str, Any] = ctx.obj or {}
    if ctx.get_parameter_source("log_level") != click.core.ParameterSource.COMMANDLINE:
        log_level = parent.get("log_level", log_level)
    duration = duration if duration is not None else parent.get("duration")
    ui_port = ui_port if ui_port is not None else parent.get("ui_port")
    plain = plain if plain is not None else parent.get("plain")
    setup_logging(log_level)
    if kind == "py":
        if duration is not None:
            raise click.UsageError("--duration applies to .yaml jobs; a script decides when "
                                   "it stops")
        port = UiSpec.port if ui_port is None else ui_port

        def serve_ui(ssc: StreamingContext) -> None:  # Spark's UI, as a YAML job has
            attach_script_ui(ssc, job, host=UiSpec.host, port=port)

        if port:
            StreamingContext.startHooks.append(serve_ui)
        try:
            code = run_script(job, args)
        finally:
            if port:
                StreamingContext.startHooks.remove(serve_ui)
        ctx.exit(code)
    if args:
        raise click.UsageError(f"unexpected arguments after {job}: {' '.join(args)} (only .py "
                               "jobs take arguments; options go before the job: "
                               f"run --duration 5 {job})")
    try:
        spec = load_job_file(job)
    except JobInvalid as exc:
        _report(exc.issues)
        ctx.exit(EXIT_USAGE)
    ctx.exit(run_job(spec, duration=duration, watch=watcher(spec, ui_port, bool(plain))))


@cli.command()
@click.argument("job", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def validate(ctx: click.Context, job: str) -> None:
    """Check JOB without running it: a .yaml job is fully validated (every problem, with its
    line), a .py script is compiled. Exit 0 if it is fine, 2 otherwise."""
    if _job_kind(job) == "py":
        try:
            with open(job, encoding="utf-8") as fh:
                compile(fh.read(), job, "exec")
        except SyntaxError as exc:
            click.echo(f"{job}:{exc.lineno}: syntax error: {exc.msg}", err=True)
            ctx.exit(EXIT_USAGE)
        except (OSError, ValueError) as exc:
            click.echo(f"{job}: cannot compile: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        click.echo(f"{job}: OK (compiles)")
        ctx.exit(EXIT_OK)
    try:
        spec = load_job_file(job)
    except JobInvalid as exc:
        _report(exc.issues)
        ctx.exit(EXIT_USAGE)
    click.echo(f"{job}: OK: {summarize(spec)}")
    for out in spec.outputs:
        if out.path:
            click.echo(f"  {out.kind}: {os.path.abspath(out.path)}"
                       + (f" (table {out.table})" if out.table else ""))
    ctx.exit(EXIT_OK)


def main() -> None:
    cli(prog_name="flume-consumer")


if __name__ == "__main__":
    main()
