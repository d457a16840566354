"""Flume's value substitutions: ``${VAR}`` from the environment and ``configfilters``.

- ``${VAR}`` (Flume's EnvVarResolverProperties): in every value, ``${NAME}`` with NAME made of
  word characters becomes the environment variable's value, or the empty string when it is
  not set (Flume does so silently; here it is a warning). Flume needs
  ``-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties`` for it;
  flumelet does it unless ``-DpropertiesImplementation=java.util.Properties``.
- ``configfilters`` (Flume 1.10): ``<agent>.configfilters = f1 ...`` with
  ``<agent>.configfilters.f1.type = env | external``; ``${f1['key']}``, ``${f1["key"]}`` or
  ``${f1[key]}`` in a component's value is replaced by what the filter returns for ``key``:
  the environment variable ``key`` (``env``), or the first line printed by ``command key``
  (``external``: ``command`` and ``charset``, default UTF-8). A filter that returns nothing
  leaves the reference as it is, as Flume does; flumelet warns.

The environment and the command runner are parameters, so tests need neither.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from agent.config.issues import IssueCode
from agent.config.structure import FILTERS, KINDS, AgentLayout, Entry, RawComponent

log = logging.getLogger(__name__)

_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")
_FILTER_REFERENCE = re.compile(r"\$\{([^\[\]{}]+)\[(|'|\")([-_a-zA-Z0-9]+)\2\]\}")
EXTERNAL_TIMEOUT = 30.0  # seconds a filter command may take

# (argv, charset) -> the command's first output line, or None; raises OSError on failure
CommandRunner = Callable[[list[str], str], "str | None"]
Report = Callable[[IssueCode, str, Entry], None]


def resolve_environment(entry: Entry, env: Mapping[str, str], report: Report) -> Entry:
    """``entry`` with every ``${NAME}`` replaced, as EnvVarResolverProperties does."""
    if "${" not in entry.value:
        return entry

    def value_of(match: re.Match[str]) -> str:
        name = match[1]
        if name not in env:
            report(
                IssueCode.UNSET_VARIABLE,
                f"'{entry.key}': ${{{name}}} is not set in the environment; it becomes the "
                "empty string, as in Flume",
                entry,
            )
            return ""
        return env[name]

    return replace(entry, value=_ENV_REFERENCE.sub(value_of, entry.value).strip())


def run_command(argv: list[str], charset: str) -> str | None:
    """Flume's ExternalProcessConfigFilter: the first line the command prints."""
    done = subprocess.run(argv, capture_output=True, timeout=EXTERNAL_TIMEOUT, check=False)
    if done.returncode != 0:
        stderr = done.stderr.decode(charset, "replace").strip()
        raise OSError(f"exited with status {done.returncode}: {stderr}")
    lines = done.stdout.decode(charset, "replace").splitlines()
    return lines[0] if lines else None


@dataclass
class _Filter:
    name: str
    lookup: Callable[[str], str | None]


class FilterError(Exception):
    pass


def make_filters(
    listed: list[str],
    components: Mapping[str, RawComponent],
    env: Mapping[str, str],
    run: CommandRunner,
    report: Report,
    anchor: Entry,
) -> list[_Filter]:
    """The usable filters among ``listed``; every other is reported and left out (Flume logs
    it and goes on)."""
    filters = []
    for name in dict.fromkeys(listed):
        raw = components.get(name)
        type_entry = raw.props.get("type") if raw else None
        if raw is None or type_entry is None:
            report(
                IssueCode.MISSING_TYPE if raw else IssueCode.UNDEFINED_COMPONENT,
                f"config filter '{name}' has no type; its references stay as they are",
                raw.anchor or anchor if raw else anchor,
            )
            continue
        kind = type_entry.value.lower()
        if kind in ("env", "org.apache.flume.configfilter.environmentvariableconfigfilter"):
            filters.append(_Filter(name, env.get))
        elif kind in ("external", "org.apache.flume.configfilter.externalprocessconfigfilter"):
            command = raw.props.get("command")
            charset = raw.props.get("charset")
            if command is None:
                report(IssueCode.MISSING_REQUIRED,
                       f"config filter '{name}': missing required key 'command'", type_entry)
                continue
            filters.append(_Filter(name, _external(name, command, charset, run, report)))
        else:
            report(
                IssueCode.UNAVAILABLE,
                f"config filter '{name}': type '{type_entry.value}' is not available in "
                "flumelet (available: env, external); its references stay as they are",
                type_entry,
            )
    return filters


def _external(
    name: str, command: Entry, charset: Entry | None, run: CommandRunner, report: Report
) -> Callable[[str], str | None]:
    encoding = charset.value if charset else "UTF-8"

    def lookup(key: str) -> str | None:
        try:
            return run([*command.value.split(), key], encoding)
        except (OSError, subprocess.SubprocessError) as exc:
            report(IssueCode.BAD_VALUE,
                   f"config filter '{name}': '{command.value} {key}' failed: {exc}", command)
            return None

    return lookup


def apply_filters(entry: Entry, filters: list[_Filter], report: Report) -> Entry:
    """``entry`` with every ``${filter['key']}`` of a known filter replaced."""
    if "${" not in entry.value or not filters:
        return entry
    by_name = {f.name: f for f in filters}

    def value_of(match: re.Match[str]) -> str:
        found = by_name.get(match[1])
        if found is None:
            return match[0]
        value = found.lookup(match[3])
        if value is None:
            report(
                IssueCode.UNSET_VARIABLE,
                f"'{entry.key}': config filter '{match[1]}' has no value for '{match[3]}'; "
                f"{match[0]} stays as it is, as in Flume",
                entry,
            )
            return match[0]
        return value

    return replace(entry, value=_FILTER_REFERENCE.sub(value_of, entry.value))


def filter_layout(
    layout: AgentLayout, env: Mapping[str, str], run: CommandRunner, report: Report
) -> None:
    """Apply the agent's config filters to its components' values, in place."""
    listed = layout.lists.get(FILTERS)
    names = listed.names if listed else []
    for name, raw in layout.filters.items():
        if name not in names and raw.anchor is not None:
            report(
                IssueCode.UNDEFINED_COMPONENT,
                f"config filter '{name}' is configured but not listed in "
                f"'{layout.name}.{FILTERS}', so it is ignored, as Flume ignores it",
                raw.anchor,
            )
    if listed is None:
        return
    filters = make_filters(names, layout.filters, env, run, report, listed.entry)
    for kind in KINDS:
        for component in layout.components[kind].values():
            component.props = {
                key: apply_filters(entry, filters, report) for key, entry in component.props.items()
            }
