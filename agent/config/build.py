"""Typed settings for one component from its raw keys, driven by its type's Schema.

``apply_schema`` is the one place where values are converted, defaults applied and rules run;
the validator reports its findings with file and line, ``settings_from`` serves code that
builds a component from a plain mapping (tests, tools). Neither raises on bad input.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config.converters import ConversionError
from agent.config.describe import format_value
from agent.config.issues import ConfigIssue, IssueCode, Severity
from agent.config.schema import RuleContext, Schema
from agent.config.structure import Entry
from agent.config.types import ComponentType, TypeLookupError, lookup


@dataclass
class Reporter:
    """Collects issues.

    By default the rules are Flume's: what Flume ignores or repairs is a warning, and a
    component Flume would drop is dropped (the validator says so). ``strict`` makes every issue
    an error. Issues marked ``fatal`` (Flume refuses the whole file for them too, or flumelet
    lacks what the file asks for) are errors in both modes.
    """

    file: str
    strict: bool = False
    issues: list[ConfigIssue] = field(default_factory=list)
    fatal_count: int = 0

    def report(
        self,
        code: IssueCode,
        message: str,
        component: str,
        entry: Entry | None = None,
        *,
        fatal: bool = False,
    ) -> None:
        severity = Severity.ERROR if fatal or self.strict else Severity.WARNING
        self.fatal_count += fatal
        file = entry.file if entry else self.file
        line = entry.line if entry else 0
        message += comment_hint(entry)
        self.issues.append(ConfigIssue(code, message, file, line, component, severity))


def comment_hint(entry: Entry | None) -> str:
    """Java properties have no trailing comments: ``k = v # note`` has the value ``v # note``."""
    if entry is None or not _INLINE_COMMENT.search(entry.value):
        return ""
    return " (a '#' inside a value is not a comment in a properties file: it is part of the value)"


_INLINE_COMMENT = re.compile(r"(?:^|\s)#")


@dataclass(frozen=True)
class Finding:
    """One problem ``apply_schema`` found. ``drops``: the component cannot be used as
    configured (Flume's configure() would throw); otherwise Flume carries on (a warning)."""

    code: IssueCode
    message: str
    key: str | None  # relative key whose line to point at; None: the component's
    drops: bool = True
    fatal: bool = False


def apply_schema(
    schema: Schema,
    type_name: str,
    values: Mapping[str, str],
    env: Mapping[str, str],
    *,
    key_prefix: str = "",
    is_handled: Callable[[str], bool] = lambda key: False,
) -> tuple[dict[str, Any], list[Finding]]:
    """``values``: raw strings by relative key (``type`` excluded, empty values left out).

    Returns every key of the schema (converted, or its default) and the findings; the settings
    are usable only if no finding ``drops``.
    """
    findings: list[Finding] = []
    settings: dict[str, Any] = {}
    used = set()
    for key in schema.keys:
        used.add(key.name)
        raw = values.get(key.name)
        if raw is None:
            if key.required:
                findings.append(
                    Finding(IssueCode.MISSING_REQUIRED, f"missing required key '{key_prefix}"
                            f"{key.name}'", None)
                )
            settings[key.name] = copy.copy(key.default)
            continue
        try:
            value = key.convert(raw)
        except ConversionError as exc:
            message = f"{key_prefix}{key.name}: {exc}"
            if not exc.has_flume_value:
                findings.append(Finding(exc.code, message, key.name, fatal=exc.fatal))
                continue
            value = exc.flume_value
            findings.append(
                Finding(exc.code, f"{message}; using {format_value(value)} as Flume does",
                        key.name, drops=False)
            )
        if key.floor is not None and value < key.floor:
            findings.append(
                Finding(
                    IssueCode.BAD_VALUE,
                    f"{key_prefix}{key.name}: {value} is below {key.floor}; "
                    f"using the default {format_value(key.default)} as Flume does",
                    key.name,
                    drops=False,
                )
            )
            value = copy.copy(key.default)
        settings[key.name] = value

    for family in schema.families:
        gathered: dict[str, Any] = {}
        family_prefix = family.prefix + "."
        for name, raw in values.items():
            if name in used or not name.startswith(family_prefix):
                continue
            used.add(name)
            try:
                gathered[name[len(family_prefix):]] = family.convert(raw)
            except ConversionError as exc:
                findings.append(Finding(exc.code, f"{key_prefix}{name}: {exc}", name))
        # A family sharing its name with a plain key (regex_extractor's ``serializers``)
        # is stored under ``<prefix>.`` for the type's rules to merge.
        settings[family.prefix + ("." if family.prefix in settings else "")] = gathered

    for name in values:
        if name not in used and not is_handled(name):
            findings.append(
                Finding(
                    IssueCode.UNKNOWN_KEY,
                    f"unknown key '{key_prefix}{name}' for type '{type_name}', ignored as Flume "
                    f"ignores it ({_suggest(name, schema, type_name)})",
                    name,
                    drops=False,
                )
            )

    if schema.rules is not None and not any(f.drops for f in findings):  # rules see valid keys
        for problem in schema.rules(settings, RuleContext(frozenset(values), env)):
            findings.append(
                Finding(problem.code, problem.message, problem.key, drops=not problem.warning)
            )
    return settings, findings


@dataclass
class Built:
    type: ComponentType
    settings: dict[str, Any]
    anchor: Entry | None


def build_component(
    kind: str,
    path: str,
    props: Mapping[str, Entry],
    anchor: Entry | None,
    reporter: Reporter,
    env: Mapping[str, str],
    *,
    default_type: str | None = None,
    fatal_unknown_type: bool = False,
    key_prefix: str = "",
    is_handled: Callable[[str], bool] = lambda key: False,
) -> Built | None:
    """Typed settings for the component at ``path`` (e.g. ``a1.sinks.k1``), or None when it
    cannot be used (every reason reported).

    ``props`` are keys relative to the component (``type`` included); ``key_prefix`` is what
    the component's keys are relative to in messages (``selector.`` for a selector);
    ``is_handled`` marks keys the caller deals with (wiring), so they are not UNKNOWN_KEY.
    """
    type_entry = props.get("type")
    if type_entry is None or not type_entry.value:
        if default_type is None:
            if type_entry is None:  # an empty value was reported already
                reporter.report(
                    IssueCode.MISSING_TYPE, f"missing required key '{key_prefix}type'", path, anchor
                )
            return None
        type_value = default_type
    else:
        type_value = type_entry.value
    try:
        component_type = lookup(kind, type_value)
    except TypeLookupError as exc:
        code = IssueCode.UNAVAILABLE if exc.unavailable else IssueCode.UNKNOWN_TYPE
        where = f"{key_prefix}type: " if key_prefix else ""
        reporter.report(
            code, where + str(exc), path, type_entry or anchor,
            fatal=fatal_unknown_type or exc.unavailable,
        )
        return None
    values = {k: e.value for k, e in props.items() if k != "type" and e.value}
    settings, findings = apply_schema(
        component_type.schema, component_type.name, values, env,
        key_prefix=key_prefix, is_handled=is_handled,
    )
    for finding in findings:
        entry = props.get(finding.key) if finding.key else None
        reporter.report(finding.code, finding.message, path, entry or anchor, fatal=finding.fatal)
    if any(f.drops for f in findings):
        return None
    return Built(component_type, settings, anchor)


def settings_from(
    kind: str, type_value: str, raw: Mapping[str, object], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The settings a configuration file with these keys would give (values may be Python
    values: ``True``, ``5``); ValueError lists every problem that would drop the component.
    For building components outside a configuration file (tests, tools)."""
    schema = lookup(kind, type_value).schema
    values = {k: _as_text(v) for k, v in raw.items() if v is not None}
    settings, findings = apply_schema(schema, type_value, values, env or {})
    problems = [f.message for f in findings if f.drops]
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _suggest(name: str, schema: Schema, type_name: str) -> str:
    known = [key.name for key in schema.keys]
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{by_lower[close[0]]}'?"
    if not known:
        return "it takes no keys"
    if len(known) > 8:
        return f"{type_name} takes {len(known)} keys; --validate lists them"
    return f"known keys: {', '.join(known)}"
