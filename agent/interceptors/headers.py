"""Header interceptors: timestamp, host, static, remove_header, uuid (Flume 1.9 semantics)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.components import Clock
from agent.config.converters import regex, to_bool
from agent.config.schema import Key, Schema
from agent.hostinfo import local_host
from agent.interceptors.base import Interceptor
from protocol.event import Event


class TimestampInterceptor(Interceptor):
    """Sets ``headerName`` (``timestamp``) to the clock's epoch millis as a decimal string."""

    SCHEMA = Schema(
        keys=(Key("headerName", default="timestamp"), Key("preserveExisting", to_bool, False))
    )

    def __init__(self, clock: Clock, header: str = "timestamp", preserve: bool = False) -> None:
        self.clock = clock
        self.header = header
        self.preserve = preserve

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> TimestampInterceptor:
        return cls(clock, settings["headerName"], settings["preserveExisting"])

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

    SCHEMA = Schema(
        keys=(
            Key("hostHeader", default="host"),
            Key("useIP", to_bool, True),
            Key("preserveExisting", to_bool, False),
        )
    )

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
            resolver = local_host
        return cls(
            resolver(settings["useIP"]), settings["hostHeader"], settings["preserveExisting"]
        )

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.header in event.headers):
            event.headers[self.header] = self.value
        return event


class StaticInterceptor(Interceptor):
    """Sets a fixed ``key`` = ``value``; ``preserveExisting`` defaults to **true** as in Flume."""

    SCHEMA = Schema(
        keys=(
            Key("key", default="key"),
            Key("value", default="value"),
            Key("preserveExisting", to_bool, True),
        )
    )

    def __init__(self, key: str = "key", value: str = "value", preserve: bool = True) -> None:
        self.key = key
        self.value = value
        self.preserve = preserve

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> StaticInterceptor:
        return cls(settings["key"], settings["value"], settings["preserveExisting"])

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.key in event.headers):
            event.headers[self.key] = self.value
        return event


class RemoveHeaderInterceptor(Interceptor):
    """Removes headers named ``withName``, listed in ``fromList`` or fully matching ``matching``.

    ``fromList`` is split with the regex ``fromListSeparator`` (default ``\\s*,\\s*``). With no
    criterion configured the interceptor does nothing, like Flume's.
    """

    SCHEMA = Schema(
        keys=(
            Key("withName"),
            Key("fromList"),
            Key("fromListSeparator", regex, r"\s*,\s*"),
            Key("matching", regex, None),
        )
    )

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
        from_list, matching = settings["fromList"], settings["matching"]
        names = [n for n in re.split(settings["fromListSeparator"], from_list or "") if n]
        pattern = re.compile(matching) if matching else None
        return cls(settings["withName"], names, pattern)

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

    SCHEMA = Schema(
        keys=(
            Key("headerName", default="id"),
            Key("preserveExisting", to_bool, True),
            Key("prefix", default=""),
        )
    )

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
        return cls(settings["headerName"], settings["preserveExisting"], settings["prefix"])

    def intercept(self, event: Event) -> Event | None:
        if not (self.preserve and self.header in event.headers):
            event.headers[self.header] = self.prefix + self.uuid_factory()
        return event
