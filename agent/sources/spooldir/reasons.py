"""Pure texts for a file set aside: what went wrong, what was delivered, what to do now.

A file set aside goes to ``<trackerDir>/failed/`` with ``<name>.reason`` beside it, written
for the person who finds it: the problem in words (truncated, grew, rewritten, replaced, a
reused name, undecodable bytes), times in UTC, how much of the file reached the channel, and
how to deliver the rest without repeating events, or why it must not be dropped again.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.sources.spooldir.decisions import shown

if TYPE_CHECKING:
    import os

    from agent.sources.spooldir.tracker import FileIdentity


class Kind(enum.Enum):
    """What sort of problem, for the advice that goes with it."""

    CHANGED = "changed"  # modified, grown, truncated or replaced after reading began
    REUSED = "reused"  # its completed name exists already
    UNDECODABLE = "undecodable"  # decodeErrorPolicy = FAIL met bytes it cannot decode
    UNREADABLE = "unreadable"  # open, read or rename failed


ADVICE = {
    Kind.CHANGED: (
        "Make a file complete before its name appears in the spool directory: write it "
        "elsewhere on the same filesystem and rename (mv) it in, as a rename is atomic only "
        "within one filesystem, or write it under a name the source ignores (a hidden .name, "
        "or a suffix that ignorePattern matches, e.g. ignorePattern = ^.*[.]tmp$) and rename "
        "it when done."
    ),
    Kind.REUSED: (
        "Give every file dropped into the spool directory a name of its own (e.g. with a "
        "timestamp): a completed file is never overwritten."
    ),
    Kind.UNDECODABLE: (
        "Fix the bytes, or read such files with the right inputCharset or with "
        "decodeErrorPolicy = REPLACE or IGNORE."
    ),
    Kind.UNREADABLE: "Check the file's permissions and the disk.",
}


@dataclass(frozen=True)
class Delivered:
    """How much of a file reached the channel before the problem was found."""

    end: int  # bytes [0, end) of the file were delivered
    events: int = 0  # events delivered by this run of the agent
    resumed_at: int = 0  # bytes delivered before a restart (reading resumed there)
    whole: bool = False  # everything read from the file was delivered, to its end


class FileFailure(Exception):
    """A file-level surprise: the file is set aside with a reason; ``counter`` is incremented.

    ``size_now`` is the file's size when the problem was found, if known, so the advice can
    say whether bytes remain that were never delivered.
    """

    def __init__(
        self,
        rel_path: str,
        problem: str,
        counter: str = "GenericProcessingFail",
        *,
        kind: Kind = Kind.UNREADABLE,
        delivered: Delivered | None = None,
        size_now: int | None = None,
    ) -> None:
        super().__init__(problem)
        self.rel_path = rel_path
        self.reason = problem
        self.counter = counter
        self.kind = kind
        self.delivered = delivered
        self.size_now = size_now


# -- the problem in words ------------------------------------------------------------------
def utc(seconds: float) -> str:
    """``2026-11-30 12:00:03.512 UTC``."""
    millis = round(seconds * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{millis % 1000:03d} UTC"


def size(n: int) -> str:
    return "1 byte" if n == 1 else f"{n:,} bytes"


def change(
    before: FileIdentity, st: os.stat_result, *, opened_at: float | None = None,
    while_stopped: bool = False,
) -> str | None:
    """What changed in a file since reading began (None: nothing), in words with times."""
    during = ("while the agent was stopped (reading had begun before the restart)"
              if while_stopped else "while it was being read")
    if not before.same_file(st):
        return f"another file was renamed over its name {during}"
    if st.st_size < before.size:
        what = f"it was truncated from {size(before.size)} to {size(st.st_size)} {during}"
    elif st.st_size > before.size:
        what = f"it grew from {size(before.size)} to {size(st.st_size)} {during}"
        if not while_stopped:
            what += ", so it was still being written"
    elif st.st_mtime_ns != before.mtime_ns:
        what = f"it was rewritten in place (same size, {size(st.st_size)}) {during}"
    else:
        return None
    began = f" at {utc(opened_at)}" if opened_at is not None else ""
    return (f"{what} (last modified {utc(before.mtime_ns / 1e9)} when reading began{began}; "
            f"modified again {utc(st.st_mtime_ns / 1e9)})")


# -- what was delivered, what to do --------------------------------------------------------
def _events(n: int) -> str:
    return "1 event" if n == 1 else f"{n:,} events"


def delivered_text(d: Delivered) -> str:
    if d.end == 0:
        return "nothing: no event from this file reached the channel"
    parts = []
    if d.events:
        parts.append(_events(d.events))
    if d.resumed_at:
        parts.append(f"the events in its first {size(d.resumed_at)}, before a restart")
    text = " and ".join(parts) or "its events"
    text += f": bytes 0 to {d.end - 1:,} of the file"
    if d.whole:
        text += ", all of it as it was read"
    return text


def delivered_summary(failure: FileFailure) -> str:
    """A few words for the log line."""
    d, now = failure.delivered, failure.size_now
    if d is None:
        return "what was delivered is unknown"
    if d.end == 0:
        return "nothing of it was delivered"
    if now is not None and now > d.end:
        return f"its first {size(d.end)} were delivered, the other {size(now - d.end)} not"
    if d.whole:
        return f"all of it as read was delivered ({size(d.end)})"
    return f"its first {size(d.end)} were delivered, the rest not"


def what_to_do(failure: FileFailure, where: str) -> str:
    """Advice for the file now at ``where``: whether and how to drop (part of) it again."""
    d, now = failure.delivered, failure.size_now
    if d is None:
        rest = ""
    elif d.end == 0:
        rest = "Nothing of it was delivered: once fixed, it can be dropped again whole. "
    elif now is not None and now < d.end:
        rest = (f"It is now shorter ({size(now)}) than what was delivered ({size(d.end)}): "
                "its bytes may no longer be the ones delivered, so check it before dropping "
                "any of it again. ")
    elif now is None or now > d.end:
        rest = (f"To deliver the rest without repeating events, drop a file holding only "
                f"bytes {d.end:,} onwards, e.g. tail -c +{d.end + 1} {shlex.quote(where)} > "
                "REST, then rename REST into the spool directory. ")
    else:
        rest = ("Every event it holds was delivered: do not drop it into the spool directory "
                "again, or they will be delivered twice. ")
    return rest + ADVICE[failure.kind]


def reason_text(
    failure: FileFailure, *, path: str, target: str | None, when: float
) -> str:
    """The ``.reason`` file's text (``target``: where the file went, None if not moved)."""
    moved = f", moved to {shown(target)}" if target else "; it could not be moved"
    lines = [
        f"file: {shown(path)}",
        f"set aside: {utc(when)}{moved}",
        f"problem: {failure.reason}",
    ]
    if failure.delivered is not None:
        lines.append(f"delivered: {delivered_text(failure.delivered)}")
    lines.append(f"what to do: {what_to_do(failure, target or path)}")
    return "\n".join(lines) + "\n"
