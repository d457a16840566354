"""``flume-agent``: flume-ng's command line for flumelet.

    flume-agent [agent] -f FILE -n NAME [--validate] [--strict] [-Dkey=value ...]

The leading ``agent`` word of ``flume-ng agent ...`` is accepted so existing scripts work.
A file is accepted as Flume accepts it: what Flume ignores is printed as a warning, and a
component Flume would drop is dropped and named; ``--strict`` refuses any file with a warning.
Loading and validation happen before the runtime is imported: ``--validate`` never opens a
port. Exit codes: 0 stopped with nothing lost, 1 could not be built or started, 2 configuration
or usage error, 3 stopped with events still in memory channels (lost), 130 a third signal.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import click

from agent.config.describe import describe
from agent.config.loader import LoadResult, load_config

log = logging.getLogger("agent.cli")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEFAULT_METRICS_PORT = 41414
EXIT_CONFIG = 2

# log4j level names (flume.root.logger) -> Python levels
_LOG_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
}


@dataclass
class SystemProperties:
    """What the ``-D`` options mean to flumelet."""

    overrides: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None
    metrics_format: str = "http"  # flume.monitoring.type: http (Flume's JSON) or prometheus
    log_level: int = logging.INFO
    resolve_env: bool = True  # ${VAR} in values (Flume: with EnvVarResolverProperties)
    warnings: list[str] = field(default_factory=list)


def interpret_system_properties(pairs: tuple[str, ...], agent_name: str) -> SystemProperties:
    """Sort ``-Dkey=value`` pairs into config overrides, metrics and logging options.

    Raises click.BadParameter for a malformed pair or an unusable monitoring port.
    """
    result = SystemProperties()
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected -Dkey=value, got -D{pair}", param_hint="-D")
        raw[key.strip()] = value.strip()
    monitoring = raw.pop("flume.monitoring.type", None)
    port_text = raw.pop("flume.monitoring.port", None)
    if monitoring is not None:
        if monitoring.lower() not in ("http", "prometheus"):
            result.warnings.append(
                f"flume.monitoring.type={monitoring} is not supported (http or prometheus); "
                "metrics are off"
            )
        else:
            result.metrics_format = monitoring.lower()
            try:
                result.metrics_port = int(port_text) if port_text else DEFAULT_METRICS_PORT
            except ValueError:
                raise click.BadParameter(
                    f"flume.monitoring.port must be a number, got {port_text!r}", param_hint="-D"
                ) from None
            if not 0 <= result.metrics_port <= 65535:
                raise click.BadParameter(
                    f"flume.monitoring.port {result.metrics_port} is out of range", param_hint="-D"
                )
    elif port_text is not None:
        result.warnings.append(
            "flume.monitoring.port is ignored without flume.monitoring.type=http or prometheus"
        )
    implementation = raw.pop("propertiesImplementation", None)
    if implementation is not None:
        if implementation == "java.util.Properties":
            result.resolve_env = False
        elif not implementation.endswith(".EnvVarResolverProperties"):
            result.warnings.append(
                f"propertiesImplementation={implementation} is not known; ${{VAR}} is resolved"
            )
    root_logger = raw.pop("flume.root.logger", None)
    if root_logger is not None:
        level_name = root_logger.split(",")[0].strip().upper()
        if level_name in _LOG_LEVELS:
            result.log_level = _LOG_LEVELS[level_name]
        else:
            result.warnings.append(f"flume.root.logger: unknown level {level_name!r}; using INFO")
    for key, value in raw.items():
        if key.startswith(agent_name + "."):
            result.overrides[key] = value
        else:
            result.warnings.append(f"-D{key} is not used by flumelet; ignored")
    return result


def _print_issues(result: LoadResult, conf_file: str, agent_name: str) -> None:
    for issue in result.issues:
        click.echo(str(issue), err=True)
    if result.config is None or not result.warnings:
        return
    dropped = [_component_words(i.component) for i in result.warnings if i.code == "DROPPED"]
    count = len(result.warnings)
    summary = f"{conf_file}: agent '{agent_name}': {count} warning{'s' if count != 1 else ''}"
    if dropped:
        summary += "; NOT STARTED (as Flume would not start them): " + ", ".join(dropped)
    click.echo(summary + "; --strict refuses such a file", err=True)


def _component_words(path: str) -> str:
    """``a1.sinkgroups.g1`` -> ``sink group g1``."""
    _, kind, name = path.split(".", 2)
    words = {"sources": "source", "channels": "channel", "sinks": "sink"}
    return f"{words.get(kind, 'sink group')} {name}"


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "-D options: flume.monitoring.type=http and flume.monitoring.port=N (default 41414) "
        "serve JSON metrics at /metrics (type=prometheus: Prometheus' text format); "
        "flume.root.logger=LEVEL,console sets the log level; "
        "-D<agent>.<key>=<value> (a flumelet extension) overrides or adds a key of the "
        "configuration file, e.g. -Da1.sinks.k1.port=4545. ${VAR} in values is replaced by "
        "the environment variable (Flume's EnvVarResolverProperties); "
        "-DpropertiesImplementation=java.util.Properties turns that off."
    ),
)
@click.version_option(package_name="flumelet", prog_name="flume-agent",
                      message="%(prog)s (flumelet) %(version)s")
@click.argument("command", nargs=-1, metavar="[agent]")
@click.option(
    "-f", "--conf-file", "conf_file", required=True, help="Flume properties file to load."
)
@click.option("-n", "--name", "agent_name", required=True, help="Agent name in the file.")
@click.option("-c", "--conf", "conf_dir", help="Ignored (flume-ng compatibility).")
@click.option("--validate", is_flag=True, help="Check the file, print the graph, and exit.")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse the file on any warning (for linting config repositories in CI).",
)
@click.option(
    "--lenient", is_flag=True, hidden=True, help="Accepted; Flume's rules are the default."
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to let components drain on shutdown.",
)
@click.option(
    "--no-reload-conf",
    is_flag=True,
    help="Do not apply changes of the file while running (by default it is checked every 30 s, "
    "as flume-ng does, and only the components whose settings changed restart).",
)
@click.option("--reload-interval", type=click.FloatRange(min=0.01), default=30.0, hidden=True)
@click.option("-D", "defines", multiple=True, metavar="KEY=VALUE", help="System property.")
def main(
    command: tuple[str, ...],
    conf_file: str,
    agent_name: str,
    conf_dir: str | None,
    validate: bool,
    strict: bool,
    lenient: bool,
    grace: float,
    no_reload_conf: bool,
    reload_interval: float,
    defines: tuple[str, ...],
) -> None:
    """Run (or --validate) a Flume agent defined in a properties file."""
    if command not in ((), ("agent",)):
        raise click.UsageError(f"unexpected arguments: {' '.join(command)} (only 'agent')")
    props = interpret_system_properties(defines, agent_name)
    logging.basicConfig(level=props.log_level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    for warning in props.warnings:
        log.warning("%s", warning)

    if lenient and strict:
        raise click.UsageError("--lenient and --strict contradict each other")
    result = load_config(
        conf_file, agent_name, overrides=props.overrides, strict=strict,
        resolve_env=props.resolve_env,
    )
    _print_issues(result, conf_file, agent_name)
    if result.config is None:
        errors = len(result.errors)
        click.echo(
            f"{conf_file}: agent '{agent_name}' not started: "
            f"{errors} error{'s' if errors != 1 else ''}",
            err=True,
        )
        sys.exit(EXIT_CONFIG)
    if validate:
        click.echo(describe(result.config))
        sys.exit(0)

    from agent.runtime import ReloadSource, run_agent  # lazily: --validate must not load it

    def load_again() -> LoadResult:
        again = load_config(conf_file, agent_name, overrides=props.overrides, strict=strict,
                            resolve_env=props.resolve_env)
        for issue in again.issues:
            log.log(logging.ERROR if issue.is_error else logging.WARNING, "%s", issue)
        return again

    reload = None if no_reload_conf else ReloadSource(conf_file, load_again, reload_interval)
    sys.exit(
        run_agent(result.config, grace=grace, metrics_port=props.metrics_port,
                  metrics_format=props.metrics_format, reload=reload)
    )


if __name__ == "__main__":
    main()
