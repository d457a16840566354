"""Header interceptors: timestamp, host, static, remove_header, uuid (Flume 1.9 semantics)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.components import Clock
from agent.interceptors.base import Interceptor
from protocol.event import Event


def _flag(settings: Mapping[str, Any], key: str, default: bool) -> bool:
    value = settings.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() == "true"  # Java's Boolean.parseBoolean
    return bool(value)


class TimestampInterceptor(Interceptor):
    """Sets ``headerName`` (``timestamp``) to the clock's epoch millis as a decimal string."""

    def __init__(self, clock: Clock, header: str = "timestamp", preserve: bool = False) -> None:
        self.clock = clock
        self.header = header
        self.preserve = preserve

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> TimestampInterceptor:
        return cls(
            clock,
            str(settings.get("headerName", "timestamp")),
            _flag(settings, "preserveExisting", False),
        )

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.header in event.headers):
            event.headers[self.header] = str(int(self.clock.time() * 1000))
        return event

    def intercept_batch(self, events: Sequence[Event]) -> list[Event]:
        # one clock read per batch: the events arrived together
        stamp = str(int(self.clock.time() * 1000))
        header, preserve = self.header, self.preserve
        for event in events:
            if not (preserve and header in event.headers):
                event.headers[header] = stamp
        return list(events)


class HostInterceptor(Interceptor):
    """Sets ``hostHeader`` (``host``) to this host's IP (``useIP``, default) or canonical name.

    The address is resolved once at build time (as Flume does) by an injectable resolver, so
    this module stays free of sockets.
    """

    def __init__(self, value: str, header: str = "host", preserve: bool = False) -> None:
        self.value = value
        self.header = header
        self.preserve = preserve

    @classmethod
    def from_settings(
        cls,
        settings: Mapping[str, Any],
        clock: Clock,
        resolver: Callable[[bool], str] | None = None,
    ) -> HostInterceptor:
        if resolver is None:
            from agent.runtime.hostinfo import local_host

            resolver = local_host
        use_ip = _flag(settings, "useIP", True)
        return cls(
            resolver(use_ip),
            str(settings.get("hostHeader", "host")),
            _flag(settings, "preserveExisting", False),
        )

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.header in event.headers):
            event.headers[self.header] = self.value
        return event


class StaticInterceptor(Interceptor):
    """Sets a fixed ``key`` = ``value``; ``preserveExisting`` defaults to **true** as in Flume."""

    def __init__(self, key: str = "key", value: str = "value", preserve: bool = True) -> None:
        self.key = key
        self.value = value
        self.preserve = preserve

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> StaticInterceptor:
        return cls(
            str(settings.get("key", "key")),
            str(settings.get("value", "value")),
            _flag(settings, "preserveExisting", True),
        )

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.key in event.headers):
            event.headers[self.key] = self.value
        return event


class RemoveHeaderInterceptor(Interceptor):
    """Removes headers named ``withName``, listed in ``fromList`` or fully matching ``matching``.

    ``fromList`` is split with the regex ``fromListSeparator`` (default ``\\s*,\\s*``). With no
    criterion configured the interceptor does nothing, like Flume's.
    """

    def __init__(
        self,
        with_name: str | None = None,
        from_list: Sequence[str] = (),
        matching: re.Pattern[str] | None = None,
    ) -> None:
        self.with_name = with_name
        self.from_list = frozenset(from_list)
        self.matching = matching

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> RemoveHeaderInterceptor:
        separator = settings.get("fromListSeparator") or r"\s*,\s*"
        raw_list = settings.get("fromList")
        names: list[str] = []
        if raw_list:
            if isinstance(raw_list, str):
                names = [n for n in re.split(separator, raw_list) if n]
            else:
                names = [str(n) for n in raw_list]
        matching = settings.get("matching")
        try:
            pattern = re.compile(matching) if matching else None
        except re.error as exc:
            raise ValueError(f"matching: invalid regex {matching!r}: {exc}") from exc
        with_name = settings.get("withName")
        return cls(str(with_name) if with_name else None, names, pattern)

    def intercept(self, event: Event) -> Event | None:
        headers = event.headers
        if self.with_name is not None:
            headers.pop(self.with_name, None)
        if self.from_list:
            for name in self.from_list:
                headers.pop(name, None)
        if self.matching is not None:
            fullmatch = self.matching.fullmatch
            for name in [n for n in headers if fullmatch(n)]:
                del headers[name]
        return event


class UUIDInterceptor(Interceptor):
    """Sets ``headerName`` (``id``) to ``prefix`` + a random UUID (``preserveExisting``: true).

    ``uuid_factory`` is injectable so tests get deterministic ids.
    """

    def __init__(
        self,
        header: str = "id",
        preserve: bool = True,
        prefix: str = "",
        uuid_factory: Callable[[], str] | None = None,
    ) -> None:
        self.header = header
        self.preserve = preserve
        self.prefix = prefix
        self.uuid_factory = uuid_factory or (lambda: str(uuid.uuid4()))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> UUIDInterceptor:
        return cls(
            str(settings.get("headerName", "id")),
            _flag(settings, "preserveExisting", True),
            str(settings.get("prefix", "") or ""),
        )

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.header in event.headers):
            event.headers[self.header] = self.prefix + self.uuid_factory()
        return event
