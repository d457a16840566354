"""Blocking directory work for the spooldir source: choosing, opening, retiring, setting aside.

Everything here is synchronous and meant to run through ``asyncio.to_thread``; the decisions
it acts on are pure (``selection``, ``decisions``).

The completeness rule the source relies on (the same as Flume's): a file must be complete
when its name becomes visible to the source. Write it elsewhere (or under a hidden ``.name``,
or a name matching ``ignorePattern`` such as ``*.tmp``) and rename or move it in when done.
A file that still changes after reading began is detected at the end and moved aside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import stat as stat_module
from collections.abc import Callable

from agent.sources.spooldir import decisions
from agent.sources.spooldir.decisions import FileFailure, Headers, Resume, shown
from agent.sources.spooldir.reader import BLOCK_SIZE, FileReader
from agent.sources.spooldir.selection import CandidateRules, Listing, Skipped, candidates, choose
from agent.sources.spooldir.settings import SpoolDirSettings
from agent.sources.spooldir.tracker import PositionTracker

log = logging.getLogger(__name__)

FAILED_DIR = "failed"
REASON_SUFFIX = ".reason"


def scan(
    spool_dir: str,
    rules: CandidateRules,
    *,
    recursive: bool,
    follow_symlinks: bool,
    exclude_dirs: frozenset[str] = frozenset(),
) -> tuple[list[Listing], list[Skipped]]:
    """Readable files under ``spool_dir`` whose names pass ``rules``, and the entries that
    pass the rules but cannot be read (FIFOs, dangling or looping symbolic links...).

    Raises FileNotFoundError when ``spool_dir`` itself is missing; a problem with any entry
    below it only makes that entry Skipped. Files that vanish while listing are left out.
    ``exclude_dirs`` holds absolute directories never entered (the tracker directory).
    """
    files: list[Listing] = []
    skipped: list[Skipped] = []
    stack = [("", spool_dir)]
    first = True
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except OSError as exc:
            if first:
                if isinstance(exc, NotADirectoryError):
                    raise FileNotFoundError(f"{spool_dir} is not a directory") from None
                raise
            if not isinstance(exc, FileNotFoundError):
                skipped.append(Skipped(rel_dir.rstrip("/"), decisions.unlistable(exc)))
            continue
        first = False
        for entry in entries:
            name = entry.name
            rel = rel_dir + name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if (
                        recursive
                        and rules.enters_directory(name)
                        and os.path.abspath(entry.path) not in exclude_dirs
                    ):
                        stack.append((rel + "/", entry.path))
                    continue
                if not rules.accepts_name(name):
                    why = decisions.name_not_matched(name, rules)
                    if why is not None:
                        skipped.append(Skipped(rel, why))
                    continue
                found = examine(entry.path, rel, entry.stat(follow_symlinks=False),
                                follow_symlinks=follow_symlinks, recursive=recursive)
            except FileNotFoundError:
                continue
            except OSError as exc:
                found = Skipped(rel, decisions.unreadable_entry(exc))
            if isinstance(found, Listing):
                files.append(found)
            elif found is not None:
                skipped.append(found)
    return files, skipped


def examine(
    abs_path: str, rel_path: str, lst: os.stat_result, *, follow_symlinks: bool,
    recursive: bool,
) -> Listing | Skipped | None:
    """What one directory entry is to the source, from its ``lstat``: a readable file, an
    entry skipped with a reason, or None (a directory, not ours to report)."""
    mode = lst.st_mode
    if stat_module.S_ISREG(mode):
        return Listing(rel_path, lst.st_mtime_ns, lst.st_size, lst.st_ino)
    if stat_module.S_ISDIR(mode):
        return None
    if not stat_module.S_ISLNK(mode):
        return Skipped(rel_path, decisions.not_a_regular_file(mode))
    if not follow_symlinks:
        return Skipped(rel_path, decisions.SYMLINK_NOT_FOLLOWED)
    try:
        st = os.stat(abs_path)
    except FileNotFoundError:
        try:
            target = os.readlink(abs_path)
        except OSError:
            raise FileNotFoundError(abs_path) from None  # the link itself is gone
        return Skipped(rel_path, decisions.dangling_symlink(target))
    except OSError as exc:
        return Skipped(rel_path, decisions.unfollowable_symlink(exc))
    if stat_module.S_ISREG(st.st_mode):
        return Listing(rel_path, st.st_mtime_ns, st.st_size, st.st_ino, link=True)
    if stat_module.S_ISDIR(st.st_mode):
        return Skipped(rel_path, decisions.LINKED_DIRECTORY) if recursive else None
    return Skipped(rel_path, decisions.not_a_regular_file(st.st_mode, linked=True))


def completed_markers(
    tracker_dir: str, suffix: str, rel_paths: list[str]
) -> frozenset[str]:
    """Which of ``rel_paths`` already have a tracker_dir completion marker."""
    return frozenset(
        rel for rel in rel_paths if os.path.exists(os.path.join(tracker_dir, rel + suffix))
    )


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
                f"file name has been re-used with different files: marker {marker_path} exists"
            ) from None
        os.close(fd)
        return f"marked done in {marker_path}"
    target = abs_path + file_suffix
    if os.path.lexists(target):
        raise RetireError(
            f"file name has been re-used with different files: {target} already exists"
        )
    os.rename(abs_path, target)  # one atomic step: a crash leaves either name, never both
    return f"renamed to {target}"


def move_aside(
    spool_dir: str, failed_dir: str, rel_path: str, reason: str, now: Callable[[], float]
) -> str:
    """Move a problem file to ``failed_dir`` (same relative path) with ``<name>.reason`` beside.

    Returns the new path. An existing file of that name in ``failed_dir`` is kept: the new
    one gets a ``.1``, ``.2`` ... suffix.
    """
    source = os.path.join(spool_dir, rel_path)
    target = os.path.join(failed_dir, rel_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    base, n = target, 0
    while os.path.lexists(target) or os.path.lexists(target + REASON_SUFFIX):
        n += 1
        target = f"{base}.{n}"
    shutil.move(source, target)
    with open(target + REASON_SUFFIX, "w", encoding="utf-8", errors="backslashreplace") as f:
        f.write(f"file: {shown(source)}\nmoved: {now():.3f} (unix time)\nreason: {reason}\n")
    return target


def write_reason_only(failed_dir: str, rel_path: str, reason: str) -> None:
    """When a file cannot be moved, still leave the user a note about it."""
    with contextlib.suppress(OSError):
        target = os.path.join(failed_dir, rel_path + REASON_SUFFIX)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(f"file: {shown(rel_path)}\nreason: {reason}\n(the file could not be moved)\n")


class SpoolDirectory:
    """One spool directory's blocking work, called by the source one method at a time.

    ``open_next`` lists the directory, picks the next file (the one the position file tracked
    first) and opens it; ``retire`` and ``set_aside`` finish a file. Directory-level trouble
    (missing, not writable) is raised as FileNotFoundError / DirectoryProblem / OSError; a
    problem with one file as decisions.FileFailure.
    """

    def __init__(
        self,
        name: str,
        settings: SpoolDirSettings,
        *,
        rng: random.Random | None = None,
        block_size: int = BLOCK_SIZE,
    ) -> None:
        s = settings
        self.name = name  # the source's, for log lines
        self.settings = s
        self.spool_dir = s.spool_dir
        self.tracker_dir = (
            s.tracker_dir if os.path.isabs(s.tracker_dir)
            else os.path.join(s.spool_dir, s.tracker_dir)
        )
        self.failed_dir = os.path.join(self.tracker_dir, FAILED_DIR)
        self.rules = CandidateRules(s.include, s.ignore, s.file_suffix)
        self.tracker = PositionTracker(self.tracker_dir)
        self.rng = rng or random.Random()
        self._block_size = block_size
        self._abs_spool = decisions.java_absolute(s.spool_dir, os.getcwd())
        self._headers = Headers(s.file_header_key, s.basename_header_key)
        self._skip: set[tuple[str, int, int]] = set()  # failed, could not be moved aside
        self._reported: dict[str, str] = {}  # skipped entries already logged: why
        self._ready = False  # spool dir probed writable, tracker dir created

    # -- choosing and opening ------------------------------------------------------------
    def open_next(self) -> FileReader | None:
        """The next file, open and tracked; None when there is nothing to read."""
        s = self.settings
        listing, skipped = scan(
            self.spool_dir, self.rules, recursive=s.recursive,
            follow_symlinks=s.follow_symlinks,
            exclude_dirs=frozenset({os.path.abspath(self.tracker_dir)}),
        )
        self._report_skipped(skipped)
        if not self._ready:
            problem = probe_writable(self.spool_dir)
            if problem is not None:
                raise DirectoryProblem(problem)
            os.makedirs(self.tracker_dir, exist_ok=True)
            self._ready = True
        markers: frozenset[str] = frozenset()
        if s.tracker_dir_policy:
            markers = completed_markers(
                self.tracker_dir, s.file_suffix, [e.rel_path for e in listing]
            )
        eligible = candidates(listing, self.rules, completed_markers=markers,
                              skip=frozenset(self._skip))
        chosen, offset = self._resume_choice(eligible)
        while True:
            if chosen is None:
                chosen = choose(eligible, s.consume_order, self.rng)
                offset = 0
            if chosen is None:
                return None
            opened = self._open(chosen, offset)
            if opened is not None:
                return opened
            eligible.remove(chosen)  # vanished since the listing: try the next one
            chosen = None

    def _report_skipped(self, skipped: list[Skipped]) -> None:
        """One WARNING per skipped entry while it stays (again if it comes back)."""
        seen = {entry.rel_path: entry.why for entry in skipped}
        for rel, why in seen.items():
            if self._reported.get(rel) != why:
                log.warning("source %s: skipping %s: %s", self.name,
                            shown(os.path.join(self.spool_dir, rel)), why)
        self._reported = seen

    def _resume_choice(self, eligible: list[Listing]) -> tuple[Listing | None, int]:
        tracked = self.tracker.load()
        if tracked is None:
            return None, 0
        ident = tracked.identity
        entry = next((e for e in eligible if e.rel_path == ident.rel_path), None)
        if entry is None:
            self.tracker.clear()  # finished or gone: nothing to resume
            return None, 0
        try:
            st = os.stat(os.path.join(self.spool_dir, entry.rel_path))
        except FileNotFoundError:
            self.tracker.clear()
            return None, 0
        verdict = decisions.resume_verdict(ident, st)
        if verdict is Resume.RESUME:
            log.info("source %s: resuming %s at byte %d", self.name, shown(entry.rel_path),
                     tracked.offset)
            return entry, tracked.offset
        self.tracker.clear()
        if verdict is Resume.MODIFIED:
            raise FileFailure(entry.rel_path,
                              decisions.modified_while_down(ident, st, tracked.offset))
        log.warning("source %s: %s is a new file under a name being read before a restart; "
                    "reading it from the start", self.name, shown(entry.rel_path))
        return entry, 0

    def _open(self, entry: Listing, offset: int) -> FileReader | None:
        try:
            reader = FileReader.open(
                self.spool_dir, entry.rel_path, offset, self.settings,
                self._headers.for_file(self._abs_spool, entry.rel_path), self._block_size,
            )
        except FileNotFoundError:
            log.warning("source %s: %s vanished before it could be opened", self.name,
                        shown(os.path.join(self.spool_dir, entry.rel_path)))
            return None
        try:
            self.tracker.begin(reader.identity, offset)
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

    # -- finishing files -----------------------------------------------------------------
    def retire(self, reader: FileReader) -> str:
        """Rename, delete or mark a fully read file; what was done. FileFailure if it
        changed while read or its name was reused; FileNotFoundError if it vanished."""
        s = self.settings
        reader.close()
        marker = None
        if s.tracker_dir_policy:
            marker = os.path.join(self.tracker_dir, reader.rel_path + s.file_suffix)
        try:
            problem = decisions.retire_problem(reader.identity, os.stat(reader.abs_path))
            if problem is not None:
                raise FileFailure(reader.rel_path, problem)
            done = retire(reader.abs_path, delete=s.delete_immediately,
                          file_suffix=s.file_suffix, marker_path=marker)
        except RetireError as exc:
            raise FileFailure(reader.rel_path, str(exc)) from exc
        except FileNotFoundError:
            self.tracker.clear()
            raise
        except OSError as exc:
            raise FileFailure(reader.rel_path, f"cannot retire: {exc}") from exc
        self.tracker.clear()
        return done

    def set_aside(self, failure: FileFailure, now: Callable[[], float]) -> str | None:
        """Move the file to ``failed/`` with a reason beside it; its new path, or None when
        it could not be moved (then it is skipped until it changes, and the error logged)."""
        self.tracker.clear()
        rel = failure.rel_path
        try:
            return move_aside(self.spool_dir, self.failed_dir, rel, failure.reason, now)
        except OSError as exc:
            log.error("source %s: problem with %s: %s; it could not be moved aside either "
                      "(%s), so it is skipped until it changes", self.name,
                      shown(os.path.join(self.spool_dir, rel)), failure.reason, exc)
            write_reason_only(self.failed_dir, rel, failure.reason)
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(self.spool_dir, rel))
                self._skip.add((rel, st.st_ino, st.st_mtime_ns))
            return None

    def close(self) -> None:
        self.tracker.close()  # keep the position file: the next start resumes from it
