"""Termination state of a running graph: batches completed so far, whether it stopped, why.

The runtime's loop thread reports here (through the callbacks the context hands it); user
threads wait here (``awaitTermination``, ``awaitBatchCompleted``).
"""

from __future__ import annotations

import threading

__all__ = ["Termination"]


class Termination:
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._stopped = threading.Event()
        self._progress = threading.Condition()
        self._last_done_ms: int | None = None

    # ---- reported by the runtime (or step()) -----------------------------------------
    def batch_done(self, t_ms: int) -> None:
        with self._progress:
            self._last_done_ms = t_ms
            self._progress.notify_all()

    def fail(self, error: BaseException) -> None:
        """A batch failed or a receiver asked the context to stop: this is the error."""
        self.error = error

    def stopped(self, error: BaseException | None) -> None:
        """The context stopped; ``error`` (if any) counts unless one was reported first."""
        if error is not None and self.error is None:
            self.error = error
        self._stopped.set()
        with self._progress:
            self._progress.notify_all()

    # ---- waited on by user threads ---------------------------------------------------
    def wait_for_batch(self, t_ms: int, timeout: float) -> bool:
        with self._progress:
            return self._progress.wait_for(
                lambda: (self._last_done_ms is not None and self._last_done_ms >= t_ms)
                or self._stopped.is_set(), timeout)

    def wait(self, timeout: float | None) -> bool:
        """True if stopped within ``timeout``; raises the error the context stopped with."""
        stopped = self._stopped.wait(timeout)
        if self.error is not None:
            raise self.error
        return stopped
