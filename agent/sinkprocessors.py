"""Sink processors: which sink of a group handles the next ``process()`` call.

The selection logic is plain code over an injected clock (milliseconds from
``clock.monotonic()``), so tests drive penalties and back-off by moving a manual clock.

- default: the one sink.
- failover: the live sink with the highest priority handles everything. A sink that raises is
  parked for ``min(maxpenalty, 1000 * 2**n)`` ms (n = consecutive failures: 2 s, 4 s, 8 s ...);
  once its penalty is over it is tried first and rejoins the live set when it answers READY
  (BACKOFF keeps it parked without extra penalty; another failure doubles the penalty).
- load_balance: sinks are tried in ``round_robin`` or ``random`` order until one does not
  raise. With ``backoff`` a failed sink is skipped for ``min(selector.maxTimeOut, 1000 * 2**n)``
  ms; n restarts at 1 when the previous back-off ended more than an hour before the failure.

Improvement over Flume: when every sink of a load_balance group is backing off, ``process()``
returns BACKOFF instead of raising, since nothing failed during that call. A member's failures
are logged when they begin or change, and its recovery once (``SinkHealth``); repeats go to
DEBUG.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from agent.components import Clock, Sink, Status, SystemClock
from agent.config.converters import choice, integer, to_bool
from agent.config.schema import NO_KEYS, Key, KeyFamily, Schema
from agent.sinks import EventDeliveryException
from common.outage import Outage, format_duration

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)

FAILURE_PENALTY_MS = 1000
SEQUENTIAL_RANGE_MS = 60 * 60 * 1000  # failures further apart than this start a new series
MAX_BACKOFF_EXPONENT = 16


def _now_ms(clock: Clock) -> float:
    return clock.monotonic() * 1000.0


class SinkHealth:
    """One line per change of a group member's state, not one per attempt."""

    def __init__(self, group: str, clock: Clock) -> None:
        self.group = group
        self.clock = clock
        self.outages: dict[str, Outage] = {}

    def failed(self, sink: Sink, exc: Exception, then: str) -> None:
        outage = self.outages.setdefault(sink.name, Outage())
        reason = str(exc) or type(exc).__name__
        news = outage.failed(reason, self.clock.monotonic())
        log.log(logging.WARNING if news else logging.DEBUG, "%s: sink %s failed (%s); %s",
                self.group, sink.name, reason, then)

    def worked(self, sink: Sink) -> None:
        outage = self.outages.get(sink.name)
        lasted = outage.recovered(self.clock.monotonic()) if outage is not None else None
        if lasted is not None:
            log.warning("%s: sink %s delivering again after %s", self.group, sink.name,
                        format_duration(lasted))


class SinkProcessor:
    """Runs one ``process()`` over a group of sinks."""

    SCHEMA: ClassVar[Schema] = NO_KEYS
    sinks: list[Sink]

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, sinks: Sequence[Sink], ctx: BuildContext
    ) -> SinkProcessor:
        raise NotImplementedError

    async def process(self) -> Status:
        raise NotImplementedError


class DefaultSinkProcessor(SinkProcessor):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.sinks = [sink]
        sink.standalone = True

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, sinks: Sequence[Sink], ctx: BuildContext
    ) -> DefaultSinkProcessor:
        if len(sinks) != 1:
            raise ValueError(f"the default processor takes exactly one sink, got {len(sinks)}")
        return cls(sinks[0])

    async def process(self) -> Status:
        return await self.sink.process()


@dataclass
class _Parked:
    sink: Sink
    priority: int
    failures: int = 0
    refresh_ms: float = 0.0


class FailoverSinkProcessor(SinkProcessor):
    """``prioritized``: each sink with its priority, all different (validation completes and
    deduplicates ``processor.priority.*`` as Flume does)."""

    SCHEMA = Schema(
        keys=(Key("maxpenalty", integer(0, bits=64, fallback=30000), 30000),),
        families=(KeyFamily("priority", integer()),),
    )

    def __init__(
        self,
        prioritized: Sequence[tuple[Sink, int]],
        max_penalty_ms: int = 30000,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.max_penalty_ms = max_penalty_ms
        self.live = {priority: sink for sink, priority in prioritized}
        if len(self.live) != len(prioritized) or not prioritized:
            raise ValueError("a failover group needs sinks with different priorities")
        self.sinks = [sink for sink, _ in prioritized]
        self.parked: list[_Parked] = []
        self.active: Sink | None = self.live[max(self.live)]
        self.health = SinkHealth("failover", self.clock)

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, sinks: Sequence[Sink], ctx: BuildContext
    ) -> FailoverSinkProcessor:
        priority = spec.settings["priority"]
        prioritized = [(sink, priority[sink.name]) for sink in sinks]
        return cls(prioritized, spec.settings["maxpenalty"], ctx.clock)

    def _penalty(self, failures: int) -> float:
        return float(min(self.max_penalty_ms, FAILURE_PENALTY_MS * (1 << min(failures, 30))))

    def _park(self, parked: _Parked, now: float) -> None:
        parked.failures += 1
        parked.refresh_ms = now + self._penalty(parked.failures)
        self.parked.append(parked)
        self.parked.sort(key=lambda p: p.refresh_ms)

    async def process(self) -> Status:
        now = _now_ms(self.clock)
        while self.parked and self.parked[0].refresh_ms < now:
            candidate = self.parked.pop(0)
            try:
                status = await candidate.sink.process()
            except Exception as exc:
                self._park(candidate, now)
                self.health.failed(candidate.sink, exc, "parked again, for "
                                   f"{format_duration(self._penalty(candidate.failures) / 1000)}")
                continue
            if status is Status.READY:
                self.live[candidate.priority] = candidate.sink
                self.active = self.live[max(self.live)]
                self.health.worked(candidate.sink)
                log.info("failover: sink %s is live again", candidate.sink.name)
            else:  # BACKOFF is no failure: keep it parked, no extra penalty
                self.parked.append(candidate)
                self.parked.sort(key=lambda p: p.refresh_ms)
            return status
        while self.active is not None:
            sink = self.active
            try:
                return await sink.process()
            except Exception as exc:
                priority = next(p for p, s in self.live.items() if s is sink)
                del self.live[priority]
                self._park(_Parked(sink, priority), now)
                self.active = self.live[max(self.live)] if self.live else None
                then = (f"sink {self.active.name} takes over" if self.active is not None
                        else "no sink left to fail over to")
                self.health.failed(sink, exc, f"parked; {then}")
        raise EventDeliveryException("all sinks failed to process, nothing left to fail over to")


@dataclass
class _BackoffState:
    failures: int = 0
    last_fail_ms: float = float("-inf")
    restore_ms: float = float("-inf")


class LoadBalancingSinkProcessor(SinkProcessor):
    SCHEMA = Schema(
        keys=(
            Key("selector", choice("round_robin", "random"), "round_robin"),
            Key("backoff", to_bool, False),
            Key("selector.maxTimeOut", integer(0, bits=64), 30000),
        )
    )

    def __init__(
        self,
        sinks: Sequence[Sink],
        selector: str = "round_robin",
        backoff: bool = False,
        max_timeout_ms: int = 30000,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not sinks:
            raise ValueError("a load_balance group needs at least one sink")
        self.sinks = list(sinks)
        self.selector = selector
        self.backoff = backoff
        self.max_timeout_ms = max_timeout_ms
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.states = [_BackoffState() for _ in self.sinks]
        self.next_head = 0
        self.health = SinkHealth("load_balance", self.clock)

    @classmethod
    def from_spec(
        cls, spec: ComponentSpec, sinks: Sequence[Sink], ctx: BuildContext
    ) -> LoadBalancingSinkProcessor:
        s = spec.settings
        return cls(sinks, s["selector"], s["backoff"], s["selector.maxTimeOut"], ctx.clock)

    def order(self) -> list[int]:
        """Indices of the sinks to try for the next call, in order (backed-off ones left out)."""
        now = _now_ms(self.clock)
        active = [i for i, st in enumerate(self.states) if st.restore_ms < now]
        if not active:
            return []
        if self.selector == "random":
            self.rng.shuffle(active)
            return active
        head = self.next_head if self.next_head < len(active) else 0  # as Flume's selector
        self.next_head = head + 1 if head + 1 < len(active) else 0
        return [active[(head + k) % len(active)] for k in range(len(active))]

    def inform_failure(self, index: int) -> None:
        if not self.backoff:
            return
        state = self.states[index]
        now = _now_ms(self.clock)
        last_length = min(self.max_timeout_ms, FAILURE_PENALTY_MS * (1 << state.failures))
        if now - state.last_fail_ms < last_length + SEQUENTIAL_RANGE_MS:
            state.failures = min(state.failures + 1, MAX_BACKOFF_EXPONENT)
        else:
            state.failures = 1
        state.last_fail_ms = now
        penalty = min(self.max_timeout_ms, FAILURE_PENALTY_MS * (1 << state.failures))
        state.restore_ms = now + penalty

    async def process(self) -> Status:
        order = self.order()
        if not order:
            return Status.BACKOFF
        for index in order:
            sink = self.sinks[index]
            try:
                status = await sink.process()
            except Exception as exc:
                self.inform_failure(index)
                self.health.failed(sink, exc, "trying the next")
                continue
            self.health.worked(sink)
            return status
        raise EventDeliveryException("all sinks of the load_balance group failed")

