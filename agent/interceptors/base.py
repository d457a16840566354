"""The interceptor contract and the chain that applies several in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.components import Clock
from protocol.event import Event


class Interceptor:
    """Rewrite or drop one event; ``intercept_batch`` keeps the survivors in order."""

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
