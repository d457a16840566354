"""Channel selectors: which channels must (required) and may (optional) receive an event.

Built from the source's channel list and the selector settings (Flume keys under
``selector.``); channel names are resolved to channel objects once, at build time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.components import Channel
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec

DEFAULT_HEADER = "flume.selector.header"


class SelectorConfigError(ValueError):
    """The selector names a channel the source does not list, or maps a value to no channel."""


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


class ChannelSelector:
    """Returns ``(required, optional)`` channel lists for an event."""

    def select(self, event: Event) -> tuple[Sequence[Channel], Sequence[Channel]]:
        raise NotImplementedError

    def all_channels(self) -> list[Channel]:
        raise NotImplementedError


def _lookup(channels: Mapping[str, Channel], names: list[str], what: str) -> list[Channel]:
    unknown = [n for n in names if n not in channels]
    if unknown:
        raise SelectorConfigError(
            f"{what} names channel(s) {', '.join(unknown)} that the source does not list "
            f"(its channels: {', '.join(channels) or 'none'})"
        )
    return [channels[n] for n in names]


class ReplicatingSelector(ChannelSelector):
    """Every event to every channel; ``optional`` channels' failures are ignored."""

    def __init__(self, channels: Mapping[str, Channel], optional: Sequence[str] = ()) -> None:
        optional_set = set(optional)
        self.optional = _lookup(channels, [n for n in channels if n in optional_set], "optional")
        _lookup(channels, list(optional), "optional")
        self.required = [ch for n, ch in channels.items() if n not in optional_set]
        self._result = (self.required, self.optional)

    def select(self, event: Event) -> tuple[Sequence[Channel], Sequence[Channel]]:
        return self._result

    def all_channels(self) -> list[Channel]:
        return self.required + self.optional


class MultiplexingSelector(ChannelSelector):
    """Routes on one header's value: ``mapping``, else ``default``; plus ``optional`` per value.

    A missing or blank header, or an unmapped value, uses the default channels. A channel both
    required and optional for a value counts as required (Flume's rule).
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        header: str = DEFAULT_HEADER,
        mapping: Mapping[str, Sequence[str]] | None = None,
        optional: Mapping[str, Sequence[str]] | None = None,
        default: Sequence[str] = (),
    ) -> None:
        self.header = header
        self._channels = list(channels.values())
        self.mapping: dict[str, list[Channel]] = {}
        for value, names in (mapping or {}).items():
            chosen = _lookup(channels, _names(names), f"mapping for {value!r}")
            if not chosen:
                raise SelectorConfigError(f"mapping for {value!r} lists no channel")
            self.mapping[value] = chosen
        self.default = _lookup(channels, _names(default), "default")
        self.optional: dict[str, list[Channel]] = {}
        for value, names in (optional or {}).items():
            required = self.mapping.get(value, self.default)
            chosen = _lookup(channels, _names(names), f"optional for {value!r}")
            self.optional[value] = [ch for ch in chosen if ch not in required]
        self._no_optional: list[Channel] = []

    def select(self, event: Event) -> tuple[Sequence[Channel], Sequence[Channel]]:
        value = event.headers.get(self.header)
        if value is None or not value.strip():
            return self.default, self._no_optional
        return self.mapping.get(value, self.default), self.optional.get(value, self._no_optional)

    def all_channels(self) -> list[Channel]:
        return list(self._channels)


def build_selector(spec: ComponentSpec | None, channels: Mapping[str, Channel]) -> ChannelSelector:
    """The selector for a source: ``spec`` None means Flume's default (replicating)."""
    if spec is None:
        return ReplicatingSelector(channels)
    settings: Mapping[str, Any] = spec.settings
    kind = spec.type.lower()
    if kind == "replicating":
        return ReplicatingSelector(channels, _names(settings.get("optional")))
    if kind == "multiplexing":
        return MultiplexingSelector(
            channels,
            header=str(settings.get("header") or DEFAULT_HEADER),
            mapping=settings.get("mapping") or {},
            optional=settings.get("optional") or {},
            default=_names(settings.get("default")),
        )
    raise SelectorConfigError(f"unknown selector type {spec.type!r} (replicating, multiplexing)")
