"""Taildir's pure parts: Flume's position file, file groups, line reading, rotation plan."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources.taildir_lines import LineBuffer
from agent.sources.taildir_match import file_groups
from agent.sources.taildir_plan import Observed, TailTable
from agent.sources.taildir_position import (
    Position,
    PositionFileError,
    format_positions,
    parse_positions,
)

# --- position file ---------------------------------------------------------------------------


def test_reads_a_position_file_written_by_flume() -> None:
    text = ('[{"inode":2496272,"pos":12,"file":"/var/log/test1/example.log"},'
            '{"inode":2496275,"pos":0,"file":"/var/log/test2/log1.log"}]')
    assert parse_positions(text) == [Position(2496272, 12, "/var/log/test1/example.log"),
                                     Position(2496275, 0, "/var/log/test2/log1.log")]
    assert parse_positions(format_positions(parse_positions(text))) == parse_positions(text)
    assert format_positions([Position(1, 2, "/a")]) == '[{"inode":1,"pos":2,"file":"/a"}]'


def test_empty_position_file_is_no_positions() -> None:
    assert parse_positions("") == [] and parse_positions("[]") == []


@pytest.mark.parametrize("text", [
    "{", "{}", "[1]", '[{"inode":1,"pos":2}]', '[{"inode":1,"pos":-2,"file":"/a"}]',
    '[{"inode":"1","pos":2,"file":"/a"}]', '[{"inode":1,"pos":2,"file":3}]',
])
def test_broken_position_files_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(PositionFileError):
        parse_positions(text)


@given(st.lists(st.builds(Position, st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
                          st.text())))
def test_position_round_trip(positions: list[Position]) -> None:
    assert parse_positions(format_positions(positions)) == positions


# --- file groups -----------------------------------------------------------------------------


def test_file_groups_with_regex_names_and_headers() -> None:
    groups = file_groups(["f1", "f2"], {"f1": "/var/log/test1/example.log",
                                        "f2": "/var/log/test2/.*log.*"},
                         {"f1.headerKey1": "value1", "f2.headerKey1": "value2",
                          "f2.headerKey2": "value2-2"})
    assert [(g.name, g.directory) for g in groups] == [("f1", "/var/log/test1"),
                                                       ("f2", "/var/log/test2")]
    assert groups[1].headers == {"headerKey1": "value2", "headerKey2": "value2-2"}
    assert groups[0].matches("example.log") and not groups[0].matches("example.log.1")
    assert groups[1].matches("app.log.1") and not groups[1].matches("app.txt")


def test_file_group_problems_are_listed_together() -> None:
    with pytest.raises(ValueError) as info:
        file_groups(["a", "b", "c", "d"], {"b": "relative/x.log", "c": "/tmp/[", "d": "/tmp/"},
                    {"zz.k": "v"})
    text = str(info.value)
    for part in ("'filegroups.a'", "must be absolute", "bad regular expression",
                 "no file name pattern", "headers.zz.k"):
        assert part in text


# --- lines -------------------------------------------------------------------------------------


def test_lines_with_offsets_cr_and_held_back_partial_line() -> None:
    buf = LineBuffer(100)
    buf.append(b"one\r\ntwo\n\nthr")
    assert buf.lines(10) == [(100, b"one"), (105, b"two"), (109, b"")]
    assert (buf.start, bytes(buf.data)) == (110, b"thr")
    buf.append(b"ee\r")
    assert buf.lines(10) == []
    assert buf.lines(10, final=True) == [(110, b"three\r")]
    assert buf.end == 116 and buf.start == 116


def test_lines_limit_leaves_the_rest_buffered() -> None:
    buf = LineBuffer()
    buf.append(b"a\nb\nc\n")
    assert buf.lines(2) == [(0, b"a"), (2, b"b")]
    assert buf.lines(2) == [(4, b"c")]


@given(st.lists(st.binary(max_size=12).filter(lambda b: b"\n" not in b), max_size=15),
       st.integers(1, 5), st.integers(1, 9))
def test_lines_in_any_chunking_and_batching(lines: list[bytes], batch: int, step: int) -> None:
    data = b"".join(line + b"\n" for line in lines)
    buf = LineBuffer()
    got: list[tuple[int, bytes]] = []
    for i in range(0, len(data), step):
        buf.append(data[i:i + step])
        while out := buf.lines(batch):
            got += out
    expected, offset = [], 0
    for line in lines:
        expected.append((offset, line[:-1] if line.endswith(b"\r") else line))
        offset += len(line) + 1
    assert got == expected


# --- rotation plan ---------------------------------------------------------------------------


def obs(path: str, inode: int, size: int, group: int = 0, mtime: int = 0) -> Observed:
    return Observed(path, group, inode, size, mtime)


def test_restore_resumes_same_file_and_renamed_file() -> None:
    table = TailTable()
    positions = [Position(1, 10, "/d/app.log"), Position(2, 5, "/d/old.log"),
                 Position(3, 7, "/d/gone.log")]
    scan = [obs("/d/app.log", 1, 50), obs("/d/old.log.1", 2, 20), obs("/d/new.log", 4, 9)]
    left = table.restore(positions, scan, skip_to_end=False, now=0)
    assert {i: t.pos for i, t in table.files.items()} == {1: 10, 2: 5, 4: 0}
    assert left == [Position(3, 7, "/d/gone.log")]


def test_restore_does_not_trust_a_renamed_inode_shorter_than_its_position() -> None:
    table = TailTable()
    # the inode now names a file shorter than the recorded position under another name:
    # another file that reuses the inode, read from 0
    table.restore([Position(5, 100, "/d/x.log")], [obs("/d/y.log", 5, 10)], False, 0)
    assert table.files[5].pos == 0


def test_restore_truncated_and_skip_to_end() -> None:
    table = TailTable()
    table.restore([Position(1, 100, "/d/a.log")], [obs("/d/a.log", 1, 10),
                                                   obs("/d/b.log", 2, 30)], True, 0)
    assert table.files[1].pos == 0  # shorter than the position: truncated while away
    assert table.files[2].pos == 30  # skipToEnd applies to files without a position


def test_observe_rename_within_the_pattern_keeps_the_position() -> None:
    table = TailTable()
    table.restore([], [obs("/d/app.log", 1, 10)], False, 0)
    table.commit(1, 10, 1)
    gone = table.observe([obs("/d/app.log.1", 1, 12), obs("/d/app.log", 2, 3)], 2)
    assert gone == []
    assert (table.files[1].path, table.files[1].pos) == ("/d/app.log.1", 10)
    assert table.files[2].pos == 0


def test_observe_rename_out_of_the_pattern_retires_the_file() -> None:
    table = TailTable()
    table.restore([], [obs("/d/app.log", 1, 10)], False, 0)
    assert table.observe([obs("/d/app.log", 2, 0)], 1) == [1]
    assert table.files[1].retired
    assert table.order() == [1, 2]  # retired files are finished first
    assert table.observe([obs("/d/app.log", 2, 0)], 2) == []  # reported once


def test_truncation_resets_the_position() -> None:
    table = TailTable()
    table.restore([], [obs("/d/a.log", 1, 10)], False, 0)
    table.commit(1, 10, 0)
    table.observe([obs("/d/a.log", 1, 4)], 1)
    assert table.files[1].pos == 0


def test_idle_and_positions_in_order() -> None:
    table = TailTable()
    table.restore([], [obs("/d/b.log", 2, 0, mtime=5), obs("/d/a.log", 1, 0, mtime=1)], False,
                  0)
    assert [p.file for p in table.positions()] == ["/d/a.log", "/d/b.log"]  # oldest first
    assert not table.idle(1, 10, 120) and table.idle(1, 120, 120)
    table.saw_size(1, 5, 100)
    assert not table.idle(1, 120, 120)
