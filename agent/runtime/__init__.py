"""The runtime: the only place with loops, tasks and sleeping.

``run_agent(config)`` builds the component graph, starts it, serves metrics when asked, and
stops gracefully on SIGINT/SIGTERM. Tests use ``build_agent`` + ``Agent.start()/stop()``
in-process.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from agent.components import Clock, SystemClock
from agent.config.model import AgentConfig
from agent.metrics import MetricsRegistry
from agent.progress import ProgressLine
from agent.registry import BuildContext
from agent.runtime.agent import Agent
from agent.runtime.gc_tuning import tune_for_throughput
from agent.runtime.graph import AgentBuildError, build_agent
from agent.runtime.http_metrics import MetricsServer
from agent.runtime.reload import ConfigReloader, ReloadSource
from agent.runtime.runner import BackoffPolicy, PollingRunner

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 30.0


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
) -> dict[str, int]:
    """Run until ``stop_event`` is set (or SIGINT/SIGTERM); returns events left per channel.

    ``reload``: poll the configuration file and apply its changes while running.
    ``tune_gc``: set the process-wide collector for throughput once started (agent
    processes only, never a test's process)."""
    ctx = BuildContext(clock=clock or SystemClock(), metrics=MetricsRegistry())
    agent = build_agent(config, ctx)
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
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
        log.info("agent %s: stopping (grace %.1f s)", config.name, grace)
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
    return remaining


def run_agent(
    config: AgentConfig,
    *,
    grace: float = 10.0,
    metrics_port: int | None = None,
    metrics_format: str = "http",
    reload: ReloadSource | None = None,
) -> int:
    """Blocking entry point: 0 after a clean stop, 1 if the agent could not be built or started."""
    try:
        asyncio.run(serve_agent(config, grace=grace, metrics_port=metrics_port,
                                metrics_format=metrics_format, reload=reload, tune_gc=True))
    except AgentBuildError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("agent %s could not start: %s", config.name, exc)
        return 1
    return 0


__all__ = [
    "Agent",
    "AgentBuildError",
    "BackoffPolicy",
    "MetricsServer",
    "PollingRunner",
    "ReloadSource",
    "build_agent",
    "run_agent",
    "serve_agent",
]
