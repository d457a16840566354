"""Pure decisions of the spooldir source: what a file's stat results mean, and what to say.

No I/O here: the blocking layer (``spool``, ``reader``) gathers stat results and positions,
these functions turn them into verdicts and messages, and the tests feed them made-up values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

    from agent.sources.spooldir.tracker import FileIdentity


class FileFailure(Exception):
    """A file-level surprise: the file is set aside for ``reason``; ``counter`` is incremented."""

    def __init__(self, rel_path: str, reason: str, counter: str = "GenericProcessingFail"):
        super().__init__(reason)
        self.rel_path = rel_path
        self.reason = reason
        self.counter = counter


class Resume(enum.Enum):
    """What to do with the file the position file tracked when the source (re)starts."""

    RESUME = "resume"  # unchanged: continue at the committed offset
    MODIFIED = "modified"  # same file, changed while we were down: set it aside
    NEW_FILE = "new file"  # another file under the tracked name: read it from the start


def resume_verdict(tracked: FileIdentity, st: os.stat_result) -> Resume:
    if tracked.unchanged(st):
        return Resume.RESUME
    if tracked.same_file(st):
        return Resume.MODIFIED
    return Resume.NEW_FILE


def modified_while_down(tracked: FileIdentity, st: os.stat_result, offset: int) -> str:
    return (
        f"file was modified after reading began (size {tracked.size} -> {st.st_size}, "
        f"mtime_ns {tracked.mtime_ns} -> {st.st_mtime_ns}); {offset} bytes had been delivered"
    )


def retire_problem(opened: FileIdentity, st: os.stat_result) -> str | None:
    """Why a fully read file cannot be retired as complete, or None when it is unchanged."""
    if not opened.same_file(st):
        return "file was replaced by another file while it was being read"
    if st.st_mtime_ns != opened.mtime_ns:
        return ("file has been modified since being read "
                f"(mtime_ns {opened.mtime_ns} -> {st.st_mtime_ns})")
    if st.st_size != opened.size:
        return f"file has changed size since being read ({opened.size} -> {st.st_size} bytes)"
    return None


@dataclass(frozen=True)
class Headers:
    """The optional ``file`` / ``basename`` headers every event of one file carries."""

    file_key: str | None
    basename_key: str | None

    def for_file(self, abs_spool: str, rel_path: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.file_key is not None:
            headers[self.file_key] = abs_spool + "/" + rel_path
        if self.basename_key is not None:
            headers[self.basename_key] = rel_path.rpartition("/")[2]
        return headers


def java_absolute(path: str, cwd: str) -> str:
    """``File.getAbsolutePath``: prefix the working directory, keep ``.`` parts, drop ``//``."""
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"
