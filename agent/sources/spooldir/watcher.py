"""Wake the source as soon as a file lands in the spool directory.

watchdog's observer runs in its own thread; the callback given here must be thread-safe
(the source passes one that hops onto the event loop with ``call_soon_threadsafe``).
inotify is used where available, else a polling observer; the source's own pollDelay scan
is the fallback either way, so a lost notification only costs latency.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

_WAKING_EVENTS = {"created", "moved", "closed"}


class _Handler(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[], None], ignore_under: str | None) -> None:
        self._on_change = on_change
        self._ignore_under = ignore_under

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WAKING_EVENTS:
            return
        path = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
        if self._ignore_under and path.startswith(self._ignore_under):
            return  # our own tracker and failed files
        self._on_change()


class DirectoryWatcher:
    """Start/stop a watchdog observer on one directory; blocking calls (use a thread)."""

    def __init__(
        self,
        directory: str,
        on_change: Callable[[], None],
        *,
        recursive: bool,
        ignore_under: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.directory = directory
        self.recursive = recursive
        self.poll_interval = poll_interval
        self._handler = _Handler(on_change, ignore_under and ignore_under.rstrip("/") + "/")
        self._observer: BaseObserver | None = None

    def start(self) -> None:
        if self._observer is not None:
            return
        try:
            observer: BaseObserver = Observer()
            observer.schedule(self._handler, self.directory, recursive=self.recursive)
            observer.start()
        except OSError as exc:
            log.info("inotify unavailable for %s (%s): polling instead", self.directory, exc)
            observer = PollingObserver(timeout=max(self.poll_interval, 0.1))
            observer.schedule(self._handler, self.directory, recursive=self.recursive)
            observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
