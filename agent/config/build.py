"""Typed settings for one component from its raw keys, driven by the schema table.

Emits issues through a Reporter and returns None when the component is unusable; never raises.
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
from agent.config.schema import (
    REGISTRIES,
    UNSUPPORTED_FLUME_ALIASES,
    FinishContext,
    TypeSpec,
)
from agent.config.structure import Entry


@dataclass
class Reporter:
    """Collects issues.

    By default the rules are Flume's: what Flume ignores or repairs is a warning, and a
    component Flume would drop is dropped (the validator says so). ``strict`` makes every issue
    an error. Issues marked ``fatal`` (Flume refuses the whole file for them too) are errors in
    both modes.
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


@dataclass
class Built:
    spec: TypeSpec
    settings: dict[str, Any]
    anchor: Entry | None


def build_component(
    registry_kind: str,
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
    """Build ``settings`` for the component at ``path`` (e.g. ``a1.sinks.k1``).

    ``props`` are keys relative to the component (``type`` included); ``key_prefix`` is what
    the component's keys are relative to in messages (``selector.`` for a selector);
    ``is_handled`` marks keys the caller deals with (wiring), so they are not UNKNOWN_KEY.
    """
    ok = True
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
    spec = REGISTRIES[registry_kind].lookup(type_value)
    if spec is None:
        reporter.report(
            IssueCode.UNKNOWN_TYPE,
            _unknown_type_message(registry_kind, type_value),
            path,
            type_entry or anchor,
            fatal=fatal_unknown_type,
        )
        return None

    settings: dict[str, Any] = {}
    converted = True  # cross-key rules only make sense when every value converted
    used = {"type"}
    for key in spec.keys:
        used.add(key.name)
        entry = props.get(key.name)
        if entry is None or not entry.value:
            if key.required:
                if entry is None:
                    reporter.report(
                        IssueCode.MISSING_REQUIRED,
                        f"missing required key '{key_prefix}{key.name}'",
                        path,
                        anchor,
                    )
                ok = False
            settings[key.name] = copy.copy(key.default)
            continue
        try:
            value = key.convert(entry.value)
        except ConversionError as exc:
            message = f"{key_prefix}{key.name}: {exc}"
            if exc.has_flume_value:
                value = exc.flume_value
                shown = format_value(value)
                reporter.report(exc.code, f"{message}; using {shown} as Flume does", path, entry)
            else:
                reporter.report(exc.code, message, path, entry, fatal=exc.fatal)
                ok = converted = False
                continue
        if key.floor is not None and value < key.floor:
            reporter.report(
                IssueCode.BAD_VALUE,
                f"{key_prefix}{key.name}: {value} is below {key.floor}; "
                f"using the default {key.default!r} as Flume does",
                path,
                entry,
            )
            value = copy.copy(key.default)
        settings[key.name] = value

    for family in spec.families:
        gathered: dict[str, Any] = {}
        family_prefix = family.prefix + "."
        for name, entry in props.items():
            if name in used or not name.startswith(family_prefix) or not entry.value:
                continue
            used.add(name)
            sub = name[len(family_prefix) :]
            try:
                value = family.convert(entry.value)
            except ConversionError as exc:
                reporter.report(exc.code, f"{key_prefix}{name}: {exc}", path, entry)
                ok = converted = False
                continue
            if family.flat:
                settings[name] = value
            else:
                gathered[sub] = value
        if not family.flat:
            # A family sharing its name with a plain key (regex_extractor's ``serializers``)
            # is stored under ``<prefix>.`` for the type's finish hook to merge.
            settings[family.prefix + ("." if family.prefix in settings else "")] = gathered

    for name, entry in props.items():
        if name in used or is_handled(name) or not entry.value:
            continue
        reporter.report(
            IssueCode.UNKNOWN_KEY,
            f"unknown key '{key_prefix}{name}' for type '{spec.alias}', ignored as Flume "
            f"ignores it ({_suggest(name, spec)})",
            path,
            entry,
        )

    if spec.finish is not None and converted:
        present = frozenset(n for n, e in props.items() if e.value)
        for problem in spec.finish(settings, FinishContext(present, env)):
            entry = props.get(problem.key) if problem.key else None
            reporter.report(problem.code, problem.message, path, entry or anchor)
            if not problem.warning:
                ok = False
    return Built(spec, settings, anchor) if ok else None


def _suggest(name: str, spec: TypeSpec) -> str:
    known = [key.name for key in spec.keys]
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{by_lower[close[0]]}'?"
    if not known:
        return "it takes no keys"
    if len(known) > 8:
        return f"{spec.alias} takes {len(known)} keys; --validate lists them"
    return f"known keys: {', '.join(known)}"


def _unknown_type_message(registry_kind: str, type_value: str) -> str:
    supported = ", ".join(REGISTRIES[registry_kind].aliases)
    if type_value.lower() in UNSUPPORTED_FLUME_ALIASES.get(registry_kind, frozenset()):
        return (
            f"{registry_kind} type '{type_value}' exists in Flume but flumelet does not "
            f"implement it (supported: {supported})"
        )
    return f"unknown {registry_kind} type '{type_value}' (supported: {supported})"
