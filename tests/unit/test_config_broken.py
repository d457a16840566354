"""Table of broken configuration files: each must yield exactly these issue codes and lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import IssueCode, Severity, load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
C = IssueCode

# file -> every expected (code, line, severity) in report order (file line order)
CASES: dict[str, list[tuple[IssueCode, int, str]]] = {
    "missing-type.conf": [(C.MISSING_TYPE, 5, "error"), (C.MISSING_TYPE, 7, "error")],
    "unknown-type.conf": [
        (C.UNKNOWN_TYPE, 4, "error"),
        (C.UNKNOWN_TYPE, 6, "error"),
        (C.UNKNOWN_TYPE, 7, "error"),
    ],
    "missing-required.conf": [
        (C.MISSING_REQUIRED, 4, "error"),
        (C.MISSING_REQUIRED, 7, "error"),
        (C.MISSING_REQUIRED, 10, "error"),
    ],
    "dangling-channel.conf": [(C.DANGLING_CHANNEL, 5, "error"), (C.DANGLING_CHANNEL, 8, "error")],
    "undefined-component.conf": [
        (C.UNDEFINED_COMPONENT, 3, "error"),
        (C.UNDEFINED_COMPONENT, 6, "error"),
    ],
    "bad-number.conf": [
        (C.BAD_VALUE, 6, "error"),
        (C.BAD_NUMBER, 9, "error"),
        (C.BAD_NUMBER, 10, "error"),
    ],
    "bad-value.conf": [
        (C.BAD_VALUE, 6, "error"),
        (C.BAD_VALUE, 7, "error"),
        (C.BAD_VALUE, 8, "error"),
        (C.BAD_VALUE, 12, "error"),
        (C.BAD_VALUE, 16, "error"),
    ],
    "duplicate-name.conf": [(C.DUPLICATE_NAME, 1, "error"), (C.DUPLICATE_NAME, 14, "error")],
    "port-conflict.conf": [(C.PORT_CONFLICT, 15, "error")],
    "unknown-key.conf": [
        (C.UNKNOWN_KEY, 9, "error"),
        (C.MISSING_REQUIRED, 12, "error"),
        (C.UNKNOWN_KEY, 13, "error"),
    ],
    "bad-key.conf": [(C.BAD_KEY, 1, "error"), (C.BAD_KEY, 4, "error"), (C.BAD_KEY, 10, "error")],
    "empty-value.conf": [(C.EMPTY_VALUE, 4, "error"), (C.EMPTY_VALUE, 8, "error")],
    "batch-exceeds.conf": [
        (C.BATCH_EXCEEDS_TRANSACTION, 6, "error"),
        (C.BATCH_EXCEEDS_TRANSACTION, 12, "error"),
    ],
    "invalid-selector.conf": [(C.INVALID_SELECTOR, 8, "error")],
    "bad-escape.conf": [(C.BAD_FILE, 4, "error")],
    "many-problems.conf": [
        (C.UNDEFINED_COMPONENT, 2, "error"),  # r3 listed, never configured
        (C.UNKNOWN_TYPE, 8, "error"),  # exec
        (C.MISSING_REQUIRED, 12, "error"),  # r2 has no port
        (C.DANGLING_CHANNEL, 14, "error"),  # r2 -> c5
        (C.BAD_NUMBER, 19, "error"),  # capacity = 1,000
        (C.BAD_VALUE, 27, "error"),  # ssl = maybe
        (C.UNKNOWN_KEY, 28, "error"),  # batchsize
        (C.MISSING_REQUIRED, 32, "error"),  # k2 has no channel
        (C.BATCH_EXCEEDS_TRANSACTION, 35, "error"),  # null sink 100 > 10
        (C.UNDEFINED_COMPONENT, 38, "error"),  # group lists k9
        (C.BAD_VALUE, 40, "error"),  # processor.selector = weighted
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_config_reports_exact_codes_and_lines(name: str) -> None:
    path = FIXTURES / name
    result = load_config(path, "a1", env={})
    got = [(i.code, i.line, str(i.severity)) for i in result.issues]
    assert got == CASES[name]
    assert result.config is None
    assert all(i.file == str(path) for i in result.issues)


def test_every_fixture_is_in_the_table() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.conf")} - {"duplicate-key.conf"}
    assert on_disk == set(CASES)


def test_messages_name_the_problem() -> None:
    result = load_config(FIXTURES / "many-problems.conf", "a1", env={})
    text = "\n".join(str(i) for i in result.issues)
    expected = "many-problems.conf:12: a1.sources.r2 [MISSING_REQUIRED] missing required key 'port'"
    assert expected in text
    assert "channel 'c5' is not defined" in text
    assert "did you mean 'batch-size'?" in text
    assert "source type 'exec' exists in Flume but flumelet does not implement it" in text


def test_duplicate_key_is_a_warning_and_the_last_value_wins() -> None:
    result = load_config(FIXTURES / "duplicate-key.conf", "a1", env={})
    assert [(i.code, i.line, i.severity) for i in result.issues] == [
        (C.DUPLICATE_KEY, 7, Severity.WARNING)
    ]
    assert result.config is not None
    assert result.config.channels["c1"].settings["capacity"] == 500


def test_lenient_mode_turns_component_errors_into_warnings_and_keeps_the_rest() -> None:
    result = load_config(FIXTURES / "dangling-channel.conf", "a1", lenient=True, env={})
    assert result.config is not None
    assert all(not i.is_error for i in result.issues)
    # Flume drops the unknown channel from the source and the sink pointing nowhere
    assert result.config.sources["r1"].channels == ("c1",)
    assert result.config.sinks == {}


def test_lenient_mode_still_fails_on_an_unknown_component_type_as_flume_does() -> None:
    result = load_config(FIXTURES / "unknown-type.conf", "a1", lenient=True, env={})
    assert result.config is None
    assert {i.code for i in result.errors} == {C.UNKNOWN_TYPE}
