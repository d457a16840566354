"""A running agent: starts components in dependency order and stops them with a drain period.

Start: channels -> sinks (and their runners) -> sources. Stop: sources first (nothing new comes
in), then sinks get up to ``grace`` seconds to drain the channels, then sinks and channels stop.
``stop()`` returns how many events each channel still held (lost for a memory channel), so a
sink that cannot deliver is visible instead of silently dropping data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from agent.components import Channel, Component, PollableSource, Sink
from agent.registry import BuildContext
from agent.runtime.runner import BackoffPolicy, PollingRunner
from agent.sinkprocessors import SinkProcessor

log = logging.getLogger(__name__)

DRAIN_POLL_SECONDS = 0.01


class Agent:
    def __init__(
        self,
        name: str,
        channels: Mapping[str, Channel],
        sources: Mapping[str, Component],
        sinks: Mapping[str, Sink],
        processors: Mapping[str, SinkProcessor],
        ctx: BuildContext,
        policy: BackoffPolicy | None = None,
    ) -> None:
        self.name = name
        self.channels = dict(channels)
        self.sources = dict(sources)
        self.sinks = dict(sinks)
        self.processors = dict(processors)
        self.ctx = ctx
        self.policy = policy or BackoffPolicy()
        self.source_runners: dict[str, PollingRunner] = {}
        self.sink_runners: dict[str, PollingRunner] = {}
        self._started: list[tuple[str, str, object]] = []  # (type, name, component), start order
        self.state = "NEW"

    def _now_ms(self) -> int:
        return int(self.ctx.clock.time() * 1000)

    async def _start_one(self, type_: str, name: str, component: object) -> None:
        start = getattr(component, "start", None)
        if start is not None:
            await start()
        self._started.append((type_, name, component))
        self.ctx.metrics.mark_started(type_, name, self._now_ms())

    async def start(self) -> None:
        if self.state != "NEW":
            raise RuntimeError(f"agent {self.name} already {self.state.lower()}")
        self.state = "STARTING"
        try:
            for name, channel in self.channels.items():
                await self._start_one("CHANNEL", name, channel)
            for name, sink in self.sinks.items():
                await self._start_one("SINK", name, sink)
            for name, processor in self.processors.items():
                runner = PollingRunner(f"sink {name}", processor.process, self.policy)
                for sink in processor.sinks:
                    sink.channel.add_listener(runner.wake)
                self.sink_runners[name] = runner
                runner.start()
            for name, source in self.sources.items():
                await self._start_one("SOURCE", name, source)
                if isinstance(source, PollableSource):
                    runner = PollingRunner(f"source {name}", source.process,
                                           source.backoff_policy(self.policy))
                    source.wakeup = runner.wake
                    self.source_runners[name] = runner
                    runner.start()
        except BaseException:
            log.exception("agent %s: start failed; stopping what was started", self.name)
            await self.stop(grace=0)
            raise
        self.state = "RUNNING"
        log.info(
            "agent %s started: %d source(s), %d channel(s), %d sink(s)",
            self.name, len(self.sources), len(self.channels), len(self.sinks),
        )

    async def _stop_components(self, type_: str) -> None:
        for started_type, name, component in reversed(self._started):
            if started_type != type_:
                continue
            try:
                stop = getattr(component, "stop", None)
                if stop is not None:
                    await stop()
            except Exception:
                log.exception("agent %s: stopping %s %s failed", self.name, type_.lower(), name)
            self.ctx.metrics.mark_stopped(type_, name, self._now_ms())

    def _drained(self) -> bool:
        if any(runner.busy for runner in self.sink_runners.values()):
            return False
        return all(
            channel.size() == 0 and getattr(channel, "in_flight", 0) == 0
            for channel in self.channels.values()
        )

    async def stop(self, grace: float = 10.0) -> dict[str, int]:
        """Stop gracefully; returns the events left in each channel. Safe to call twice."""
        if self.state in ("STOPPED", "STOPPING"):
            return {name: ch.size() for name, ch in self.channels.items()}
        self.state = "STOPPING"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(grace, 0.0)
        for runner in self.source_runners.values():
            await runner.stop(max(deadline - loop.time(), 0.0))
        await self._stop_components("SOURCE")
        while not self._drained() and loop.time() < deadline:
            for runner in self.sink_runners.values():
                runner.wake()
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        for runner in self.sink_runners.values():
            await runner.stop(max(deadline - loop.time(), 0.5))
        await self._stop_components("SINK")
        await self._stop_components("CHANNEL")
        self.state = "STOPPED"
        remaining = {name: channel.size() for name, channel in self.channels.items()}
        for name, count in remaining.items():
            if count:
                log.warning(
                    "agent %s: channel %s still held %d event(s) at shutdown",
                    self.name, name, count,
                )
        log.info("agent %s stopped", self.name)
        return remaining
