"""Blocking directory work for the spooldir source: choosing, opening, retiring, setting aside.

Everything here is synchronous and meant to run through ``asyncio.to_thread``; the decisions
it acts on are pure (``selection``, ``decisions``).

The completeness rule the source relies on (the same as Flume's): a file must be complete
when its name becomes visible to the source. Write it elsewhere on the same filesystem and
rename it in (``mv`` across filesystems copies, and the copy is visible half-written), or
write it under a name the source ignores (a hidden ``.name``; ``*.tmp`` only with
``ignorePattern = ^.*[.]tmp$``, as Flume's default ``^$`` ignores nothing) and rename it
when done. A file that still changes after reading began is detected and set aside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from agent.sources.spooldir import decisions, reasons
from agent.sources.spooldir.decisions import Headers, Resume, shown
from agent.sources.spooldir.listing import Lister
from agent.sources.spooldir.reader import BLOCK_SIZE, FileReader
from agent.sources.spooldir.reasons import Delivered, FileFailure, Kind
from agent.sources.spooldir.selection import (
    CandidateIndex,
    CandidateRules,
    Listing,
    Skipped,
    candidates,
)
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.tracker import PositionTracker

log = logging.getLogger(__name__)

FAILED_DIR = "failed"
REASON_SUFFIX = ".reason"


def completed_markers(tracker_dir: str, suffix: str) -> frozenset[str]:
    """Relative paths marked done under trackingPolicy=tracker_dir: one walk of the tracker
    directory (as Flume does), not one lookup per file."""
    done: set[str] = set()
    for root, dirs, files in os.walk(tracker_dir):
        rel_root = os.path.relpath(root, tracker_dir)
        if rel_root == ".":
            rel_root = ""
            dirs[:] = [d for d in dirs if d != FAILED_DIR]
        else:
            rel_root += "/"
        done.update(rel_root + f[: -len(suffix)] for f in files if f.endswith(suffix))
    return frozenset(done)


def probe_writable(directory: str) -> str | None:
    """None when we can create and delete a file in ``directory``, else the reason."""
    canary = os.path.join(directory, f".flumelet-canary-{os.getpid()}")
    try:
        with open(canary, "wb") as f:
            f.write(b"testing flume file permissions\n")
        os.unlink(canary)
    except OSError as exc:
        return f"{directory} is not writable: {exc.strerror or exc}"
    return None


class DirectoryProblem(Exception):
    """The spool directory cannot be used yet (e.g. not writable); retried at every poll."""


class RetireError(Exception):
    """The file cannot be retired the normal way; ``str(self)`` says why."""


def retire(
    abs_path: str,
    *,
    delete: bool,
    file_suffix: str,
    marker_path: str | None,
) -> str:
    """Delete, rename to ``<name><suffix>``, or mark done in the tracker dir; say what was done.

    Never overwrites: an existing rename target or marker raises RetireError, as Flume refuses
    ("File name has been re-used with different files").
    """
    if delete:
        os.unlink(abs_path)
        return "deleted"
    if marker_path is not None:
        os.makedirs(os.path.dirname(marker_path), exist_ok=True)
        try:
            fd = os.open(marker_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise RetireError(
                f"its name was re-used: the completion marker {shown(marker_path)} exists "
                "already, from an earlier file of the same name"
            ) from None
        os.close(fd)
        return f"marked done in {marker_path}"
    target = abs_path + file_suffix
    if os.path.lexists(target):
        raise RetireError(
            f"its name was re-used: {shown(target)} exists already, from an earlier file of "
            "the same name, and a completed file is never overwritten"
        )
    os.rename(abs_path, target)  # one atomic step: a crash leaves either name, never both
    return f"renamed to {target}"


def move_aside(
    spool_dir: str, failed_dir: str, rel_path: str, reason: Callable[[str | None], str]
) -> str:
    """Move a problem file to ``failed_dir`` (same relative path) with ``<name>.reason``
    beside it, holding ``reason(new path)``. Returns the new path. An existing file of that
    name in ``failed_dir`` is kept: the new one gets a ``.1``, ``.2`` ... suffix."""
    source = os.path.join(spool_dir, rel_path)
    target = os.path.join(failed_dir, rel_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    base, n = target, 0
    while os.path.lexists(target) or os.path.lexists(target + REASON_SUFFIX):
        n += 1
        target = f"{base}.{n}"
    shutil.move(source, target)
    with open(target + REASON_SUFFIX, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(reason(target))
    return target


def write_reason_only(failed_dir: str, rel_path: str, text: str) -> None:
    """When a file cannot be moved, still leave the user a note about it."""
    with contextlib.suppress(OSError):
        target = os.path.join(failed_dir, rel_path + REASON_SUFFIX)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)


@dataclass
class Step:
    """What one ``SpoolDirectory.advance`` did, for the async source to count and act on."""

    reader: FileReader | None = None  # the file now open, None when nothing waits
    bodies: list[bytes] = field(default_factory=list)  # its first batch
    # the next small files, open and read whole behind ``reader`` (only when it was read
    # whole too), each with its bodies: delivered one file per batch, retired in a later call
    ahead: list[tuple[FileReader, list[bytes]]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # source counters to increment
    problem: str | None = None  # the spool directory cannot be used now: why


class SpoolDirectory:
    """One spool directory's blocking work, called by the source one method at a time.

    The files waiting to be read live in a sorted ``CandidateIndex``: filled by one full scan,
    then updated only for the paths the watcher reports, so the cost per file does not grow
    with the number of files waiting. A full scan happens at the first call, when the watcher
    asks for one, and whenever nothing waits and nothing was reported (the pollDelay poll of
    an idle directory, which also covers a lost notification).

    ``advance`` is the source's one blocking call per file: retire the files just read (or set
    a failed one aside with its reason), then pick the next (the one the position file tracked
    first), open it and read its first batch; a file that fails on the way is set aside and
    the next one tried, all in the same call. When that file was read whole, the next small
    files waiting are read ahead in the same call, up to one batch of bodies in all: a
    directory of tiny files costs one call per batch, not per file, and a crash repeats at
    most a batch, as it may anyway. ``read_more`` reads a file's further batches.
    """

    def __init__(
        self,
        name: str,
        settings: SpoolDirSettings,
        *,
        rng: random.Random | None = None,
        block_size: int = BLOCK_SIZE,
        now: Callable[[], float] = time.time,
    ) -> None:
        s = settings
        self.name = name  # the source's, for log lines
        self.now = now
        self.settings = s
        self.spool_dir = s.spool_dir
        self.tracker_dir = (
            s.tracker_dir if os.path.isabs(s.tracker_dir)
            else os.path.join(s.spool_dir, s.tracker_dir)
        )
        self.failed_dir = os.path.join(self.tracker_dir, FAILED_DIR)
        self.rules = CandidateRules(s.include, s.ignore, s.file_suffix)
        self.lister = Lister(
            s.spool_dir, self.rules, recursive=s.recursive, follow_symlinks=s.follow_symlinks,
            exclude_dirs=frozenset({os.path.abspath(self.tracker_dir)}),
        )
        self.index = CandidateIndex(s.consume_order, rng)
        self.tracker = PositionTracker(self.tracker_dir)
        self._tracker_rel = _inside(self.tracker_dir, s.spool_dir)
        self._block_size = block_size
        self._abs_spool = decisions.java_absolute(s.spool_dir, os.getcwd())
        self._headers = Headers(s.file_header_key, s.basename_header_key)
        self._skip: set[tuple[str, int, int]] = set()  # failed, could not be moved aside
        self._reported: dict[str, str] = {}  # skipped entries already logged: why
        self._ready = False  # spool dir probed writable, tracker dir created
        self._scanned = False  # the index reflects a full scan plus the changes since
        self._resume_pending = True  # look at the position file before the first pick

    # -- what is waiting -----------------------------------------------------------------
    def refresh(self, changed: Collection[str] = (), rescan: bool = False) -> None:
        """Bring the index up to date: a full scan when needed, else only ``changed``."""
        if decisions.full_scan_needed(scanned=self._scanned, rescan=rescan,
                                      waiting=len(self.index), changed=len(changed)):
            self._full_scan()
            return
        try:
            for rel in changed:
                self._update(rel)
        except BaseException:
            self._scanned = False  # some changes were not applied: scan everything next time
            raise

    def _full_scan(self) -> None:
        self._scanned = False
        files, skipped = self.lister.scan()
        markers: frozenset[str] = frozenset()
        if self.settings.tracker_dir_policy and os.path.isdir(self.tracker_dir):
            markers = completed_markers(self.tracker_dir, self.settings.file_suffix)
        self.index.replace(candidates(files, self.rules, completed_markers=markers,
                                      skip=frozenset(self._skip)))
        seen = {entry.rel_path: entry.why for entry in skipped}
        for rel, why in seen.items():
            self._report(rel, why)
        self._reported = seen
        self._scanned = True

    def _update(self, rel: str) -> None:
        if self._tracker_rel is not None and (
            rel == self._tracker_rel or rel.startswith(self._tracker_rel + "/")
        ):
            return
        found = self.lister.examine_path(rel)
        if isinstance(found, Listing) and self._eligible(found):
            self.index.put(found)
        else:
            self.index.discard(rel)
        if isinstance(found, Skipped):
            self._report(rel, found.why)
            self._reported[rel] = found.why
        else:
            self._reported.pop(rel, None)

    def _eligible(self, entry: Listing) -> bool:
        s = self.settings
        if (entry.rel_path, entry.inode, entry.mtime_ns) in self._skip:
            return False
        marker = os.path.join(self.tracker_dir, entry.rel_path + s.file_suffix)
        return not (s.tracker_dir_policy and os.path.exists(marker))

    def _report(self, rel: str, why: str) -> None:
        """One WARNING per skipped entry while it stays (again if it changes or comes back)."""
        if self._reported.get(rel) != why:
            log.warning("source %s: skipping %s: %s", self.name,
                        shown(os.path.join(self.spool_dir, rel)), why)

    # -- choosing and opening ------------------------------------------------------------
    def open_next(self, changed: Collection[str] = (), rescan: bool = False) -> FileReader | None:
        """The next file, open and tracked; None when there is nothing to read."""
        self.refresh(changed, rescan)
        if not self._ready:
            problem = probe_writable(self.spool_dir)
            if problem is not None:
                raise DirectoryProblem(problem)
            os.makedirs(self.tracker_dir, exist_ok=True)
            self._ready = True
        if self._resume_pending:
            self._resume_pending = False
            resumed = self._resume()
            if resumed is not None:
                return resumed
        while (entry := self.index.first()) is not None:
            self.index.discard(entry.rel_path)
            opened = self._open(entry, 0)
            if opened is not None:
                return opened
        return None

    def _resume(self) -> FileReader | None:
        """Open the file the position file tracks, at its committed offset, if it is waiting."""
        tracked = self.tracker.load()
        if tracked is None:
            return None
        ident = tracked.identity
        entry = self.index.get(ident.rel_path)
        if entry is None:
            self.tracker.clear()  # finished or gone: nothing to resume
            return None
        self.index.discard(entry.rel_path)
        try:
            st = os.stat(os.path.join(self.spool_dir, entry.rel_path))
        except FileNotFoundError:
            self.tracker.clear()
            return None
        verdict = decisions.resume_verdict(ident, st)
        if verdict is Resume.RESUME:
            log.info("source %s: resuming %s at byte %d", self.name, shown(entry.rel_path),
                     tracked.offset)
            return self._open(entry, tracked.offset, resume=True)
        self.tracker.clear()
        if verdict is Resume.MODIFIED:
            raise FileFailure(
                entry.rel_path,
                reasons.change(ident, st, while_stopped=True) or "it changed",
                kind=Kind.CHANGED, size_now=st.st_size,
                delivered=Delivered(tracked.offset, resumed_at=tracked.offset,
                                    whole=tracked.offset >= ident.size),
            )
        log.warning("source %s: %s is a new file under a name being read before a restart; "
                    "reading it from the start", self.name, shown(entry.rel_path))
        return self._open(entry, 0)

    def advance(
        self,
        finishing: FileReader | None,
        failure: FileFailure | None,
        changed: Collection[str],
        rescan: bool,
        batch_size: int,
        delivered: Sequence[FileReader] = (),
    ) -> Step:
        """Retire ``delivered`` (files read whole and delivered), finish ``finishing`` (set
        it aside for ``failure`` if given, else retire it), then open the next file and read
        its first batch, and the small files after it (see the class docstring)."""
        step = self.finish_all(delivered)
        step.counts.update(self.finish(finishing, failure).counts)
        read = 0
        try:
            while True:
                try:
                    reader = self.open_next(changed, rescan)
                    changed, rescan = (), False
                    if reader is None:
                        return step
                    try:
                        bodies = self._read(reader, batch_size)
                    except BaseException:
                        reader.close()
                        raise
                    if step.reader is None:
                        step.reader, step.bodies = reader, bodies
                    else:
                        step.ahead.append((reader, bodies))
                    read += len(bodies)
                    # read ahead only files already known to wait: an empty index would
                    # mean a full scan per file when files trickle in one by one
                    if not reader.finished or read >= batch_size or not len(self.index):
                        return step
                except FileFailure as failed:
                    self._set_aside(step, failed)
        except (DirectoryProblem, OSError) as exc:
            if step.reader is None:  # a file read already: the next call meets it again
                step.problem = self._problem(exc)
        return step

    def _problem(self, exc: OSError | DirectoryProblem) -> str:
        if isinstance(exc, FileNotFoundError):
            return f"spool directory {self._where()} does not exist yet"
        if isinstance(exc, DirectoryProblem):
            return str(exc)
        return f"cannot scan {self.spool_dir}: {exc}"

    def _where(self) -> str:
        """The spool directory as configured, and where that is when it is relative (an agent
        started in another directory looks elsewhere than its user thinks)."""
        if os.path.isabs(self.spool_dir):
            return self.spool_dir
        return (f"{self.spool_dir} (relative to the agent's working directory: "
                f"{os.path.abspath(self.spool_dir)})")

    def finish(self, reader: FileReader | None, failure: FileFailure | None = None) -> Step:
        """Retire ``reader``'s file, or set it aside for ``failure``."""
        step = Step()
        if failure is not None:
            if reader is not None:
                reader.close()
            self._set_aside(step, failure)
        elif reader is not None:
            self._retire(step, reader)
        return step

    def finish_all(self, readers: Iterable[FileReader]) -> Step:
        """Retire every one of ``readers`` (files read whole and delivered)."""
        step = Step()
        for reader in readers:
            self._retire(step, reader)
        return step

    def read_more(self, reader: FileReader, batch_size: int) -> list[bytes]:
        """The next batch of ``reader``; first starts its position file if it has none (its
        first batch was delivered, more are coming). FileFailure as ``read_batch``."""
        if not reader.tracked:
            try:
                self.track(reader)
            except OSError as exc:
                log.error("source %s: cannot record position in %s: %s",
                          self.name, self.tracker.path, exc)
        return self._read(reader, batch_size)

    def _read(self, reader: FileReader, batch_size: int) -> list[bytes]:
        bodies = reader.read_batch(batch_size)
        cut = reader.new_cut()
        if cut is not None:
            log.warning("source %s: %s has a line longer than deserializer.maxLineLength = %d "
                        "(at byte %d): it is cut into events of that many characters, as "
                        "Flume does (no further warning for this file)", self.name,
                        shown(reader.abs_path), self.settings.max_line_length, cut)
        return bodies

    def _open(self, entry: Listing, offset: int, *, resume: bool = False) -> FileReader | None:
        try:
            reader = FileReader.open(
                self.spool_dir, entry.rel_path, offset, self.settings,
                self._headers.for_file(self._abs_spool, entry.rel_path), self._block_size,
                opened_at=self.now(),
            )
        except FileNotFoundError:
            log.warning("source %s: %s vanished before it could be opened", self.name,
                        shown(os.path.join(self.spool_dir, entry.rel_path)))
            return None
        if resume:  # keep tracking from the committed offset
            try:
                self.track(reader)
            except BaseException:
                reader.close()
                raise
        if entry.link:
            log.info("source %s: reading %s (a symbolic link to %s; followSymlinks = true) "
                     "from byte %d", self.name, shown(reader.abs_path),
                     shown(os.path.realpath(reader.abs_path)), offset)
        else:
            log.info("source %s: reading %s from byte %d", self.name, shown(reader.abs_path),
                     offset)
        return reader

    def track(self, reader: FileReader) -> None:
        """Start the position file for ``reader`` at its current mark.

        Called after the first delivered batch of a file that has more to come, not at open:
        a file delivered in one batch never gets a position file (three file operations
        saved per small file). A crash before that first commit re-reads the file from the
        start, repeating at most that one batch, as any crash may.
        """
        self.tracker.begin(reader.identity, reader.mark)
        reader.tracked = True

    # -- finishing files -----------------------------------------------------------------
    def _retire(self, step: Step, reader: FileReader) -> None:
        """Rename, delete or mark a fully read file; set it aside if it changed while it was
        read or its name was reused (its events are delivered either way)."""
        s = self.settings
        reader.close()
        marker = None
        if s.tracker_dir_policy:
            marker = os.path.join(self.tracker_dir, reader.rel_path + s.file_suffix)
        delivered = reader.delivered(whole=True)
        try:
            st = os.stat(reader.abs_path)
            if not reader.identity.same_file(st):
                self._replaced(reader)
                return
            changed = reasons.change(reader.identity, st, opened_at=reader.opened_at)
            if changed is not None:
                raise FileFailure(reader.rel_path, changed, kind=Kind.CHANGED,
                                  delivered=delivered, size_now=st.st_size)
            done = retire(reader.abs_path, delete=s.delete_immediately,
                          file_suffix=s.file_suffix, marker_path=marker)
        except FileFailure as failure:
            self._set_aside(step, failure)
            return
        except RetireError as exc:
            self._set_aside(step, FileFailure(reader.rel_path, str(exc), kind=Kind.REUSED,
                                              delivered=delivered, size_now=delivered.end))
            return
        except FileNotFoundError:
            self.tracker.clear()
            log.warning("source %s: %s vanished before it could be retired; its events "
                        "were delivered", self.name, shown(reader.abs_path))
            return
        except OSError as exc:
            self._set_aside(step, FileFailure(reader.rel_path, f"it cannot be retired ({exc})",
                                              delivered=delivered, size_now=delivered.end))
            return
        if reader.tracked:
            self.tracker.clear()
        took = self.now() - reader.opened_at if reader.opened_at is not None else 0.0
        log.info("source %s: finished %s (%s): %d lines, %d bytes in %.2f s%s", self.name,
                 shown(reader.abs_path), shown(done), delivered.events,
                 delivered.end - delivered.resumed_at, max(took, 0.0),
                 f" (resumed at byte {delivered.resumed_at})" if delivered.resumed_at else "")

    def _replaced(self, reader: FileReader) -> None:
        """Another file was renamed over the one read: the one read is gone and was delivered
        whole; the newcomer is a new file, read from its start like any other."""
        self.tracker.clear()
        log.warning("source %s: %s was replaced by another file while it was being read; the "
                    "replaced file was delivered whole (%s), the new one is read as a new file",
                    self.name, shown(reader.abs_path),
                    reasons.delivered_text(reader.delivered(whole=True)))
        self._update(reader.rel_path)

    def _set_aside(self, step: Step, failure: FileFailure) -> None:
        """Move the file to ``failed/`` with a reason beside it; when it cannot be moved, it
        is skipped until it changes. Logged either way."""
        step.counts[failure.counter] += 1
        self.tracker.clear()
        rel = failure.rel_path
        path = os.path.join(self.spool_dir, rel)
        when = self.now()
        summary = reasons.delivered_summary(failure)

        def text(target: str | None) -> str:
            return reasons.reason_text(failure, path=path, target=target, when=when)

        try:
            target = move_aside(self.spool_dir, self.failed_dir, rel, text)
        except OSError as exc:
            log.error("source %s: problem with %s: %s; %s; it could not be moved aside either "
                      "(%s), so it is skipped until it changes", self.name, shown(path),
                      failure.reason, summary, exc)
            write_reason_only(self.failed_dir, rel, text(None))
            with contextlib.suppress(OSError):
                st = os.stat(path)
                self._skip.add((rel, st.st_ino, st.st_mtime_ns))
            return
        log.error("source %s: problem with %s: %s; %s; moved it to %s (see %s%s)", self.name,
                  shown(path), failure.reason, summary, shown(target), shown(target),
                  REASON_SUFFIX)

    def close(self) -> None:
        self.tracker.close()  # keep the position file: the next start resumes from it
        self._scanned = False
        self._resume_pending = True


def _inside(directory: str, parent: str) -> str | None:
    """``directory`` relative to ``parent`` when it lies inside it, else None."""
    rel = os.path.relpath(os.path.abspath(directory), os.path.abspath(parent))
    return None if rel == ".." or rel.startswith("../") else rel
