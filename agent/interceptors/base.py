"""The interceptor contract and the chain that applies several in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from agent.components import Clock
from agent.config.schema import NO_KEYS, Schema
from protocol.event import Event

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext


class Interceptor:
    """Rewrite or drop one event; ``intercept_batch`` keeps the survivors in order.

    Built by ``from_spec`` (the registry's interface), which hands the validated settings and
    the clock to ``from_settings``; a subclass implements either.
    """

    SCHEMA: ClassVar[Schema] = NO_KEYS

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> Interceptor:
        return cls.from_settings(spec.settings, ctx.clock)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], clock: Clock) -> Interceptor:
        raise NotImplementedError

    def intercept(self, event: Event) -> Event | None:
        raise NotImplementedError

    def intercept_batch(self, events: Sequence[Event]) -> list[Event]:
        intercept = self.intercept
        out = []
        for event in events:
            result = intercept(event)
            if result is not None:
                out.append(result)
        return out


class InterceptorChain(Interceptor):
    """Applies interceptors in configured order; each sees the previous one's output."""

    def __init__(self, interceptors: Sequence[Interceptor] = ()) -> None:
        self.interceptors = list(interceptors)

    def intercept(self, event: Event) -> Event | None:
        for interceptor in self.interceptors:
            result = interceptor.intercept(event)
            if result is None:
                return None
            event = result
        return event

    def intercept_batch(self, events: Sequence[Event]) -> list[Event]:
        batch = list(events)
        for interceptor in self.interceptors:
            batch = interceptor.intercept_batch(batch)
        return batch
