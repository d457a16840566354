"""Channel selectors: which channels must (required) and may (optional) receive an event.

Built from the source's channel list and the selector settings (Flume keys under
``selector.``, validated: every name is one of the source's channels, and a channel both
required and optional for a value is only required); channel names are resolved to channel
objects once, at build time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from agent.components import Channel
from agent.config.converters import to_words
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

DEFAULT_HEADER = "flume.selector.header"


class SelectorConfigError(ValueError):
    """The selector names a channel the source does not list, or maps a value to no channel."""


def _optional_is_not_required(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    """Flume's rule: a channel both required (the value's mapping, else the default) and
    optional for a header value is only required."""
    for value, names in settings["optional"].items():
        required = settings["mapping"].get(value) or settings["default"]
        settings["optional"][value] = [n for n in names if n not in required]
    return []


class ChannelSelector:
    """Returns ``(required, optional)`` channel lists for an event."""

    SCHEMA: ClassVar[Schema]

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, ctx: BuildContext, channels: Mapping[str, Channel]
    ) -> ChannelSelector:
        raise NotImplementedError

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

    SCHEMA = Schema(keys=(Key("optional", to_words, []),))

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, ctx: BuildContext, channels: Mapping[str, Channel]
    ) -> ReplicatingSelector:
        return cls(channels, spec.settings["optional"])

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

    A missing or blank header, or an unmapped value, uses the default channels.
    """

    SCHEMA = Schema(
        keys=(Key("header", default=DEFAULT_HEADER), Key("default", to_words, [])),
        families=(KeyFamily("mapping", to_words), KeyFamily("optional", to_words)),
        rules=_optional_is_not_required,
    )

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, ctx: BuildContext, channels: Mapping[str, Channel]
    ) -> MultiplexingSelector:
        s = spec.settings
        return cls(channels, s["header"], s["mapping"], s["optional"], s["default"])

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
            chosen = _lookup(channels, list(names), f"mapping for {value!r}")
            if not chosen:
                raise SelectorConfigError(f"mapping for {value!r} lists no channel")
            self.mapping[value] = chosen
        self.default = _lookup(channels, list(default), "default")
        self.optional = {
            value: _lookup(channels, list(names), f"optional for {value!r}")
            for value, names in (optional or {}).items()
        }
        self._no_optional: list[Channel] = []

    def select(self, event: Event) -> tuple[Sequence[Channel], Sequence[Channel]]:
        value = event.header_map.get(self.header)
        if value is None or not value.strip():
            return self.default, self._no_optional
        return self.mapping.get(value, self.default), self.optional.get(value, self._no_optional)

    def all_channels(self) -> list[Channel]:
        return list(self._channels)
