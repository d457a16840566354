"""Line parsers on small fixtures, malformed lines included."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.jobs.parsers import (
    apache_combined,
    apache_common,
    make_csv_parser,
    make_parser,
    make_regex_parser,
    parse_json,
    parse_raw,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def test_apache_combined_fields_types_and_malformed_lines():
    parsed = [apache_combined(line) for line in lines("access_combined.log")]
    assert parsed[0] == {
        "host": "192.168.0.1", "ident": "-", "user": "-", "time": "10/Oct/2023:13:55:36 +0000",
        "method": "GET", "url": "/index.html", "protocol": "HTTP/1.1", "status": 200,
        "bytes": 2326, "referrer": "http://example.com/start",
        "agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert parsed[1] is not None
    assert (parsed[1]["user"], parsed[1]["status"], parsed[1]["bytes"]) == ("frank", 302, 0)
    assert parsed[3] is not None
    assert (parsed[3]["host"], parsed[3]["url"], parsed[3]["agent"]) == \
        ("::1", "/search?q=a%20b", "")
    # free text, a line cut before referrer/agent, and Apache's "-" request line (a 408)
    assert parsed[4:] == [None, None, None]


def test_apache_common_accepts_missing_protocol_and_rejects_combined_tail():
    parsed = [apache_common(line) for line in lines("access_common.log")]
    assert parsed[0] is not None and parsed[0]["url"] == "/apache_pb.gif"
    assert parsed[1] is not None and (parsed[1]["status"], parsed[1]["bytes"]) == (404, 0)
    assert parsed[2] is not None and (parsed[2]["url"], parsed[2]["protocol"]) == ("/nover", "")
    assert parsed[3] is None  # time without brackets
    combined = lines("access_combined.log")[0]
    assert apache_common(combined) is None  # the common format does not end there
    assert apache_combined(lines("access_common.log")[0]) is None


def test_json_objects_only():
    parsed = [parse_json(line) for line in lines("events.jsonl")]
    assert parsed[0] is not None and parsed[0]["tags"] == ["a", "b"]
    assert parsed[1] == {"user": "bob", "action": "view", "ms": "7.5",
                         "ts": "2023-10-10T13:55:37+00:00"}
    assert parsed[2] == {"user": "ann", "action": "view", "ms": 3}
    assert parsed[3:] == [None, None, None]  # an array, broken JSON, a bare string


def test_csv_columns_quoting_and_wrong_width():
    parse = make_csv_parser(["user", "action", "ms"])
    parsed = [parse(line) for line in lines("data.csv")]
    assert parsed[0] == {"user": "ann", "action": "click", "ms": "12"}
    assert parsed[1] == {"user": "bob", "action": "view, then leave", "ms": "7"}
    assert parsed[2:] == [None, None]
    assert make_csv_parser(["a", "b"], delimiter="\t")("x\ty") == {"a": "x", "b": "y"}
    assert parse('"unterminated,1,2') is None


def test_regex_named_groups_search_and_no_match():
    parse = make_regex_parser(r"user=(?P<user>\w+) took (?P<ms>\d+)ms")
    assert parse("INFO user=ann took 15ms today") == {"user": "ann", "ms": "15"}
    assert parse("nothing here") is None


def test_raw_and_factory():
    assert parse_raw("anything at all") == {"body": "anything at all"}
    assert make_parser("apache_combined") is apache_combined
    assert make_parser("csv", columns=["a"])("1") == {"a": "1"}
    assert make_parser("regex", pattern=r"(?P<x>\d)")("a1") == {"x": "1"}
    with pytest.raises(ValueError, match="unknown parser 'xml'"):
        make_parser("xml")
