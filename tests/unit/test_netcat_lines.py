"""Netcat line splitting: Flume's max-line-length in chars (newline included), UTF-8 bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources.netcat_lines import NetcatLines, datagram_lines, too_long_reply


def test_lines_split_on_newline_keep_cr_and_carry_partial() -> None:
    lines = NetcatLines(512)
    assert lines.feed(b"one\r\ntwo\nthr") == [b"one\r", b"two"]
    assert lines.feed(b"ee\n") == [b"three"]
    assert lines.finish() == []


def test_line_fits_when_chars_plus_newline_fit() -> None:
    lines = NetcatLines(5)
    assert lines.feed(b"abcd\n") == [b"abcd"]
    assert not lines.overflow
    assert lines.feed(b"ok\nabcde\nlater\n") == [b"ok"]
    assert lines.overflow
    assert lines.feed(b"more\n") == []  # the connection is over


def test_partial_line_that_cannot_fit_overflows_before_its_newline() -> None:
    lines = NetcatLines(5)
    assert lines.feed(b"abcdef") == []
    assert lines.overflow


def test_chars_not_bytes_are_counted_and_bodies_are_utf8() -> None:
    lines = NetcatLines(4, "latin-1")
    assert lines.feed("café\n".encode("latin-1")) == []  # 4 chars + newline > 4
    lines = NetcatLines(5, "latin-1")
    assert lines.feed("café\n".encode("latin-1")) == ["café".encode()]
    lines = NetcatLines(5)
    assert lines.feed(b"caf" + "é".encode()[:1]) == []  # split multi-byte character
    assert lines.feed("é".encode()[1:] + b"\n") == ["café".encode()]


def test_undecodable_input_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        NetcatLines(512).feed(b"bad \xff\n")


def test_finish_delivers_a_last_unterminated_line() -> None:
    lines = NetcatLines(512)
    lines.feed(b"a\nlast")
    assert lines.finish() == [b"last"]


def test_too_long_reply_text() -> None:
    assert too_long_reply(512) == (b"FAILED: Event exceeds the maximum length (512 chars, "
                                   b"including newline)\n")


def test_datagram_lines() -> None:
    assert datagram_lines(b"a\nb\n") == [b"a", b"b"]
    assert datagram_lines(b"a") == [b"a"]
    assert datagram_lines(b"") == [b""]
    assert datagram_lines(b"\n") == [b""]


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n",
                                                blacklist_categories=("Cs",)), max_size=20)),
       st.data())
def test_same_lines_whole_or_byte_by_byte(texts: list[str], data: st.DataObject) -> None:
    stream = "".join(t + "\n" for t in texts).encode()
    whole = NetcatLines(64)
    expected = whole.feed(stream)
    step = data.draw(st.integers(1, 7))
    pieces = NetcatLines(64)
    got: list[bytes] = []
    for i in range(0, len(stream), step):
        got += pieces.feed(stream[i:i + step])
    assert got == expected
    assert pieces.overflow == whole.overflow
    if not whole.overflow:
        assert got == [t.encode() for t in texts]
