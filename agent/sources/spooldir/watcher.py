"""Tell the source which paths in the spool directory changed, as soon as they change.

watchdog's observer runs in its own thread and hands each relevant path (relative to the spool
directory) to a thread-safe ``ChangeInbox``; the source takes the collected paths before it
picks its next file and re-examines only those, so its cost per file does not depend on how
many files wait. A change the path alone cannot describe (a directory created, moved or
deleted under recursiveDirectorySearch, a path outside the directory, too many paths at once)
asks for one full scan instead. inotify is used where available, else a polling observer;
with no events at all, the source's pollDelay scan of an idle directory is the fallback, so a
lost notification only costs latency.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

_FILE_EVENTS = {"created", "deleted", "modified", "moved", "closed"}
_DIRECTORY_EVENTS = {"created", "deleted", "moved"}
INBOX_LIMIT = 100_000  # more changed paths than this before the source looks: one full scan


class ChangeInbox:
    """Changed paths handed from the watcher's thread to the source; thread-safe."""

    def __init__(self, limit: int = INBOX_LIMIT) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._rescan = False
        self._limit = limit

    def add(self, rel_path: str | None) -> bool:
        """Note a changed path (None: scan everything); True if the inbox was empty."""
        with self._lock:
            was_empty = not self._paths and not self._rescan
            if rel_path is None or len(self._paths) >= self._limit:
                self._rescan = True
                self._paths.clear()
            elif not self._rescan:
                self._paths.add(rel_path)
            return was_empty

    def take(self) -> tuple[set[str], bool]:
        """The paths noted so far and whether a full scan is needed; empties the inbox."""
        with self._lock:
            paths, rescan = self._paths, self._rescan
            self._paths, self._rescan = set(), False
            return paths, rescan


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        directory: str,
        on_change: Callable[[str | None], None],
        *,
        recursive: bool,
        ignore_under: str | None,
    ) -> None:
        self._prefix = directory.rstrip("/") + "/"
        self._on_change = on_change
        self._recursive = recursive
        self._ignore_under = ignore_under

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if event.is_directory:
            # a parent's "modified" comes with every file event: never a reason to rescan
            if self._recursive and kind in _DIRECTORY_EVENTS:
                self._on_change(None)
            return
        if kind not in _FILE_EVENTS:
            return  # opened, closed_no_write: our own reads
        self._report(event.src_path)
        if kind == "moved":
            self._report(event.dest_path)

    def _report(self, raw: bytes | str) -> None:
        path = os.fsdecode(raw)
        if self._ignore_under and path.startswith(self._ignore_under):
            return  # our own tracker and failed files
        if path.startswith(self._prefix):
            self._on_change(path[len(self._prefix):])
        else:
            self._on_change(None)


class DirectoryWatcher:
    """Start/stop a watchdog observer on one directory; blocking calls (use a thread)."""

    def __init__(
        self,
        directory: str,
        on_change: Callable[[str | None], None],
        *,
        recursive: bool,
        ignore_under: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.directory = os.path.abspath(directory)  # events then carry absolute paths
        self.recursive = recursive
        self.poll_interval = poll_interval
        self._handler = _Handler(self.directory, on_change, recursive=recursive,
                                 ignore_under=ignore_under and ignore_under.rstrip("/") + "/")
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
