"""Blocking directory work for the spooldir source: listing, retiring, moving files aside.

Every function here is synchronous and meant to run through ``asyncio.to_thread``.

The completeness rule the source relies on (the same as Flume's): a file must be complete
when its name becomes visible to the source. Write it elsewhere (or under a hidden ``.name``,
or a name matching ``ignorePattern`` such as ``*.tmp``) and rename or move it in when done.
A file that still changes after reading began is detected at the end and moved aside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable

from agent.sources.spooldir.selection import CandidateRules, Listing

FAILED_DIR = "failed"
REASON_SUFFIX = ".reason"


def list_files(
    spool_dir: str,
    rules: CandidateRules,
    *,
    recursive: bool,
    exclude_dirs: frozenset[str] = frozenset(),
) -> list[Listing]:
    """Regular files under ``spool_dir`` whose names pass ``rules`` (hidden ones never).

    Raises FileNotFoundError when ``spool_dir`` itself is missing. Files that vanish while
    listing are skipped. ``exclude_dirs`` holds absolute directories never entered
    (the tracker directory when it lives inside the spool directory).
    """
    out: list[Listing] = []
    stack = [("", spool_dir)]
    first = True
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            entries = list(os.scandir(abs_dir))
        except FileNotFoundError:
            if first:
                raise
            continue
        except NotADirectoryError:
            if first:
                raise FileNotFoundError(f"{spool_dir} is not a directory") from None
            continue
        first = False
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir(follow_symlinks=True):
                    if (
                        recursive
                        and rules.enters_directory(name)
                        and os.path.abspath(entry.path) not in exclude_dirs
                    ):
                        stack.append((rel_dir + name + "/", entry.path))
                    continue
                if not rules.accepts_name(name) or not entry.is_file(follow_symlinks=True):
                    continue
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                continue
            out.append(Listing(rel_dir + name, st.st_mtime_ns, st.st_size, st.st_ino))
    return out


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
    with open(target + REASON_SUFFIX, "w", encoding="utf-8") as f:
        f.write(f"file: {source}\nmoved: {now():.3f} (unix time)\nreason: {reason}\n")
    return target


def write_reason_only(failed_dir: str, rel_path: str, reason: str) -> None:
    """When a file cannot be moved, still leave the user a note about it."""
    with contextlib.suppress(OSError):
        target = os.path.join(failed_dir, rel_path + REASON_SUFFIX)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(f"file: {rel_path}\nreason: {reason}\n(the file could not be moved)\n")
