"""Pure decisions of the spooldir source: what a file's stat results mean, and what to say.

No I/O here: the blocking layer (``spool``, ``reader``) gathers stat results and positions,
these functions turn them into verdicts and messages, and the tests feed them made-up values.
"""

from __future__ import annotations

import enum
import errno
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

    from agent.sources.spooldir.selection import CandidateRules
    from agent.sources.spooldir.tracker import FileIdentity


def shown(path: str) -> str:
    """``path`` fit for one log or reason line: line breaks, other control characters and
    bytes that are not UTF-8 (``surrogateescape``) are written as escapes."""
    if path.isprintable():
        return path
    out = []
    for ch in path:
        if ch.isprintable():
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


# -- entries that are not read: why, in one log line each -----------------------------------
SYMLINK_NOT_FOLLOWED = "a symbolic link, and followSymlinks = false"
LINKED_DIRECTORY = "a symbolic link to a directory; linked directories are not entered"

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe), which would block a reader until someone writes"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def not_a_regular_file(mode: int, *, linked: bool = False) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return ("a symbolic link to " if linked else "") + kind + "; only regular files are read"


def dangling_symlink(target: str) -> str:
    return (f"a dangling symbolic link (its target {shown(target)} does not exist); "
            "it is read once the target exists")


def unfollowable_symlink(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"a symbolic link that loops ({exc.strerror})"
    return f"a symbolic link that cannot be followed ({exc.strerror or exc})"


def unlistable(exc: OSError) -> str:
    return f"a directory that cannot be listed ({exc.strerror or exc})"


def unreadable_entry(exc: OSError) -> str:
    return f"cannot be examined ({exc.strerror or exc})"


def name_not_matched(name: str, rules: CandidateRules) -> str | None:
    """Why a name the rules refuse deserves a log line, or None for an ordinary mismatch.

    A name with a line break fails the default includePattern ``^.*$`` (``.`` stops at line
    breaks, in Java as here), which surprises people: say so instead of skipping silently.
    """
    if "\n" in name and rules.accepts_name(name.replace("\n", " ")):
        return (f"its name contains a line break, which includePattern "
                f"{rules.include.pattern} does not match; rename it to have it read")
    return None


def full_scan_needed(*, scanned: bool, rescan: bool, waiting: int, changed: int) -> bool:
    """List the whole directory, or trust the index and the changed paths reported?

    Scan when the index never saw a full scan, when the watcher asked for one, and when no
    file waits and no change was reported: the pollDelay poll of an idle directory, which
    also catches what a lost notification would hide. Never while files wait: that would
    make reading n files cost n scans.
    """
    return not scanned or rescan or (waiting == 0 and changed == 0)


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


@dataclass(frozen=True)
class Headers:
    """The optional ``file`` / ``basename`` headers every event of one file carries."""

    file_key: str | None
    basename_key: str | None

    def for_file(self, abs_spool: str, rel_path: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.file_key is not None:
            headers[self.file_key] = as_unicode(abs_spool + "/" + rel_path)
        if self.basename_key is not None:
            headers[self.basename_key] = as_unicode(rel_path.rpartition("/")[2])
        return headers


def as_unicode(path: str) -> str:
    """A file name's bytes that are not UTF-8 as U+FFFD, as Java shows them."""
    if path.isascii():
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def java_absolute(path: str, cwd: str) -> str:
    """``File.getAbsolutePath``: prefix the working directory, keep ``.`` parts, drop ``//``."""
    if not path.startswith("/"):
        path = cwd.rstrip("/") + "/" + path
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"
