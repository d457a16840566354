"""Body-regex interceptors: regex_filter, regex_extractor, search_replace.

Patterns are compiled with Python's ``re``; Java's ``Matcher.find()`` is ``re.search``. Common
Java syntax carries over (classes, groups, lazy and possessive quantifiers, lookaround);
Java-only constructs such as ``\\p{Alpha}`` are rejected when the configuration is built.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from agent.components import Clock
from agent.interceptors.base import Interceptor
from agent.interceptors.headers import _flag
from agent.interceptors.java_text import java_date_format, java_replacement
from protocol.event import Event

log = logging.getLogger(__name__)


def _compile(key: str, regex: Any) -> re.Pattern[str]:
    if regex is None or regex == "":
        raise ValueError(f"{key} is required")
    try:
        return re.compile(str(regex))
    except re.error as exc:
        raise ValueError(f"{key}: invalid regex {regex!r}: {exc}") from exc


class RegexFilterInterceptor(Interceptor):
    """Keeps events whose body contains a match of ``regex``, or drops them (``excludeEvents``)."""

    def __init__(self, pattern: re.Pattern[str], exclude: bool = False) -> None:
        self.pattern = pattern
        self.exclude = exclude

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> RegexFilterInterceptor:
        return cls(
            _compile("regex", settings.get("regex", ".*")),
            _flag(settings, "excludeEvents", False),
        )

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


def _serializer(spec: Mapping[str, Any]) -> Serializer:
    kind = str(spec.get("type") or "default")
    lowered = kind.lower()
    if lowered in ("default", "passthrough") or lowered.endswith("passthroughserializer"):
        return lambda value: value
    if "millis" in lowered:
        pattern = spec.get("pattern")
        if not pattern:
            raise ValueError(f"serializer {spec.get('name')!r}: millis serializer needs a pattern")
        return millis_serializer(str(pattern))
    raise ValueError(f"serializer type {kind!r} is not supported (use default or millis)")


class RegexExtractorInterceptor(Interceptor):
    """On the first match in the UTF-8 body, group i becomes header ``serializers[i-1].name``.

    Extra groups are ignored; groups that did not take part in the match set no header;
    no match leaves the event unchanged.
    """

    def __init__(
        self, pattern: re.Pattern[str], serializers: Sequence[tuple[str, Serializer]]
    ) -> None:
        self.pattern = pattern
        self.serializers = list(serializers)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> RegexExtractorInterceptor:
        pattern = _compile("regex", settings.get("regex"))
        serializers = []
        for spec in settings.get("serializers") or ():
            name = spec.get("name")
            if not name:
                raise ValueError(f"serializer {spec!r} needs a name (the header to set)")
            serializers.append((str(name), _serializer(spec)))
        return cls(pattern, serializers)

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


class SearchReplaceInterceptor(Interceptor):
    """Java ``replaceAll(searchPattern, replaceString)`` on the body decoded with ``charset``."""

    def __init__(self, pattern: re.Pattern[str], template: str, charset: str = "UTF-8") -> None:
        self.pattern = pattern
        self.template = template
        self.charset = charset

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> SearchReplaceInterceptor:
        pattern = _compile("searchPattern", settings.get("searchPattern"))
        replace = settings.get("replaceString")
        template = java_replacement("" if replace is None else str(replace), pattern)
        charset = str(settings.get("charset") or "UTF-8")
        try:
            codecs.lookup(charset)
        except LookupError as exc:
            raise ValueError(f"charset: unknown charset {charset!r}") from exc
        return cls(pattern, template, charset)

    def intercept(self, event: Event) -> Event | None:
        text = event.body.decode(self.charset, "replace")
        event.body = self.pattern.sub(self.template, text).encode(self.charset, "replace")
        return event
