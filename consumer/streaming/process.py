"""How a streaming job behaves as a process, however it was started.

``flume-consumer run job.py`` and ``python job.py`` behave alike: the same log lines (format,
INFO, stderr) and the same answer to Ctrl-C / SIGTERM. The first stops the context gracefully
(what was received is processed, checkpointed and acknowledged, then ``awaitTermination()``
returns and the script goes on); a second exits at once with 130. One signal sent twice within
half a second (``timeout(1)`` does) is one request (``common.stopping``). The CLI sets both up
before it runs anything; a script run by ``python`` gets them from ``StreamingContext.start()``
(:func:`adopt`), unless it configured logging or a SIGINT handler of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from common.stopping import StopRequests
from consumer.engine.spark_context import FLUMELET_LOGGERS

__all__ = ["EXIT_FORCED", "FLUMELET_LOGGERS", "LOG_FORMAT", "SignalStopper", "adopt",
           "ensure_logging", "setup_logging"]

log = logging.getLogger("consumer.jobs")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_FORCED = 130


def setup_logging(level: str | int) -> None:
    """Logs to stderr in flumelet's format at ``level`` (results go to stdout)."""
    if isinstance(level, str):
        level = getattr(logging, level.upper())
    logging.basicConfig(level=level, stream=sys.stderr, force=True, format=LOG_FORMAT)


def ensure_logging() -> None:
    """``setup_logging("INFO")`` unless logging was configured already (by the CLI, the
    script, or a test harness)."""
    if not logging.getLogger().handlers:
        setup_logging(logging.INFO)


def _force_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)  # at once: no waiting for the batch in flight or worker threads


class SignalStopper:
    """First SIGTERM/SIGINT: graceful stop of the context ``target()`` returns, in a helper
    thread (the main thread stays in ``awaitTermination``, which then returns). Second:
    ``force_exit(130)``. ``target()`` returning None (nothing is streaming) means there is
    nothing to finish: exit at once, or with ``passthrough``, do what the handler it replaced
    would have done (a script's KeyboardInterrupt)."""

    def __init__(self, target: Callable[[], Any],
                 force_exit: Callable[[int], None] = _force_exit, *,
                 passthrough: bool = False,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._target = target
        self._force_exit = force_exit
        self._passthrough = passthrough
        self._now = now
        self._requests = StopRequests()
        self.stopper: threading.Thread | None = None
        self._previous: dict[int, Any] = {}

    @property
    def signals(self) -> int:
        """Stop requests so far (a signal repeated at once counts once)."""
        return self._requests.count

    def handle(self, signum: int, frame: Any = None) -> None:
        number = self._requests.receive(signum, self._now())
        if number is None:
            return  # the same request again
        name = signal.Signals(signum).name
        ssc = self._target()
        if ssc is None and self._passthrough and number == 1:
            self._pass_on(signum, frame)
            return
        if number > 1 or ssc is None:
            log.warning("%s: stopping at once", name)
            self._force_exit(EXIT_FORCED)
            return
        log.info("%s: finishing the batch in flight, then stopping (send it again to stop at "
                 "once)", name)
        self.stopper = threading.Thread(
            target=ssc.stop, kwargs={"stopSparkContext": False, "stopGraceFully": True},
            name="flumelet-graceful-stop", daemon=True)
        self.stopper.start()

    def _pass_on(self, signum: int, frame: Any) -> None:
        self._requests = StopRequests()  # not ours to count
        previous = self._previous.get(signum, signal.SIG_DFL)
        if callable(previous):
            previous(signum, frame)  # SIGINT's default: KeyboardInterrupt
            return
        if previous == signal.SIG_IGN:
            return
        signal.signal(signum, signal.SIG_DFL)  # the default action: terminate
        os.kill(os.getpid(), signum)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self.handle)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


_adopted: SignalStopper | None = None


def adopt(target: Callable[[], Any]) -> None:
    """For a context starting in a script run by ``python``: flume-consumer's logging and
    its graceful Ctrl-C. Does nothing where the CLI (or the script) set them up already."""
    global _adopted
    ensure_logging()
    if _adopted is not None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # the CLI's stopper, or the script's own handler
    _adopted = SignalStopper(target, passthrough=True)
    _adopted.install()
