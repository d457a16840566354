"""Result writers for declarative jobs: the console (Spark's ``pprint`` blocks, one per
window), JSON lines, CSV and SQLite.

Writers are called from the engine's ``foreachRDD`` and may block: the engine runs output
operations in a worker thread (``asyncio.to_thread``), one batch at a time, never on its event
loop. A batch's outputs run *before* its checkpoint is written, so after a crash the engine
replays from the last checkpoint and may write the same slide again; every writer is therefore
either idempotent (SQLite: upsert, stale keys deleted, one transaction per slide) or
documented as at-least-once (JSON lines and CSV append: a replayed slide appears twice).

Every row is ``(window_start, window_end, key, value)``; times are epoch milliseconds (exact,
sortable, a primary-key column in SQLite); composite keys and ``top_k`` lists are written as
JSON in CSV and SQLite.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import IO, Any, NamedTuple, Protocol

from consumer.jobs.ranking import WindowTop

__all__ = ["ConsoleOutput", "CsvOutput", "JsonLinesOutput", "ResultRow", "SqliteOutput",
           "Writer", "open_writer", "pprint_blocks"]

DASHES = "-" * 43


def pprint_blocks(when: datetime, windows: Sequence[WindowTop], top: int) -> str:
    """One PySpark ``pprint`` block per window (``windows`` hold up to ``top + 1`` rows: the
    extra one only says that "..." follows). No window: one empty block, as pprint prints
    for an empty batch."""
    blocks = []
    for window in windows or [WindowTop(0, 0, (), 0)]:
        lines = [DASHES, f"Time: {when}", DASHES]
        lines.extend(str(row) for row in window.top[:top])
        if len(window.top) > top:
            lines.append("...")
        lines.append("")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


class ConsoleOutput:
    """The ``console`` output: the top ``top`` rows of EACH window a slide closes, in time
    order, in pprint format on stdout. ``muted`` while a live view owns the terminal."""

    def __init__(self, top: int, stream: IO[str] | None = None) -> None:
        self.top = top
        self.muted = False
        self._stream = stream

    def write(self, when: datetime, windows: Sequence[WindowTop]) -> None:
        if self.muted:
            return
        print(pprint_blocks(when, windows, self.top), file=self._stream or sys.stdout,
              flush=True)


class ResultRow(NamedTuple):
    window_start: int  # epoch ms, inclusive
    window_end: int  # epoch ms, exclusive (for processing-time windows: the batch time)
    key: Any
    value: Any


class Writer(Protocol):
    def write(self, rows: Sequence[ResultRow], windows: Iterable[tuple[int, int]]) -> None:
        """Write one slide: ``rows`` are the complete results of the ``windows`` listed
        (``ResultRow``s or plain tuples in the same order: writers unpack them)."""

    def close(self) -> None: ...


def json_value(value: Any) -> Any:
    """Tuples (composite keys, top_k pairs) become lists; everything else as is."""
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    return value


def text_value(value: Any) -> Any:
    """A scalar for CSV/SQLite cells: numbers and strings as is, the rest JSON-encoded."""
    if value is None or isinstance(value, str | int | float):
        return value
    return json.dumps(json_value(value), separators=(",", ":"))


def _ensure_parent(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


class _AppendFile:
    """An append-only text file, flushed and fsynced after each slide."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._fh is None:
            _ensure_parent(self.path)
            self._fh = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        return self._fh

    def _sync(self) -> None:
        assert self._fh is not None
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


_encode_str = json.encoder.encode_basestring  # json.dumps(str, ensure_ascii=False), in C
# json.dumps(value, ensure_ascii=False) without its per-call set-up: the C encoder it builds,
# built once (no circular-reference check: results hold no cycles). Tuples are lists for it.
_encode_any = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, _encode_str, None, ": ", ", ", False, False, True,
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]


def json_text(value: Any) -> str:
    """``json.dumps(json_value(value), ensure_ascii=False)``, without its per-call set-up
    for the strings, integers and lists of them nearly every row holds (a window writes a row
    per key; top_k values are lists of pairs: 1.8 µs a value instead of 5)."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if (kind is list or kind is tuple) and _encode_any is not None:
        return "".join(_encode_any(value, 0))
    return json.dumps(json_value(value), ensure_ascii=False)


class JsonLinesOutput(_AppendFile):
    """One JSON object per row: ``{"window_start", "window_end", "key", "value"}``, exactly
    as ``json.dumps`` writes it."""

    def write(self, rows: Sequence[ResultRow], windows: Iterable[tuple[int, int]]) -> None:
        if not rows:
            return
        fh = self._open()
        text, enc, num = json_text, _encode_str, int.__repr__
        fh.writelines(f'{{"window_start": {num(s)}, "window_end": {num(e)}, '
                      f'"key": {enc(k) if type(k) is str else text(k)}, '
                      f'"value": {num(v) if type(v) is int else text(v)}}}\n'
                      for s, e, k, v in rows)
        self._sync()


    def write_windows(self, windows: Sequence[tuple[int, int, list[Any], list[Any]]]) -> None:
        """The same lines for whole event-time windows ``(start, end, keys, values)``: the
        part before the key is built once per window."""
        if not any(keys for _, _, keys, _ in windows):
            return
        fh = self._open()
        text, enc, num = json_text, _encode_str, int.__repr__
        for start, end, keys, values in windows:
            head = f'{{"window_start": {num(start)}, "window_end": {num(end)}, "key": '
            fh.writelines(f'{head}{enc(k) if type(k) is str else text(k)}, '
                          f'"value": {num(v) if type(v) is int else text(v)}}}\n'
                          for k, v in zip(keys, values, strict=True))
        self._sync()


class CsvOutput(_AppendFile):
    """``window_start,window_end,key,value`` with a header line when the file is new."""

    HEADER = ("window_start", "window_end", "key", "value")

    def write(self, rows: Sequence[ResultRow], windows: Iterable[tuple[int, int]]) -> None:
        if not rows:
            return
        fh = self._open()
        writer = csv.writer(fh)
        if fh.tell() == 0:
            writer.writerow(self.HEADER)
        writer.writerows((start, end, text_value(k), text_value(v)) for start, end, k, v in rows)
        self._sync()


class SqliteOutput:
    """The embedded default store: one table per job, upserted per slide.

    WAL journal mode lets readers query while the job writes (a reader sees the last
    committed slide, never half of one); ``synchronous=FULL`` makes a committed slide survive
    a power cut, which matters because the checkpoint that follows assumes it did. Writing the
    same slide again (a replay after restart) leaves the same rows: values are upserted and
    keys no longer in the window's result are deleted, in the same transaction.
    """

    def __init__(self, path: str, table: str) -> None:
        self.path = path
        self.table = table
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            _ensure_parent(self.path)
            # autocommit mode; transactions are explicit. Batches run one at a time but
            # not always on the same worker thread, hence check_same_thread=False.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{self.table}" ('
                "window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, "
                "key TEXT NOT NULL, value, PRIMARY KEY (window_start, window_end, key))")
            self._conn = conn
        return self._conn

    def write(self, rows: Sequence[ResultRow], windows: Iterable[tuple[int, int]]) -> None:
        conn = self._connect()
        t = self.table
        by_window: dict[tuple[int, int], list[str]] = {w: [] for w in windows}
        params = []
        for start, end, k, v in rows:
            key = str(text_value(k))
            by_window.setdefault((start, end), []).append(key)
            params.append((start, end, key, text_value(v)))
        if not by_window:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                f'INSERT INTO "{t}" (window_start, window_end, key, value) VALUES (?, ?, ?, ?) '
                "ON CONFLICT (window_start, window_end, key) DO UPDATE SET value = excluded.value",
                params)
            conn.executemany(
                f'DELETE FROM "{t}" WHERE window_start = ? AND window_end = ? '
                "AND key NOT IN (SELECT value FROM json_each(?))",
                [(s, e, json.dumps(keys)) for (s, e), keys in by_window.items()])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def open_writer(kind: str, path: str, table: str | None = None) -> Writer:
    """A writer for a validated output spec (files are opened on first write)."""
    if kind == "jsonl":
        return JsonLinesOutput(path)
    if kind == "csv":
        return CsvOutput(path)
    if kind == "sqlite":
        return SqliteOutput(path, table or "results")
    raise ValueError(f"no file writer for output type {kind!r}")
