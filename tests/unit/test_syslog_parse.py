"""Syslog parsing as Flume's SyslogUtils and SyslogParser do it (vectors from Flume's tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources.syslog_parse import (
    INCOMPLETE,
    INVALID,
    KEEP_ALL,
    STATUS,
    SyslogFramer,
    SyslogOptions,
    datagram_message,
    fields_to_keep,
    multiport_event,
    parse_syslog,
    rfc3164_millis,
    rfc5424_millis,
)

HOST = "ubuntu-11.cloudera.com"
NOW = int(datetime(2024, 6, 15, 12, 0, tzinfo=UTC).timestamp() * 1000)
UTC_OPTS = SyslogOptions(zone=UTC)


def ms(*args: int, tz: timezone = UTC) -> str:
    return str(int(datetime(*args, tzinfo=tz).timestamp() * 1000))  # type: ignore[misc]


def parse(text: str, keep: str | None = "none", incomplete: bool = False):
    return parse_syslog(text.encode(), incomplete, NOW,
                        SyslogOptions(keep=fields_to_keep(keep), zone=UTC))


# --- SyslogUtils: headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2012-04-13T11:11:11+08:00", ms(2012, 4, 13, 3, 11, 11)),
        ("2012-04-13T11:11:11Z", ms(2012, 4, 13, 11, 11, 11)),
        ("2012-04-13T11:11:11", ms(2012, 4, 13, 11, 11, 11)),  # no offset: the zone (UTC here)
        ("2012-04-13T11:11:11.999", str(int(ms(2012, 4, 13, 11, 11, 11)) + 999)),
        # Flume ignores the offset once a fraction is present, and reads ".5" as 5 ms; not us
        ("2014-10-03T17:20:01.123456-07:00", str(int(ms(2014, 10, 4, 0, 20, 1)) + 123)),
        ("2014-10-03T17:20:01.5Z", str(int(ms(2014, 10, 3, 17, 20, 1)) + 500)),
    ],
)
def test_rfc5424_headers(stamp: str, expected: str) -> None:
    event = parse(f"<10>1 {stamp} {HOST} some msg")
    assert event.headers == {"Facility": "1", "Severity": "2", "priority": "10",
                             "version": "1", "timestamp": expected, "host": HOST}
    assert event.body == b"some msg"


def test_rfc5424_without_version_null_stamp_and_null_host() -> None:
    event = parse(f"<10>2012-04-13T11:11:11+08:00 {HOST} some msg")
    assert "version" not in event.headers and event.headers["host"] == HOST
    event = parse(f"<10>1 - {HOST} some msg")
    assert "timestamp" not in event.headers and event.headers["host"] == HOST
    event = parse("<10>1 2012-04-13T11:11:11Z - some msg")
    assert "host" not in event.headers and event.body == b"some msg"


def test_full_rfc5424_message_keeps_app_fields_in_body() -> None:
    event = parse('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
                  '[exampleSDID@32473 iut="3"] An application event')
    assert event.headers["Facility"] == "20" and event.headers["Severity"] == "5"
    assert event.headers["timestamp"] == str(int(ms(2003, 10, 11, 22, 14, 15)) + 3)
    assert event.body == b'evntslog - ID47 [exampleSDID@32473 iut="3"] An application event'


def test_rfc3164_headers_with_year_guess() -> None:
    event = parse(f"<10>Jun  1 10:20:30 {HOST} - hyphen_null_breaks_5424_pattern [x]")
    assert event.headers["timestamp"] == ms(2024, 6, 1, 10, 20, 30)
    assert event.headers["host"] == HOST
    assert event.body == b"- hyphen_null_breaks_5424_pattern [x]"


@pytest.mark.parametrize(("now", "stamp", "year"), [
    (datetime(2024, 1, 2, tzinfo=UTC), "Dec 31 23:59:00", 2023),  # 1 year back
    (datetime(2023, 12, 31, tzinfo=UTC), "Jan  1 00:00:05", 2024),  # sender's clock ahead
    (datetime(2024, 6, 15, tzinfo=UTC), "Jul 10 00:00:00", 2024),  # within one month ahead
    (datetime(2024, 6, 15, tzinfo=UTC), "Aug 20 00:00:00", 2023),  # > 1 month ahead: last year
    (datetime(2025, 1, 15, tzinfo=UTC), "Feb 29 00:00:00", 2024),  # leap day: last leap year
])
def test_rfc3164_year_window(now: datetime, stamp: str, year: int) -> None:
    got = rfc3164_millis(stamp, int(now.timestamp() * 1000), UTC)
    assert got is not None
    assert datetime.fromtimestamp(got / 1000, UTC).year == year


def test_rfc3164_every_month_in_the_window_is_placed_correctly() -> None:
    # Flume's TestRfc3164Dates: from 10 months back to one month ahead, for a year of clocks
    for month_offset in range(14):
        now = datetime(2023, 3, 10, tzinfo=UTC) + timedelta(days=30 * month_offset)
        for delta_days in range(-300, 29, 7):
            sent = now + timedelta(days=delta_days)
            stamp = sent.strftime("%b ") + f"{sent.day:>2}" + sent.strftime(" %H:%M:%S")
            got = rfc3164_millis(stamp, int(now.timestamp() * 1000), UTC)
            assert got == int(sent.timestamp() * 1000), (now, sent)


def test_local_zone_is_used_without_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Etc/GMT-2")  # UTC+2
    time.tzset()
    try:
        assert rfc5424_millis("2012-04-13T11:11:11", None) == int(ms(2012, 4, 13, 9, 11, 11))
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("bad", [
    "<10F> bad bad data", "hi guys! <10> bad bad data", "<> bad bad data",
    "<123123123123123123123123123123> bad bad data", "no priority at all",
])
def test_malformed_priority_is_invalid_with_raw_body(bad: str) -> None:
    event = parse(bad)
    assert event.headers == {"Facility": "0", "Severity": "0", STATUS: INVALID}
    assert event.body == bad.encode()


def test_message_matching_neither_rfc_keeps_raw_body_and_priority_headers() -> None:
    event = parse("<10>Good good good data")
    assert event.headers == {"Facility": "1", "Severity": "2"}
    assert event.body == b"<10>Good good good data"


def test_no_header_leaks_into_the_next_message() -> None:
    parse(f"<10>1 2012-04-13T11:11:11Z {HOST} msg")
    assert "priority" not in parse("<10F> bad").headers


def test_incomplete_flag_and_undecodable_bytes_survive() -> None:
    raw = b"<13>Jun  1 10:20:30 host caf\xe9 \xff"
    event = parse_syslog(raw, True, NOW, UTC_OPTS)
    assert event.headers[STATUS] == INCOMPLETE
    assert event.body == b"caf\xe9 \xff"


# --- keepFields ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("none", None), ("false", None), (None, None), ("all", {KEEP_ALL}), ("TRUE", {KEEP_ALL}),
    ("timestamp hostname", {"timestamp", "hostname"}), ("priority,version", {"priority",
                                                                             "version"}),
])
def test_fields_to_keep(value: str | None, expected: set[str] | None) -> None:
    got = fields_to_keep(value)
    assert (got if got is None else set(got)) == expected


@pytest.mark.parametrize(("keep", "body"), [
    ("all", f"<10>1 2012-04-13T11:11:11Z {HOST} some msg"),
    ("priority version timestamp hostname", f"<10>1 2012-04-13T11:11:11Z {HOST} some msg"),
    ("hostname", f"{HOST} some msg"),
    ("timestamp", "2012-04-13T11:11:11Z some msg"),
    ("priority", "<10>some msg"),
    ("version", "1 some msg"),
])
def test_keep_fields_prefix_body(keep: str, body: str) -> None:
    event = parse(f"<10>1 2012-04-13T11:11:11Z {HOST} some msg", keep)
    assert event.body == body.encode()
    assert event.headers["host"] == HOST  # headers are set either way


# --- framing -------------------------------------------------------------------------------


def test_framer_splits_lines_drops_cr_and_empty_lines() -> None:
    framer = SyslogFramer(100)
    assert framer.feed(b"<1>a\r\n\n\n<2>b\n<3>c") == [(b"<1>a", False), (b"<2>b", False)]
    assert framer.buffered == 4
    assert framer.feed(b"d\n") == [(b"<3>cd", False)]
    assert framer.finish() == []


def test_framer_cuts_at_event_size_and_marks_incomplete() -> None:
    framer = SyslogFramer(10)
    assert framer.feed(b"<13>123456789012\n") == [(b"<13>123456", True), (b"789012", False)]
    # exactly eventSize bytes before the newline: incomplete, and the newline is then skipped
    assert framer.feed(b"<13>123456\n<1>x\n") == [(b"<13>123456", True), (b"<1>x", False)]


def test_framer_finish_returns_unterminated_last_message() -> None:
    framer = SyslogFramer(50)
    framer.feed(b"<1>tail")
    assert framer.finish() == [(b"<1>tail", False)]


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=20),
       st.integers(10, 40), st.data())
def test_framer_same_messages_whole_or_in_pieces(lines: list[bytes], size: int,
                                                 data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    whole = SyslogFramer(size).feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    framer = SyslogFramer(size)
    pieces: list[tuple[bytes, bool]] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces += framer.feed(stream[a:b])
    assert pieces == whole
    assert all(0 < len(m) <= size for m, _ in whole)
    if all(len(line) < size for line in lines):  # nothing cut: one message per non-empty line
        expected = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        assert whole == [(m, False) for m in expected if m]


def test_datagram_message_strips_one_trailing_newline() -> None:
    assert datagram_message(b"<1>a\r\n") == b"<1>a"
    assert datagram_message(b"<1>a\n\n") == b"<1>a\n"
    assert datagram_message(b"<1>a") == b"<1>a"


# --- multiport (SyslogParser) -------------------------------------------------------------------


def mp(text: str, keep: str | None = "none", incomplete: bool = False):
    return multiport_event(text.encode(), incomplete, NOW, fields_to_keep(keep))


def test_multiport_rfc5424_and_rfc3164() -> None:
    event, failed = mp(f"<34>1 2012-04-13T11:11:11.123+02:00 {HOST} su - ID47 - msg")
    assert not failed
    assert event.headers == {"Priority": "34", "Facility": "4", "Severity": "2", "Version": "1",
                             "timestamp": str(int(ms(2012, 4, 13, 9, 11, 11)) + 123),
                             "host": HOST}
    assert event.body == b"su - ID47 - msg"
    event, _ = mp(f"<13>Jun  1 10:20:30 {HOST} hello")
    assert event.headers["timestamp"] == ms(2024, 6, 1, 10, 20, 30)
    assert event.body == b"hello"


def test_multiport_null_stamp_uses_now_and_keep_all_keeps_message() -> None:
    event, _ = mp(f"<13>1 - {HOST} hi", keep="all")
    assert event.headers["timestamp"] == str(NOW)
    assert event.body == f"<13>1 - {HOST} hi".encode()


@pytest.mark.parametrize("bad", [
    "", "x<13>", "<13>", "<1234567>x", "<1a>x y z", "<13>2012-04-13T11:11:11 host x",
    "<13>2012-13-13T11:11:11Z host x", "<13>1 2012-04-13T11:11:11.Z host x",
    "<13>Jun  1 10:20:30", "<13>-", "<13>1 2012-04-13T11:11:11+0200 host x",
])
def test_multiport_malformed_is_invalid_never_an_exception(bad: str) -> None:
    event, failed = mp(bad)
    assert failed and event.headers == {STATUS: INVALID} and event.body == bad.encode()


def test_multiport_incomplete_and_undecodable() -> None:
    event, failed = mp(f"<13>1 - {HOST} hi", incomplete=True)
    assert event.headers[STATUS] == INCOMPLETE and not failed
    event, failed = multiport_event(b"<13>1 - h \xff", False, NOW, None)
    assert failed and event.headers == {STATUS: INVALID} and event.body == b"<13>1 - h \xff"
    event, failed = multiport_event(b"<13>1 - h caf\xe9", False, NOW, None, "latin-1")
    assert not failed and event.body == b"caf\xe9"
