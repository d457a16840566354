"""Result writers: SQLite upsert per slide (idempotent, WAL readers), JSON lines, CSV."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.jobs.outputs import (
    CsvOutput,
    JsonLinesOutput,
    ResultRow,
    SqliteOutput,
    json_value,
    open_writer,
)

W1 = (0, 300_000)
W2 = (1_000, 301_000)


def rows(window, **counts) -> list[ResultRow]:
    return [ResultRow(window[0], window[1], k, v) for k, v in counts.items()]


def table(path, name="hits") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT window_start, window_end, key, value FROM {name} "
                            "ORDER BY window_end, key").fetchall()


def test_sqlite_upserts_per_slide_and_replaying_a_slide_is_idempotent(tmp_path):
    db = tmp_path / "sub" / "out.db"
    out = SqliteOutput(str(db), "hits")
    out.write(rows(W1, a=3, b=1), [W1])
    out.write(rows(W2, a=2, c=7), [W2])
    first = table(db)
    assert first == [(0, 300_000, "a", 3), (0, 300_000, "b", 1),
                     (1_000, 301_000, "a", 2), (1_000, 301_000, "c", 7)]
    out.close()
    again = SqliteOutput(str(db), "hits")  # a restart replays the last slide
    again.write(rows(W2, a=2, c=7), [W2])
    assert table(db) == first
    again.close()


def test_sqlite_rewrite_updates_values_and_deletes_keys_gone_from_the_window(tmp_path):
    db = tmp_path / "out.db"
    out = SqliteOutput(str(db), "hits")
    out.write(rows(W1, a=3, b=1), [W1])
    out.write(rows(W1, a=4), [W1])
    assert table(db) == [(0, 300_000, "a", 4)]
    out.write([], [W1])  # the window emptied completely
    assert table(db) == []
    out.close()


def test_sqlite_keys_and_values_that_are_not_scalars_are_json(tmp_path):
    db = tmp_path / "out.db"
    out = SqliteOutput(str(db), "t")
    out.write([ResultRow(0, 10, ("GET", "/a"), [("x", 2), ("y", 1)]),
               ResultRow(0, 10, 404, 1.5)], [])
    assert table(db, "t") == [(0, 10, "404", 1.5),
                              (0, 10, '["GET","/a"]', '[["x",2],["y",1]]')]
    out.close()


def test_sqlite_uses_wal_so_a_reader_keeps_a_consistent_snapshot(tmp_path):
    db = tmp_path / "out.db"
    out = SqliteOutput(str(db), "hits")
    out.write(rows(W1, a=1), [W1])
    reader = sqlite3.connect(db, isolation_level=None)
    assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM hits").fetchone() == (1,)
    done = threading.Event()

    def write() -> None:  # must not block behind the open read transaction
        out.write(rows(W2, a=5, b=6), [W2])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert done.wait(5)
    assert reader.execute("SELECT count(*) FROM hits").fetchone() == (1,)  # snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM hits").fetchone() == (3,)
    reader.close()
    writer.join()
    out.close()


def test_sqlite_failed_slide_is_rolled_back_whole(tmp_path):
    db = tmp_path / "out.db"
    out = SqliteOutput(str(db), "hits")
    out.write(rows(W1, a=1), [W1])
    bad = [ResultRow(0, 300_000, "b", 2), ResultRow(0, 300_000, "c", 2**70)]
    with pytest.raises(OverflowError):
        out.write(bad, [W1])
    assert table(db) == [(0, 300_000, "a", 1)]
    out.close()


def test_jsonl_appends_one_object_per_row(tmp_path):
    path = tmp_path / "out.jsonl"
    out = JsonLinesOutput(str(path))
    out.write([ResultRow(0, 1000, ("a", 1), [("x", 2)]), ResultRow(0, 1000, "é", 1.5)], [])
    out.write([], [])  # nothing to write: nothing written
    out.close()
    out = JsonLinesOutput(str(path))
    out.write(rows(W1, z=1), [W1])
    out.close()
    got = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert got == [{"window_start": 0, "window_end": 1000, "key": ["a", 1],
                    "value": [["x", 2]]},
                   {"window_start": 0, "window_end": 1000, "key": "é", "value": 1.5},
                   {"window_start": 0, "window_end": 300000, "key": "z", "value": 1}]


scalars = st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans())
values = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.lists(inner),
                      max_leaves=5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**45), st.integers(0, 2**45), values, values),
                max_size=5))
def test_jsonl_text_is_exactly_what_json_dumps_writes(tmp_path_factory, rows_):
    path = tmp_path_factory.mktemp("jsonl") / "out.jsonl"
    out = JsonLinesOutput(str(path))
    out.write([ResultRow(*r) for r in rows_], [])
    out.close()
    want = "".join(json.dumps({"window_start": s, "window_end": e, "key": json_value(k),
                               "value": json_value(v)}, ensure_ascii=False) + "\n"
                   for s, e, k, v in rows_)
    assert (path.read_text(encoding="utf-8") if rows_ else "") == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**45), st.lists(st.tuples(values, values),
                                                        max_size=4)), max_size=4))
def test_jsonl_whole_windows_are_written_as_their_rows_are(tmp_path_factory, windows):
    path = tmp_path_factory.mktemp("jsonl")
    by_rows, by_windows = JsonLinesOutput(str(path / "a")), JsonLinesOutput(str(path / "b"))
    by_rows.write([ResultRow(s, s + 300, k, v) for s, kvs in windows for k, v in kvs], [])
    by_windows.write_windows([(s, s + 300, [k for k, _ in kvs], [v for _, v in kvs])
                              for s, kvs in windows])
    by_rows.close()
    by_windows.close()
    read = [(path / n).read_text(encoding="utf-8") if (path / n).exists() else ""
            for n in "ab"]
    assert read[0] == read[1]


def test_csv_writes_header_once_and_quotes(tmp_path):
    path = tmp_path / "out.csv"
    out = CsvOutput(str(path))
    out.write(rows(W1, **{"a,b": 1}), [W1])
    out.close()
    again = open_writer("csv", str(path))
    again.write([ResultRow(0, 5, ("k", 2), 3)], [])
    again.close()
    with open(path, newline="") as fh:
        got = list(csv.reader(fh))
    assert got == [["window_start", "window_end", "key", "value"],
                   ["0", "300000", "a,b", "1"], ["0", "5", '["k",2]', "3"]]


def test_open_writer_rejects_console():
    with pytest.raises(ValueError, match="no file writer"):
        open_writer("console", "x")
