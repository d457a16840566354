"""The pure LINE and BLOB deserializers: Flume's splitting rules, byte marks, any chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.spooldir.deserializers import BlobDeserializer, DecodeFailure, LineDeserializer


def drain(des: LineDeserializer | BlobDeserializer, data: bytes, chunk: int = 0):
    """Feed ``data`` in chunks (0: whole), take one body at a time; bodies and marks."""
    bodies: list[bytes] = []
    marks: list[int] = []
    step = chunk or max(1, len(data))

    def take_all() -> None:
        while des.ready():
            bodies.extend(des.take(1))
            marks.append(des.mark)

    for i in range(0, len(data), step):
        des.feed(data[i : i + step])
        take_all()
    des.end_input()
    take_all()
    return bodies, marks


def java_lines(text: str, max_len: int) -> list[str]:
    """Reference: Flume's LineDeserializer.readLine loop over UTF-16 code units."""
    units = text.encode("utf-16-le", "surrogatepass")
    chars = [units[i : i + 2].decode("utf-16-le", "surrogatepass") for i in range(0, len(units), 2)]
    out: list[str] = []
    i = 0
    while True:
        sb, read = [], 0
        while i < len(chars):
            c = chars[i]
            i += 1
            read += 1
            if c == "\n":
                break
            sb.append(c)
            if read >= max_len:
                break
        if read == 0:
            return out
        joined = "".join(sb).encode("utf-16-le", "surrogatepass")  # re-pair surrogates
        out.append(joined.decode("utf-16-le", "surrogatepass"))


def lines(data: bytes, chunk: int = 0, **kw) -> list[bytes]:
    return drain(LineDeserializer(**kw), data, chunk)[0]


@pytest.mark.parametrize("chunk", [0, 1, 2, 7])
def test_splits_on_newline_only_and_keeps_carriage_return(chunk: int) -> None:
    assert lines(b"a\r\nb\n\nccc", chunk) == [b"a\r", b"b", b"", b"ccc"]


def test_marks_are_byte_offsets_after_each_event() -> None:
    assert drain(LineDeserializer(), b"a\r\nb\n\nccc")[1] == [3, 5, 6, 9]


def test_final_line_without_newline_is_an_event_but_no_trailing_empty_event() -> None:
    assert lines(b"x\ny") == [b"x", b"y"]
    assert lines(b"x\ny\n") == [b"x", b"y"]
    assert lines(b"") == []
    assert lines(b"\n") == [b""]


@pytest.mark.parametrize("chunk", [0, 1, 3])
def test_long_line_is_cut_and_exact_length_line_gets_an_extra_empty_event(chunk: int) -> None:
    got = lines(b"abc\nabcd\nabcdef\nab", chunk, max_line_length=3)
    assert got == [b"abc", b"", b"abc", b"d", b"abc", b"def", b"", b"ab"]


def test_exact_length_line_at_end_of_file_has_no_extra_event() -> None:
    assert lines(b"abc", max_line_length=3) == [b"abc"]


def test_max_line_length_counts_chars_not_bytes() -> None:
    assert lines("ééé\n".encode(), max_line_length=4) == ["ééé".encode()]
    assert lines("éééé\n".encode(), max_line_length=2) == ["éé".encode()] * 2 + [b""]


def test_surrogate_pair_cut_in_two_becomes_question_marks_like_java() -> None:
    des = LineDeserializer(max_line_length=2)
    bodies, marks = drain(des, "x😀y\n".encode())
    assert bodies == [b"x?", b"?y", b""]
    assert marks == [5, 6, 7]


def test_input_charset_is_transcoded_to_output_charset() -> None:
    assert lines(b"caf\xe9\n", input_charset="ISO-8859-1") == ["café".encode()]
    assert lines("café\n".encode(), output_charset="ISO-8859-1") == [b"caf\xe9"]
    assert lines("日本\n".encode(), output_charset="US-ASCII") == [b"??"]


def test_decode_error_policy_replace_and_ignore() -> None:
    assert lines(b"a\xff\nb\n", errors="replace") == ["a\ufffd".encode(), b"b"]
    assert lines(b"a\xff\nb\n", errors="ignore") == [b"a", b"b"]
    assert drain(LineDeserializer(errors="ignore"), b"a\xff\nb\n")[1] == [3, 5]


def test_decode_error_policy_fail_delivers_lines_before_then_raises_with_offset() -> None:
    des = LineDeserializer()
    des.feed(b"ok\nfine\nba\xffd\nnever\n")
    des.end_input()
    assert des.take(10) == [b"ok", b"fine"]
    assert des.mark == 8
    with pytest.raises(DecodeFailure) as info:
        des.take(10)
    assert info.value.offset == 10
    assert "offset 10" in str(info.value)


def test_decode_failure_in_unterminated_last_line() -> None:
    des = LineDeserializer()
    des.feed(b"ok\n\xff")
    des.end_input()
    assert des.take(5) == [b"ok"]
    with pytest.raises(DecodeFailure):
        des.take(5)


def test_resume_from_a_mark_yields_exactly_the_rest() -> None:
    data = b"one\ntwo\n\nthree-is-long\nfour"
    bodies, marks = drain(LineDeserializer(max_line_length=5), data)
    for i, mark in enumerate(marks):
        rest, _ = drain(LineDeserializer(max_line_length=5, start=mark), data[mark:])
        assert rest == bodies[i + 1 :]


def test_take_respects_n_and_ready_counts() -> None:
    des = LineDeserializer()
    des.feed(b"a\nb\nc\npartial")
    assert des.ready() == 3
    assert des.take(2) == [b"a", b"b"]
    assert des.mark == 4
    assert not des.exhausted
    des.end_input()
    assert des.take(5) == [b"c", b"partial"]
    assert des.exhausted


def test_huge_unterminated_line_is_cut_without_buffering_it_whole() -> None:
    des = LineDeserializer(max_line_length=1000)
    block = b"x" * (1 << 20)
    des.feed(block)
    assert des.ready() >= 1000  # pieces emitted before any newline arrives
    des.feed(b"\n")
    des.end_input()
    got = des.take(10_000)
    assert b"".join(got) == block
    assert all(len(b) == 1000 for b in got[:-1])
    assert des.mark == len(block) + 1


text_strategy = st.text(
    alphabet=st.sampled_from(["a", "b", "\n", "\r", "é", "日", "😀", " "]), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(text=text_strategy, max_len=st.integers(1, 6), chunk=st.integers(0, 9))
def test_matches_the_java_reference_for_any_text_and_chunking(
    text: str, max_len: int, chunk: int
) -> None:
    expected = [s.encode("utf-8", "replace") for s in java_lines(text, max_len)]
    assert lines(text.encode(), chunk, max_line_length=max_len) == expected


@settings(max_examples=100, deadline=None)
@given(text=text_strategy, chunk=st.integers(1, 9))
def test_marks_sum_to_the_input_and_resume_is_exact(text: str, chunk: int) -> None:
    data = text.encode()
    bodies, marks = drain(LineDeserializer(max_line_length=4), data, chunk)
    assert marks == sorted(marks)
    if bodies:
        assert marks[-1] == len(data)
    if "😀" not in text:  # a resume inside a cut surrogate pair is approximate by design
        for i, mark in enumerate(marks):
            assert lines(data[mark:], max_line_length=4) == bodies[i + 1 :]


def test_blob_whole_file_is_one_event_and_large_files_are_split() -> None:
    assert drain(BlobDeserializer(max_blob_length=100), b"a\nb\n", 1)[0] == [b"a\nb\n"]
    bodies, marks = drain(BlobDeserializer(max_blob_length=4), b"0123456789", 3)
    assert bodies == [b"0123", b"4567", b"89"]
    assert marks == [4, 8, 10]
    assert drain(BlobDeserializer(), b"")[0] == []


def test_the_first_cut_line_is_remembered_for_one_warning() -> None:
    short = LineDeserializer(max_line_length=4)
    short.feed(b"abc\nabcdefghij\nxyzxyzxyz\n")
    short.end_input()
    assert short.take(100)[:3] == [b"abc", b"abcd", b"efgh"]
    assert short.first_cut == 4  # where the first over-long line starts
    huge = LineDeserializer(max_line_length=4, start=10)
    huge.feed(b"ok\n" + b"z" * (2 << 20))
    huge.feed(b"z")  # unterminated: cut while it streams in
    assert huge.first_cut == 13
    plain = LineDeserializer()
    plain.feed(b"short\nlines\n")
    assert plain.first_cut is None and BlobDeserializer().first_cut is None
