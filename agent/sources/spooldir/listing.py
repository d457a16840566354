"""Looking at the spool directory: one full scan, or one path at a time (blocking).

``Lister.scan`` walks the directory once; ``Lister.examine_path`` looks at a single path the
watcher reported. Both turn an entry into a readable ``Listing``, a ``Skipped`` entry with the
reason it cannot be read (FIFO, symlink loop, dangling link ...), or nothing (a name the rules
refuse, a directory, a file that is gone). ``listings`` and ``stats`` count the directory
listings and stat calls made, so tests can check that the cost per file stays flat.
"""

from __future__ import annotations

import os
import stat

from agent.sources.spooldir import decisions
from agent.sources.spooldir.selection import CandidateRules, Listing, Skipped


class Lister:
    def __init__(
        self,
        spool_dir: str,
        rules: CandidateRules,
        *,
        recursive: bool,
        follow_symlinks: bool,
        exclude_dirs: frozenset[str] = frozenset(),
    ) -> None:
        """``exclude_dirs``: absolute directories never entered (the tracker directory)."""
        self.spool_dir = spool_dir
        self.rules = rules
        self.recursive = recursive
        self.follow_symlinks = follow_symlinks
        self.exclude_dirs = exclude_dirs
        self.listings = 0
        self.stats = 0

    def scan(self) -> tuple[list[Listing], list[Skipped]]:
        """Every readable file whose name passes the rules, and every entry that passes them
        but cannot be read. FileNotFoundError when the spool directory itself is missing; a
        problem below it only makes that entry Skipped."""
        files: list[Listing] = []
        skipped: list[Skipped] = []
        stack = [("", self.spool_dir)]
        first = True
        while stack:
            rel_dir, abs_dir = stack.pop()
            self.listings += 1
            try:
                with os.scandir(abs_dir) as it:
                    entries = list(it)
            except OSError as exc:
                if first:
                    if isinstance(exc, NotADirectoryError):
                        raise FileNotFoundError(f"{self.spool_dir} is not a directory") from None
                    raise
                if not isinstance(exc, FileNotFoundError):
                    skipped.append(Skipped(rel_dir.rstrip("/"), decisions.unlistable(exc)))
                continue
            first = False
            for entry in entries:
                name = entry.name
                rel = rel_dir + name
                try:
                    if entry.is_dir(follow_symlinks=False):  # from the listing: no stat call
                        if (
                            self.recursive
                            and self.rules.enters_directory(name)
                            and os.path.abspath(entry.path) not in self.exclude_dirs
                        ):
                            stack.append((rel + "/", entry.path))
                        continue
                    if not self.rules.accepts_name(name):
                        why = decisions.name_not_matched(name, self.rules)
                        if why is not None:
                            skipped.append(Skipped(rel, why))
                        continue
                    self.stats += 1
                    found = self._examine(entry.path, rel, entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    found = Skipped(rel, decisions.unreadable_entry(exc))
                if isinstance(found, Listing):
                    files.append(found)
                elif found is not None:
                    skipped.append(found)
        return files, skipped

    def examine_path(self, rel_path: str) -> Listing | Skipped | None:
        """What one path (relative to the spool directory) is now; None when it is not a
        candidate at all: gone, a directory, in a directory not searched, a refused name."""
        *dirs, name = rel_path.split("/")
        if dirs and not self.recursive:
            return None
        if not all(self.rules.enters_directory(d) for d in dirs):
            return None
        if not self.rules.accepts_name(name):
            why = decisions.name_not_matched(name, self.rules)
            return Skipped(rel_path, why) if why is not None else None
        abs_path = os.path.join(self.spool_dir, rel_path)
        self.stats += 1
        try:
            return self._examine(abs_path, rel_path, os.lstat(abs_path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            return Skipped(rel_path, decisions.unreadable_entry(exc))

    def _examine(
        self, abs_path: str, rel_path: str, lst: os.stat_result
    ) -> Listing | Skipped | None:
        mode = lst.st_mode
        if stat.S_ISREG(mode):
            return Listing(rel_path, lst.st_mtime_ns, lst.st_size, lst.st_ino)
        if stat.S_ISDIR(mode):
            return None
        if not stat.S_ISLNK(mode):
            return Skipped(rel_path, decisions.not_a_regular_file(mode))
        if not self.follow_symlinks:
            return Skipped(rel_path, decisions.SYMLINK_NOT_FOLLOWED)
        self.stats += 1
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
        if stat.S_ISREG(st.st_mode):
            return Listing(rel_path, st.st_mtime_ns, st.st_size, st.st_ino, link=True)
        if stat.S_ISDIR(st.st_mode):
            return Skipped(rel_path, decisions.LINKED_DIRECTORY) if self.recursive else None
        return Skipped(rel_path, decisions.not_a_regular_file(st.st_mode, linked=True))
