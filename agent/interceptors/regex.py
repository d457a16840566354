"""Body-regex interceptors: regex_filter, regex_extractor, search_replace.

Patterns are compiled with Python's ``re``; Java's ``Matcher.find()`` is ``re.search``. Common
Java syntax carries over (classes, groups, lazy and possessive quantifiers, lookaround);
Java-only constructs such as ``\\p{Alpha}`` are rejected when the configuration is validated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.components import Clock
from agent.config.converters import charset, regex, to_bool, to_words
from agent.config.issues import IssueCode
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from agent.interceptors.base import Interceptor
from agent.interceptors.java_text import java_date_format, java_replacement
from protocol.event import Event

log = logging.getLogger(__name__)


_I = "org.apache.flume.interceptor"


class RegexFilterInterceptor(Interceptor):
    """Keeps events whose body contains a match of ``regex``, or drops them (``excludeEvents``)."""

    SCHEMA = Schema(keys=(Key("regex", regex, ".*"), Key("excludeEvents", to_bool, False)))

    def __init__(self, pattern: re.Pattern[str], exclude: bool = False) -> None:
        self.pattern = pattern
        self.exclude = exclude

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> RegexFilterInterceptor:
        return cls(re.compile(settings["regex"]), settings["excludeEvents"])

    def intercept(self, event: Event) -> Event | None:
        found = self.pattern.search(event.body.decode("utf-8", "replace")) is not None
        return event if found != self.exclude else None


Serializer = Callable[[str], "str | None"]


def millis_serializer(java_pattern: str) -> Serializer:
    """Flume's RegexExtractorInterceptorMillisSerializer: a date string -> epoch millis string.

    Times without a zone are read in the local time zone (Joda's default zone). A value that
    does not parse yields no header (Flume throws and fails the whole batch; one odd line
    should not stop a source).
    """
    fmt = java_date_format(java_pattern)

    def serialize(value: str) -> str | None:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            log.warning("regex_extractor: %r does not match date pattern %r", value, java_pattern)
            return None
        millis = parsed.microsecond // 1000
        whole = parsed.replace(microsecond=0).timestamp()
        return str(int(whole) * 1000 + millis)

    return serialize


def _extractor_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    """Turn ``serializers = s1 s2`` + ``serializers.<s>.*`` into an ordered list of dicts."""
    problems: list[Problem] = []
    raw: dict[str, str] = settings.pop("serializers.", {})
    names = settings["serializers"]
    result = []
    for name in names:
        entry = {
            "name": raw.get(f"{name}.name"),
            "type": raw.get(f"{name}.type", "passthrough"),
            "pattern": raw.get(f"{name}.pattern"),
        }
        if not entry["name"]:
            problems.append(
                Problem(
                    IssueCode.MISSING_REQUIRED, f"missing required key 'serializers.{name}.name'"
                )
            )
        type_name = str(entry["type"])
        kind = _SERIALIZER_TYPES.get(type_name) or _SERIALIZER_TYPES.get(type_name.lower())
        if kind is None:
            problems.append(
                Problem(
                    IssueCode.UNKNOWN_TYPE,
                    f"unknown serializer type {entry['type']!r}",
                    f"serializers.{name}.type",
                )
            )
        else:
            entry["type"] = kind
        if kind == "millis" and entry["pattern"]:
            try:
                java_date_format(str(entry["pattern"]))
            except ValueError as exc:
                problems.append(
                    Problem(IssueCode.BAD_VALUE, str(exc), f"serializers.{name}.pattern")
                )
        if kind == "millis" and not entry["pattern"]:
            problems.append(
                Problem(
                    IssueCode.MISSING_REQUIRED,
                    f"missing required key 'serializers.{name}.pattern' for the millis serializer",
                    f"serializers.{name}.type",
                )
            )
        result.append(entry)
    for sub in raw:
        owner, _, leaf = sub.partition(".")
        if owner not in names or leaf not in ("name", "type", "pattern"):
            problems.append(
                Problem(
                    IssueCode.UNKNOWN_KEY,
                    f"unknown key 'serializers.{sub}' (serializers are: {' '.join(names) or '-'})",
                    f"serializers.{sub}",
                )
            )
    settings["serializers"] = result
    return problems


_SERIALIZER_TYPES = {  # Flume's names -> ours
    "passthrough": "passthrough",
    "default": "passthrough",
    "millis": "millis",
    f"{_I}.RegexExtractorInterceptorPassThroughSerializer": "passthrough",
    f"{_I}.RegexExtractorInterceptorMillisSerializer": "millis",
}




def _serializer(spec: Mapping[str, Any]) -> Serializer:
    """``spec``: one validated serializer (``type`` is ``passthrough`` or ``millis``)."""
    if spec["type"] == "millis":
        return millis_serializer(spec["pattern"])
    return lambda value: value


class RegexExtractorInterceptor(Interceptor):
    """On the first match in the UTF-8 body, group i becomes header ``serializers[i-1].name``.

    Extra groups are ignored; groups that did not take part in the match set no header;
    no match leaves the event unchanged.
    """

    SCHEMA = Schema(
        keys=(Key("regex", regex, required=True), Key("serializers", to_words, [])),
        families=(KeyFamily("serializers"),),
        rules=_extractor_rules,
    )

    def __init__(
        self, pattern: re.Pattern[str], serializers: Sequence[tuple[str, Serializer]]
    ) -> None:
        self.pattern = pattern
        self.serializers = list(serializers)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> RegexExtractorInterceptor:
        serializers = [(spec["name"], _serializer(spec)) for spec in settings["serializers"]]
        return cls(re.compile(settings["regex"]), serializers)

    def intercept(self, event: Event) -> Event | None:
        match = self.pattern.search(event.body.decode("utf-8", "replace"))
        if match is None:
            return event
        groups = match.groups()
        for (header, serialize), value in zip(self.serializers, groups, strict=False):
            if value is None:
                continue
            serialized = serialize(value)
            if serialized is not None:
                event.headers[header] = serialized
        return event


def _replacement_rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    try:
        java_replacement(settings["replaceString"], re.compile(settings["searchPattern"]))
    except ValueError as exc:
        return [Problem(IssueCode.BAD_VALUE, f"replaceString: {exc}", "replaceString")]
    return []


class SearchReplaceInterceptor(Interceptor):
    """Java ``replaceAll(searchPattern, replaceString)`` on the body decoded with ``charset``."""

    SCHEMA = Schema(
        keys=(
            Key("searchPattern", regex, required=True),
            Key("replaceString", default=""),
            Key("charset", charset, "UTF-8"),
        ),
        rules=_replacement_rules,
    )

    def __init__(self, pattern: re.Pattern[str], template: str, charset: str = "UTF-8") -> None:
        self.pattern = pattern
        self.template = template
        self.charset = charset

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> SearchReplaceInterceptor:
        pattern = re.compile(settings["searchPattern"])
        template = java_replacement(settings["replaceString"], pattern)
        return cls(pattern, template, settings["charset"])

    def intercept(self, event: Event) -> Event | None:
        text = event.body.decode(self.charset, "replace")
        event.body = self.pattern.sub(self.template, text).encode(self.charset, "replace")
        return event
