"""The runtime: the only place with loops, tasks and sleeping.

``run_agent(config)`` builds the component graph, starts it, serves metrics when asked, and
stops gracefully on SIGINT/SIGTERM: sources stop, sinks get ``grace`` seconds to drain the
channels. A second signal stops at once (the sinks get no more time), a third exits on the spot
(130); one signal sent twice within half a second counts once (``common.stopping``).
Tests use ``build_agent`` + ``Agent.start()/stop()`` in-process.

Exit codes (``run_agent``): 0 stopped with nothing lost, 1 could not be built or started,
3 stopped with events still in memory channels (lost; the WARNING says how many and where),
130 a third signal.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field

from agent.components import Clock, SystemClock
from agent.config.model import AgentConfig
from agent.metrics import MetricsRegistry
from agent.progress import ProgressLine
from agent.registry import BuildContext
from agent.runtime.agent import Agent, AgentStartError
from agent.runtime.gc_tuning import one_malloc_arena, tune_for_throughput
from agent.runtime.graph import AgentBuildError, build_agent
from agent.runtime.http_metrics import MetricsServer
from agent.runtime.reload import ConfigReloader, ReloadSource
from agent.runtime.runner import BackoffPolicy, PollingRunner
from common.outage import error_text
from common.stopping import StopRequests

log = logging.getLogger(__name__)

EXIT_OK, EXIT_NOT_STARTED, EXIT_LOST, EXIT_FORCED = 0, 1, 3, 130
PROGRESS_INTERVAL_S = 30.0


@dataclass
class StopReport:
    """What a stopped agent left behind."""

    remaining: dict[str, int] = field(default_factory=dict)  # events left, per channel
    lost: dict[str, int] = field(default_factory=dict)  # of those, in memory channels: lost


async def log_progress(metrics: MetricsRegistry, agent: str, clock: Clock,
                       interval: float = PROGRESS_INTERVAL_S) -> None:
    """Log the agent's progress line (agent/progress.py) every ``interval`` seconds."""
    progress = ProgressLine(agent)
    progress.next(clock.monotonic(), metrics.snapshot())
    while True:
        await asyncio.sleep(interval)
        line = progress.next(clock.monotonic(), metrics.snapshot())
        if line is not None:
            log.info("%s", line)


async def serve_agent(
    config: AgentConfig,
    *,
    grace: float = 10.0,
    metrics_port: int | None = None,
    metrics_format: str = "http",
    clock: Clock | None = None,
    stop_event: asyncio.Event | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
    reload: ReloadSource | None = None,
    tune_gc: bool = False,
) -> StopReport:
    """Run until ``stop_event`` is set (or SIGINT/SIGTERM); returns what the stop left.

    ``reload``: poll the configuration file and apply its changes while running.
    ``tune_gc``: set the process-wide collector for throughput once started (agent
    processes only, never a test's process)."""
    ctx = BuildContext(clock=clock or SystemClock(), metrics=MetricsRegistry())
    agent = build_agent(config, ctx)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    requests = StopRequests()

    def on_signal(signum: int) -> None:
        number = requests.receive(signum, ctx.clock.monotonic())
        name = signal.Signals(signum).name
        if number is None:  # the same request sent twice (timeout(1) does)
            return
        if number == 2:
            log.warning("%s again: stopping at once, without waiting for the sinks (a third "
                        "one exits on the spot)", name)
            agent.hurry()
        elif number > 2:
            log.warning("%s a third time: exiting now", name)
            _exit_now(EXIT_FORCED)
        stop.set()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
    server = (MetricsServer(ctx.metrics, metrics_port, exposition=metrics_format,
                            agent=config.name)
              if metrics_port is not None else None)
    progress: asyncio.Task[None] | None = None
    watching: asyncio.Task[None] | None = None
    try:
        await agent.start()
        if server is not None:
            await server.start()
        if tune_gc:
            tune_for_throughput()
        progress = asyncio.create_task(log_progress(ctx.metrics, config.name, ctx.clock,
                                                    progress_interval), name="progress")
        if reload is not None:
            reloader = ConfigReloader(agent, reload.path, reload.load, grace=grace,
                                      interval=reload.interval)
            watching = asyncio.create_task(reloader.run(stop), name="config reload")
        await stop.wait()
        log.info("agent %s: stopping: sources stop, sinks get up to %g s to drain the "
                 "channels (signal again to stop at once)", config.name, grace)
    finally:
        if progress is not None:
            progress.cancel()
        if watching is not None:
            await watching  # returns once stop is set; a reload in progress finishes first
        if server is not None:
            await server.stop()
        remaining = await agent.stop(grace)
        for sig in installed:
            loop.remove_signal_handler(sig)
    return StopReport(remaining, dict(agent.lost))


def _exit_now(code: int) -> None:
    logging.shutdown()
    os._exit(code)


def run_agent(
    config: AgentConfig,
    *,
    grace: float = 10.0,
    metrics_port: int | None = None,
    metrics_format: str = "http",
    reload: ReloadSource | None = None,
) -> int:
    """Blocking entry point; returns the exit code (the module docstring lists them)."""
    one_malloc_arena()  # before any thread
    try:
        report = asyncio.run(serve_agent(config, grace=grace, metrics_port=metrics_port,
                                         metrics_format=metrics_format, reload=reload,
                                         tune_gc=True))
    except AgentBuildError as exc:
        log.error("%s", exc)
        return EXIT_NOT_STARTED
    except (AgentStartError, OSError) as exc:
        log.error("agent %s could not start: %s", config.name, error_text(exc))
        return EXIT_NOT_STARTED
    return EXIT_LOST if report.lost else EXIT_OK


__all__ = [
    "EXIT_FORCED",
    "EXIT_LOST",
    "EXIT_NOT_STARTED",
    "EXIT_OK",
    "Agent",
    "AgentBuildError",
    "AgentStartError",
    "BackoffPolicy",
    "MetricsServer",
    "PollingRunner",
    "ReloadSource",
    "StopReport",
    "build_agent",
    "run_agent",
    "serve_agent",
]
