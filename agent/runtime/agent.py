"""A running agent: starts components in dependency order and stops them with a drain period.

Start: channels -> sinks (and their runners) -> sources. Stop: sources first (nothing new comes
in), then sinks get up to ``grace`` seconds to drain the channels, then sinks and channels stop.
``stop()`` returns how many events each channel still held (lost for a memory channel), so a
sink that cannot deliver is visible instead of silently dropping data.

Each part can also be stopped and started on its own while the rest runs (a configuration
reload, ``agent.runtime.reload``): a source with its runner, a sink processor (a sink group, or
one sink on its own) with its sinks and runner, a channel. ``config`` holds the specs of what
runs, for the reload to compare with.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Mapping

from agent.components import Channel, Component, PollableSource, Sink
from agent.config.model import AgentConfig
from agent.registry import BuildContext
from agent.runtime.runner import BackoffPolicy, PollingRunner
from agent.sinkprocessors import DefaultSinkProcessor, SinkProcessor
from common.outage import error_text, format_duration

log = logging.getLogger(__name__)

DRAIN_POLL_SECONDS = 0.01


class AgentStartError(Exception):
    """A component could not start (a port taken, a directory locked): one line naming it."""


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
        config: AgentConfig | None = None,
    ) -> None:
        self.name = name
        self.channels = dict(channels)
        self.sources = dict(sources)
        self.sinks = dict(sinks)
        self.processors = dict(processors)
        self.ctx = ctx
        self.policy = policy or BackoffPolicy()
        self.config = config if config is not None else AgentConfig(name)
        self.source_runners: dict[str, PollingRunner] = {}
        self.sink_runners: dict[str, PollingRunner] = {}
        self._readers: dict[str, list[PollingRunner]] = {}  # channel -> runners of its sinks
        self._listening: set[int] = set()  # id() of channels whose commits wake our runners
        self.state = "NEW"
        self.lost: dict[str, int] = {}  # events a stop left in channels that do not keep them
        self._hurry = asyncio.Event()  # set: stop at once, without waiting for the sinks
        ctx.drain_state = self.drain_state

    def drain_state(self, channel: str) -> tuple[str, bool]:
        """How the sinks reading ``channel`` are doing, in words, and whether one is failing:
        what a source says when the channel refuses its batch."""
        runners = self._readers.get(channel, [])
        if not runners:
            return f"no sink is running on {channel}", True
        now = self.ctx.clock.monotonic()
        failing = [f"{r.name} failing for {format_duration(r.outage.for_how_long(now))} "
                   f"({r.outage.reason})" for r in runners if r.outage.down]
        if failing:
            return "; ".join(failing), True
        if not any(r.successes for r in runners):
            return " and ".join(f"{r.name} has not delivered a batch yet" for r in runners), False
        names = ", ".join(r.name for r in runners)
        verb = "is" if len(runners) == 1 else "are"
        return f"{names} {verb} delivering, more slowly than the source reads", False

    def _now_ms(self) -> int:
        return int(self.ctx.clock.time() * 1000)

    async def start(self) -> None:
        if self.state != "NEW":
            raise RuntimeError(f"agent {self.name} already {self.state.lower()}")
        self.state = "STARTING"
        starting = ""
        try:
            for name, channel in self.channels.items():
                starting = f"channel {name}"
                await self.start_channel(name, channel)
            for name, processor in self.processors.items():
                starting = f"sink {name}"
                await self.start_processor(name, processor)
            for name, source in self.sources.items():
                starting = f"source {name}"
                await self.start_source(name, source)
        except Exception as exc:
            # the environment (a port taken, a directory locked) is one line; a bug shows
            # its traceback
            log.log(logging.DEBUG if isinstance(exc, OSError) else logging.ERROR,
                    "agent %s: %s failed to start; stopping what was started", self.name,
                    starting, exc_info=True)
            await self.stop(grace=0)
            raise AgentStartError(f"{starting}: {error_text(exc)}{self._hint(starting, exc)}",
                                  ) from exc
        except BaseException:
            await self.stop(grace=0)
            raise
        self.state = "RUNNING"
        log.info(
            "agent %s started: %d source(s), %d channel(s), %d sink(s)",
            self.name, len(self.sources), len(self.channels), len(self.sinks),
        )

    def _hint(self, component: str, exc: Exception) -> str:
        """What to do about a start failure, when it is a well-known one."""
        if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
            kind, name = component.split(" ", 1)
            return (f" (another process has this port, perhaps another agent: stop it, or "
                    f"change {self.name}.{kind}s.{name}.port)")
        return ""

    # --- one part at a time -----------------------------------------------------------------

    async def start_channel(self, name: str, channel: Channel) -> None:
        await _start(channel)
        self.channels[name] = channel
        if id(channel) not in self._listening:
            self._listening.add(id(channel))
            channel.add_listener(lambda: self._wake_readers(name))
        self.ctx.metrics.mark_started("CHANNEL", name, self._now_ms())

    def _wake_readers(self, channel: str) -> None:
        for runner in self._readers.get(channel, ()):
            runner.wake()

    async def start_processor(self, name: str, processor: SinkProcessor) -> None:
        """Start a processor's sinks (if not yet running) and its runner."""
        for sink in processor.sinks:
            await _start(sink)
            self.sinks[sink.name] = sink
            self.ctx.metrics.mark_started("SINK", sink.name, self._now_ms())
        channels = sorted({self._channel_name(sink.channel) for sink in processor.sinks})
        kind = "sink" if isinstance(processor, DefaultSinkProcessor) else "sink group"
        runner = PollingRunner(f"{kind} {name}", processor.process, self.policy,
                               clock=self.ctx.clock,
                               meanwhile=f"events stay in {', '.join(channels)}",
                               resumed="delivering again")
        self.processors[name] = processor
        self.sink_runners[name] = runner
        for channel in channels:
            self._readers.setdefault(channel, []).append(runner)
        runner.start()

    def _channel_name(self, channel: Channel) -> str:
        return next((n for n, c in self.channels.items() if c is channel), channel.name)

    async def start_source(self, name: str, source: Component) -> None:
        await _start(source)
        self.sources[name] = source
        self.ctx.metrics.mark_started("SOURCE", name, self._now_ms())
        if isinstance(source, PollableSource):
            runner = PollingRunner(
                f"source {name}", source.process, source.backoff_policy(self.policy),
                clock=self.ctx.clock,
            )
            source.wakeup = runner.wake
            self.source_runners[name] = runner
            runner.start()

    async def stop_source(self, name: str, timeout: float, *, forget: bool = True) -> None:
        """Stop a source and its runner; ``forget``: drop it from ``sources`` too."""
        runners, sources = self.source_runners, self.sources
        runner = runners.pop(name, None) if forget else runners.get(name)
        if runner is not None:
            await runner.stop(timeout, self._hurry)
        source = sources.pop(name, None) if forget else sources.get(name)
        if source is not None:
            await self._stop("SOURCE", name, source)

    async def stop_processor(self, name: str, timeout: float, *, forget: bool = True) -> None:
        """Stop a processor's runner (its current batch settles), then its sinks."""
        runner = self.sink_runners.pop(name, None) if forget else self.sink_runners.get(name)
        if runner is not None:
            for readers in self._readers.values():
                if runner in readers:
                    readers.remove(runner)
            await runner.stop(timeout, self._hurry)
        processor = self.processors.pop(name, None) if forget else self.processors.get(name)
        for sink in processor.sinks if processor is not None else ():
            if forget:
                self.sinks.pop(sink.name, None)
            await self._stop("SINK", sink.name, sink)

    async def stop_channel(self, name: str) -> None:
        channel = self.channels.pop(name, None)
        if channel is not None:
            await self._stop("CHANNEL", name, channel)

    async def drain(self, channels: list[str], timeout: float) -> bool:
        """Wait up to ``timeout`` s for ``channels`` to be empty (their sinks keep running)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        while not self._drained(channels):
            if loop.time() >= deadline or self._hurry.is_set():
                return False
            for channel in channels:
                self._wake_readers(channel)
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        return True

    def _drained(self, channels: list[str]) -> bool:
        readers = {id(r) for c in channels for r in self._readers.get(c, ())}
        if any(r.busy for r in self.sink_runners.values() if id(r) in readers):
            return False
        return all(
            self.channels[c].size() == 0 and getattr(self.channels[c], "in_flight", 0) == 0
            for c in channels
            if c in self.channels
        )

    async def _stop(self, type_: str, name: str, component: object) -> None:
        try:
            stop = getattr(component, "stop", None)
            if stop is not None:
                await stop()
        except Exception:
            log.exception("agent %s: stopping %s %s failed", self.name, type_.lower(), name)
        self.ctx.metrics.mark_stopped(type_, name, self._now_ms())

    # --- the whole agent ----------------------------------------------------------------------

    def hurry(self) -> None:
        """Cut a stop short: sinks get no more time to drain (a second Ctrl-C)."""
        self._hurry.set()

    async def stop(self, grace: float = 10.0) -> dict[str, int]:
        """Stop gracefully; returns the events left in each channel. Safe to call twice.
        What a channel that does not keep events (memory) still held is lost: logged as a
        WARNING and kept in ``lost``."""
        if self.state in ("STOPPED", "STOPPING"):
            return {name: ch.size() for name, ch in self.channels.items()}
        self.state = "STOPPING"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(grace, 0.0)

        def left(minimum: float = 0.0) -> float:
            return 0.0 if self._hurry.is_set() else max(deadline - loop.time(), minimum)

        for name in reversed(list(self.sources)):
            await self.stop_source(name, left(), forget=False)
        await self.drain(list(self.channels), left())
        for name in reversed(list(self.processors)):
            await self.stop_processor(name, left(0.5), forget=False)
        remaining = {name: channel.size() for name, channel in self.channels.items()}
        durable = {name for name, channel in self.channels.items()
                   if getattr(channel, "durable", False)}
        for name in reversed(list(self.channels)):
            channel = self.channels[name]
            await self._stop("CHANNEL", name, channel)
        self.state = "STOPPED"
        why = ("stopped at once" if self._hurry.is_set()
               else f"its sinks could not deliver them within the grace period ({grace:g} s)")
        for name, count in remaining.items():
            if not count:
                continue
            if name in durable:
                log.info("agent %s: channel %s keeps %d event(s) on disk; they are delivered "
                         "after a restart", self.name, name, count)
                continue
            self.lost[name] = count
            log.warning("agent %s: %d event(s) still in memory channel %s are lost: %s; give "
                        "the sinks longer with --grace, or use a file channel (type = file) "
                        "to keep undelivered events across restarts", self.name, count, name,
                        why)
        log.info("agent %s stopped", self.name)
        return remaining


async def _start(component: object) -> None:
    start = getattr(component, "start", None)
    if start is not None:
        await start()
