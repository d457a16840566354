"""The channel processor: interceptors, then the selector, then one transaction per channel.

Required channels are written one after another, each in its own transaction; a failure rolls
back that channel and raises ``ChannelException`` (channels committed before it keep the
batch: a retry duplicates there, exactly as in Flume). Optional channels are written
afterwards and their failures are only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from agent.channels.durability import durable
from agent.components import Channel, ChannelException
from agent.interceptors.base import Interceptor, InterceptorChain
from agent.selectors import ChannelSelector, ReplicatingSelector
from protocol.event import Event

log = logging.getLogger(__name__)


class DefaultChannelProcessor:
    """Implements ``agent.components.ChannelProcessor``."""

    def __init__(
        self, selector: ChannelSelector, interceptors: Sequence[Interceptor] = ()
    ) -> None:
        self.selector = selector
        self.interceptor = InterceptorChain(interceptors)
        self._has_interceptors = bool(interceptors)

    async def synced(self) -> None:
        """Return once what was committed to this source's channels is durable (a file
        channel's group commit: see agent/channels/durability.py)."""
        await durable(self.selector.all_channels())

    def process_event(self, event: Event) -> None:
        if self._has_interceptors:
            intercepted = self.interceptor.intercept(event)
            if intercepted is None:
                return
            event = intercepted
        required, optional = self.selector.select(event)
        for channel in required:
            _write(channel, [event])
        for channel in optional:
            _write_optional(channel, [event])

    def process_event_batch(self, events: Sequence[Event]) -> None:
        if self._has_interceptors:
            events = self.interceptor.intercept_batch(events)
        if not events:
            return
        if isinstance(self.selector, ReplicatingSelector):  # same channels for every event
            batch = list(events)
            for channel in self.selector.required:
                _write(channel, batch)
            for channel in self.selector.optional:
                _write_optional(channel, batch)
            return
        required_batches: dict[int, tuple[Channel, list[Event]]] = {}
        optional_batches: dict[int, tuple[Channel, list[Event]]] = {}
        select = self.selector.select
        for event in events:
            required, optional = select(event)
            for channel in required:
                entry = required_batches.get(id(channel))
                if entry is None:
                    required_batches[id(channel)] = (channel, [event])
                else:
                    entry[1].append(event)
            for channel in optional:
                entry = optional_batches.get(id(channel))
                if entry is None:
                    optional_batches[id(channel)] = (channel, [event])
                else:
                    entry[1].append(event)
        for channel, batch in required_batches.values():
            _write(channel, batch)
        for channel, batch in optional_batches.values():
            _write_optional(channel, batch)


def _write(channel: Channel, events: list[Event]) -> None:
    tx = channel.transaction()
    try:
        tx.begin()
        put_all = getattr(tx, "put_all", None)
        if put_all is not None:
            put_all(events)
        else:
            for event in events:
                tx.put(event)
        tx.commit()
    except BaseException as exc:
        try:
            tx.rollback()
        except Exception:
            log.exception("channel %s: rollback failed", channel.name)
        if isinstance(exc, ChannelException) and exc.channel is None:
            exc.channel = channel.name  # a source's message names it, and who drains it
        if isinstance(exc, ChannelException) or not isinstance(exc, Exception):
            raise
        wrapped = ChannelException(
            f"unable to put batch on required channel {channel.name}: {exc}"
        )
        wrapped.channel = channel.name
        raise wrapped from exc
    finally:
        tx.close()


def _write_optional(channel: Channel, events: list[Event]) -> None:
    try:
        _write(channel, events)
    except ChannelException as exc:
        log.warning("optional channel %s refused %d event(s): %s", channel.name, len(events), exc)
