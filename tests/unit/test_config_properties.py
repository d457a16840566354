"""The properties layer: Java semantics from javaproperties, plus the line of every entry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.properties import PropertiesSyntaxError, parse_properties


def _lines(text: str) -> dict[str, tuple[str, int]]:
    return {k: (p.value, p.line) for k, p in parse_properties(text).entries.items()}


def test_comments_separators_and_lines() -> None:
    text = "# comment\n! also a comment\n\na = 1\nb:2\nc 3\n   d=  4  \n"
    assert _lines(text) == {"a": ("1", 4), "b": ("2", 5), "c": ("3", 6), "d": ("4  ", 7)}


def test_continuation_lines_count_towards_the_next_entry() -> None:
    text = "list = one \\\n      two \\\n      three\nnext = x\n"
    assert _lines(text) == {"list": ("one two three", 1), "next": ("x", 4)}


def test_no_trailing_comments_and_escapes() -> None:
    text = "k = v # not a comment\nsp\\ ace = \\u00e9\\t\n\\#hash = 1\n"
    assert _lines(text) == {
        "k": ("v # not a comment", 1),
        "sp ace": ("\u00e9\t", 2),
        "#hash": ("1", 3),
    }


def test_crlf_and_lone_cr_are_line_ends_but_form_feed_is_not() -> None:
    text = "a=1\r\nb=2\rc=\f3\nd=4"
    assert _lines(text) == {"a": ("1", 1), "b": ("2", 2), "c": ("3", 3), "d": ("4", 4)}


def test_duplicates_last_wins_and_earlier_ones_are_kept_for_warnings() -> None:
    parsed = parse_properties("x = 1\ny = 2\nx = 3\n")
    assert parsed.entries["x"].value == "3" and parsed.entries["x"].line == 3
    assert [(p.key, p.line) for p in parsed.overridden] == [("x", 1)]


def test_malformed_unicode_escape_names_its_line() -> None:
    with pytest.raises(PropertiesSyntaxError) as info:
        parse_properties("a = 1\n\nb = \\u12G4\n")
    assert info.value.line == 3
    assert "malformed" in str(info.value)


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["entry", "comment", "blank", "continued"]),
            _WORD,
            _WORD,
            st.sampled_from(["\n", "\r\n"]),
        ),
        max_size=30,
    )
)
def test_every_entry_reports_the_line_it_starts_on(
    lines: list[tuple[str, str, str, str]],
) -> None:
    text, expected, line = "", {}, 1
    for index, (kind, key, value, end) in enumerate(lines):
        key = f"k{index}.{key}"
        if kind == "comment":
            text += f"# {key} = {value}{end}"
        elif kind == "blank":
            text += end
        elif kind == "continued":
            text += f"{key} = {value} \\{end}   more{end}"
            expected[key] = (f"{value} more", line)
            line += 1
        else:
            text += f"{key}={value}{end}"
            expected[key] = (value, line)
        line += 1
    assert _lines(text) == expected
