"""One hdfs bucket's files, pure: Flume's BucketWriter names and roll rules.

A bucket is one rendered ``hdfs.path`` + ``hdfs.filePrefix``. Its files are named
``<filePrefix>.<counter><fileSuffix or the codec's extension>``, the counter starting at the
bucket's creation time in millis and counting up; while open a file carries ``inUsePrefix`` and
``inUseSuffix``. A file rolls before the event that would exceed ``rollCount`` events or once
``rollSize`` body bytes are reached, ``rollInterval`` seconds after it was opened, or
``idleTimeout`` seconds after its last write (0 disables each rule).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RollPolicy:
    interval: float = 30.0  # seconds
    size: int = 1024  # body bytes
    count: int = 10  # events
    idle_timeout: float = 0.0  # seconds


@dataclass(frozen=True)
class FileNames:
    directory: str
    prefix: str = "FlumeData"
    suffix: str = ""
    in_use_prefix: str = ""
    in_use_suffix: str = ".tmp"
    extension: str = ""  # the codec's, used when there is no suffix

    def paths(self, counter: int) -> tuple[str, str]:
        """(in-use path, final path) of the file with this counter."""
        name = f"{self.prefix}.{counter}{self.suffix or self.extension}"
        directory = self.directory.rstrip("/") or "/"
        base = directory if directory.endswith("/") else directory + "/"
        return f"{base}{self.in_use_prefix}{name}{self.in_use_suffix}", f"{base}{name}"


@dataclass
class FileState:
    """The open file's counts, for the roll rules."""

    opened_at: float
    last_write: float
    events: int = 0
    bytes: int = 0

    def full(self, policy: RollPolicy) -> bool:
        """Roll before the next event? (Flume checks before appending.)"""
        return ((policy.count > 0 and self.events >= policy.count)
                or (policy.size > 0 and self.bytes >= policy.size))

    def expired(self, policy: RollPolicy, now: float) -> bool:
        """Due to close on a timer: ``rollInterval`` since open or ``idleTimeout`` since the
        last write."""
        return ((policy.interval > 0 and now - self.opened_at >= policy.interval)
                or (policy.idle_timeout > 0 and now - self.last_write >= policy.idle_timeout))

    def add(self, body_size: int, now: float) -> None:
        self.events += 1
        self.bytes += body_size
        self.last_write = now
