"""``load_config``: file -> properties -> Flume layout -> validated AgentConfig + every issue."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.build import Reporter
from agent.config.filters import CommandRunner, filter_layout, resolve_environment, run_command
from agent.config.issues import ConfigIssue, IssueCode, Severity
from agent.config.model import AgentConfig
from agent.config.properties import PropertiesSyntaxError, RawProperty, parse_properties
from agent.config.structure import Entry, agents_in, layout_agent
from agent.config.validate import AgentValidator

OVERRIDE_SOURCE = "<command line>"


@dataclass
class LoadResult:
    """``config`` is None when loading failed: then ``issues`` holds at least one error."""

    config: AgentConfig | None
    issues: list[ConfigIssue] = field(default_factory=list)
    agents_in_file: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        return [i for i in self.issues if i.is_error]

    @property
    def warnings(self) -> list[ConfigIssue]:
        return [i for i in self.issues if not i.is_error]

    @property
    def ok(self) -> bool:
        return self.config is not None


def load_config(
    path: str | os.PathLike[str],
    agent_name: str,
    *,
    overrides: Mapping[str, str] | None = None,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
    resolve_env: bool = True,
    run: CommandRunner = run_command,
) -> LoadResult:
    """Load ``agent_name`` from a Flume properties file.

    By default the rules are Flume's: what Flume ignores is a warning, invalid components (and
    what depends on them) are dropped with a warning, and the rest is kept; only a file that
    leaves nothing runnable (or names an unknown component type, which stops real Flume too)
    fails. ``strict=True`` makes every issue an error, so ``config`` is None unless the file
    is spotless.
    ``overrides`` (from ``-D<agent>.key=value``) replace or add keys after the file is read.
    ``env`` (os.environ when None) gives ``${VAR}`` values (unless ``resolve_env`` is false),
    the ``env`` config filter's and FLUME_SSL_* defaults; ``run`` runs ``external`` config
    filters' commands (agent.config.filters).
    """
    file = os.fspath(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return _failed(file, "file not found")
    except UnicodeDecodeError as exc:
        return _failed(file, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        return _failed(file, f"cannot read: {exc.strerror or exc}")
    return load_text(text, agent_name, file=file, overrides=overrides, strict=strict, env=env,
                     resolve_env=resolve_env, run=run)


def load_text(
    text: str,
    agent_name: str,
    *,
    file: str = "<string>",
    overrides: Mapping[str, str] | None = None,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
    resolve_env: bool = True,
    run: CommandRunner = run_command,
) -> LoadResult:
    """``load_config`` for text already in memory (``file`` names it in issues)."""
    reporter = Reporter(file, strict)
    environment = os.environ if env is None else env

    def report(code: IssueCode, message: str, entry: Entry) -> None:
        if entry.key.startswith(agent_name + "."):  # other agents' problems are theirs
            reporter.report(code, message, _component_of(entry.key), entry)

    try:
        parsed = parse_properties(text)
    except PropertiesSyntaxError as exc:
        return _failed(file, str(exc), exc.line)
    for earlier in parsed.overridden:
        later = parsed.entries[earlier.key]
        reporter.report(
            IssueCode.DUPLICATE_KEY,
            f"'{earlier.key}' is set again on line {later.line}; the later value wins",
            _component_of(earlier.key),
            _entry(earlier, file),
        )
    entries = {key: _entry(raw, file) for key, raw in parsed.entries.items()}
    if resolve_env:
        entries = {k: resolve_environment(e, environment, report) for k, e in entries.items()}
    agents = agents_in(list(entries.values()))
    for key, value in (overrides or {}).items():
        entries[key.strip()] = Entry(key.strip(), value.strip(), OVERRIDE_SOURCE, 0)
    for entry in entries.values():
        if not entry.value and entry.key.startswith(agent_name + "."):
            reporter.report(
                IssueCode.EMPTY_VALUE,
                f"'{entry.key}' has an empty value",
                _component_of(entry.key),
                entry,
            )
    if agent_name not in agents:
        known = ", ".join(agents) if agents else "none"
        reporter.report(
            IssueCode.NO_AGENT,
            f"no agent named '{agent_name}' in {file} (agents defined: {known})",
            agent_name,
            fatal=True,
        )
        return LoadResult(None, reporter.issues, agents)
    layout = layout_agent(agent_name, list(entries.values()))
    filter_layout(layout, environment, run, report)
    config = AgentValidator(layout, reporter, environment).run()
    if any(issue.is_error for issue in reporter.issues):
        config = None
    return LoadResult(config, _in_file_order(reporter.issues, file), agents)


def _in_file_order(issues: list[ConfigIssue], file: str) -> list[ConfigIssue]:
    """File issues by line (whole-agent ones first), then command-line ones; stable."""
    return sorted(issues, key=lambda i: (i.file != file, i.line))


def _entry(raw: RawProperty, file: str) -> Entry:
    return Entry(raw.key.strip(), raw.value.strip(), file, raw.line)


def _component_of(key: str) -> str:
    """``a1.sinks.k1.port`` -> ``a1.sinks.k1``; shorter keys name themselves."""
    parts = key.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 else key


def _failed(file: str, message: str, line: int = 0) -> LoadResult:
    issue = ConfigIssue(IssueCode.BAD_FILE, message, file, line, "", Severity.ERROR)
    return LoadResult(None, [issue], [])
