"""The live terminal view: when stdout is a terminal, a table refreshed after each batch (top
N of the latest windows, input rate, delays) replaces the pprint blocks; ``--plain`` or a
stdout that is not a terminal keeps Spark's pprint format exactly.

Built with ``rich``'s Live display, redrawn from the job's batch reports (no timer thread).
While it runs, log lines that go to the same terminal are printed above the table instead of
through it. It is a StreamingContext service: it starts with the context and, on the graceful
stop a Ctrl-C asks for, shows the last batch and gives the terminal back (cursor shown).
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from consumer.jobs.observe import BatchReport
from consumer.ui.model import JobView

__all__ = ["TerminalView", "wants_live_view"]

MAX_WINDOWS = 3  # an event-time batch may close many: the newest fit on a screen


def wants_live_view(stdout: IO[str], plain: bool) -> bool:
    return not plain and stdout.isatty()


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S")


def render(view: JobView) -> RenderableType:
    """The whole screen for the view's current state."""
    info = view.info
    last = view.batches[-1] if view.batches else None
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(view.dropped_total.items()) if v)
    stats = Text.assemble(
        ("input ", "dim"), f"{view.input_rate():.1f} events/s",
        ("   scheduling delay ", "dim"),
        f"{last.scheduling_delay_ms:.0f} ms" if last else "-",
        ("   processing ", "dim"), f"{last.processing_ms:.0f} ms" if last else "-",
        ("   batches ", "dim"), str(view.completed),
        ("   records ", "dim"), str(view.records),
        *((("   dropped ", "dim"), dropped) if dropped else ()))
    parts: list[RenderableType] = [
        Text.assemble((info.name, "bold"), "  ", (info.description, "dim")), stats]
    windows = list(view.windows)[-MAX_WINDOWS:]
    if not windows:
        parts.append(Text("no window closed yet", style="dim"))
    for window in windows:
        table = Table(title=f"[{_clock(window.start_ms)}, {_clock(window.end_ms)})  "
                            f"{window.keys} keys", title_justify="left", expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("key", overflow="fold")
        table.add_column("value", justify="right")
        for rank, (key, value) in enumerate(window.pairs()[:info.top], 1):
            table.add_row(str(rank), str(key), str(value))
        parts.append(table)
    return Group(*parts)


class TerminalView:
    def __init__(self, view: JobView, console: Console | None = None) -> None:
        self.view = view
        self.console = console or Console()
        self._live: Live | None = None
        self._moved: list[tuple[logging.StreamHandler[Any], Any]] = []

    async def start(self) -> None:
        self._live = Live(render(self.view), console=self.console, auto_refresh=False,
                          redirect_stdout=False, redirect_stderr=sys.stderr.isatty())
        self._live.start()
        if sys.stderr.isatty():  # logs above the table, not through it
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and \
                        getattr(handler.stream, "isatty", lambda: False)():
                    self._moved.append((handler, handler.setStream(sys.stderr)))

    def observe(self, report: BatchReport) -> None:
        """A job observer (worker thread): take the batch, redraw."""
        self.view.add(report)
        if self._live is not None:
            self._live.update(render(self.view), refresh=True)

    async def stop(self) -> None:
        live, self._live = self._live, None
        for handler, stream in self._moved:
            handler.setStream(stream)
        self._moved = []
        if live is not None:
            live.update(render(self.view), refresh=True)
            live.stop()
