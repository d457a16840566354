"""The hdfs sink's pure parts: BucketPath escapes and rounding, file names and roll rules,
serializers, codecs, SequenceFile encoding, and what survives a torn write."""

from __future__ import annotations

import bz2
import gzip
import struct
import zlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sinks.hdfs_bucket import FileNames, FileState, RollPolicy
from agent.sinks.hdfs_format import (
    SequenceFileEncoder,
    codec,
    serializer,
    valid_length,
    vint,
)
from agent.sinks.hdfs_path import BucketTemplate, HostNames, Rounding, TimeSource, round_down
from protocol.event import Event

# 2012-06-07 14:05:09.123 UTC, a Thursday
TS = int(datetime(2012, 6, 7, 14, 5, 9, tzinfo=UTC).timestamp() * 1000) + 123
HOSTS = HostNames("box", "10.1.2.3", "box.example.com")


def render(template: str, headers: dict[str, str] | None = None, *, zone: object = UTC,
           rounding: Rounding | None = None, local: bool = False, now: int = 0) -> str:
    times = TimeSource(zone, rounding, local)  # type: ignore[arg-type]
    times.now_ms = now
    hdrs = {"timestamp": str(TS)} if headers is None else headers
    return BucketTemplate(template, HOSTS).render(hdrs, times)


@pytest.mark.parametrize(("escape", "expected"), [
    ("%Y", "2012"), ("%y", "12"), ("%m", "06"), ("%n", "6"), ("%d", "07"), ("%e", "7"),
    ("%H", "14"), ("%k", "14"), ("%I", "02"), ("%l", "2"), ("%M", "05"), ("%S", "09"),
    ("%p", "PM"), ("%a", "Thu"), ("%A", "Thursday"), ("%b", "Jun"), ("%B", "June"),
    ("%D", "06/07/12"), ("%j", "159"), ("%c", "Thu Jun 7 14:05:09 2012"), ("%z", "+0000"),
    ("%s", str(TS // 1000)), ("%t", str(TS)), ("%%", "%"), ("%Q", ""),
])
def test_time_escapes(escape: str, expected: str) -> None:
    assert render(escape) == expected


def test_headers_hosts_and_literals() -> None:
    assert render("/flume/%{host}/%{missing}/%[localhost]-%[IP]-%[fqdn]",
                  {"host": "web-1", "timestamp": str(TS)}) == \
        "/flume/web-1//box-10.1.2.3-box.example.com"
    assert render("hdfs://nn:8020/plain/path") == "hdfs://nn:8020/plain/path"
    with pytest.raises(ValueError, match="none of"):
        BucketTemplate("/x/%[hostname]")


def test_time_zone_and_offset() -> None:
    assert render("%H%M %z", zone=ZoneInfo("America/Los_Angeles")) == "0705 -0700"


@pytest.mark.parametrize(("unit", "value", "expected"), [
    ("second", 10, "14:05:00"), ("minute", 10, "14:00:00"), ("minute", 1, "14:05:00"),
    ("hour", 6, "12:00:00"), ("hour", 24, "00:00:00"),
])
def test_rounding(unit: str, value: int, expected: str) -> None:
    assert render("%H:%M:%S", rounding=Rounding(unit, value)) == expected


def test_rounding_applies_to_s_but_not_t() -> None:
    got = render("%s %t", rounding=Rounding("minute", 10))
    assert got == f"{int(datetime(2012, 6, 7, 14, 0, tzinfo=UTC).timestamp())} {TS}"


def test_round_down_respects_the_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30: hours round at half past in UTC
    rounded = round_down(TS, Rounding("hour", 1), kolkata)
    assert datetime.fromtimestamp(rounded / 1000, kolkata).strftime("%H:%M") == "19:00"


@pytest.mark.parametrize(("unit", "value"), [("second", 0), ("minute", 61), ("hour", 25),
                                             ("day", 1)])
def test_bad_rounding_is_refused(unit: str, value: int) -> None:
    with pytest.raises(ValueError):
        Rounding(unit, value)


def test_local_timestamp_and_missing_timestamp() -> None:
    now = int(datetime(2020, 1, 2, 3, 4, tzinfo=UTC).timestamp() * 1000)
    assert render("%Y-%m-%d", local=True, now=now) == "2020-01-02"
    times = TimeSource(UTC)
    times.now_ms = now
    template = BucketTemplate("%Y")
    assert template.render({}, times) == "2020"  # Flume would fail the batch forever
    assert template.render({"timestamp": "soon"}, times) == "2020"
    assert times.missing_timestamp == 2


def test_file_names() -> None:
    names = FileNames("/data/2012/", "events", "", "_", ".tmp", ".gz")
    assert names.paths(1339077909124) == ("/data/2012/_events.1339077909124.gz.tmp",
                                          "/data/2012/events.1339077909124.gz")
    assert FileNames("/d", suffix=".log", extension=".gz").paths(5) == (
        "/d/FlumeData.5.log.tmp", "/d/FlumeData.5.log")


def test_roll_rules() -> None:
    state = FileState(opened_at=0, last_write=0)
    policy = RollPolicy(interval=30, size=100, count=3, idle_timeout=5)
    for _ in range(2):
        state.add(10, 1)
    assert not state.full(policy)
    state.add(10, 2)
    assert state.full(policy)  # count reached: roll before the next event
    assert FileState(0, 0, events=1, bytes=100).full(policy)
    assert not state.expired(policy, 6) and state.expired(policy, 7)  # idle since 2
    assert FileState(0, 100).expired(RollPolicy(interval=30), 30)
    assert not FileState(0, 0, events=99, bytes=10**9).full(RollPolicy(0, 0, 0))


def test_serializers() -> None:
    event = Event({"a": "1", "b": "2"}, b"body")
    assert serializer("TEXT")(event) == b"body\n"
    assert serializer("text", append_newline=False)(event) == b"body"
    assert serializer("HEADER_AND_TEXT")(event) == b"{a=1, b=2} body\n"
    with pytest.raises(ValueError, match="not supported"):
        serializer("avro_event")


@pytest.mark.parametrize(("name", "ext"), [
    ("gzip", ".gz"), ("GzipCodec", ".gz"), ("org.apache.hadoop.io.compress.GzipCodec", ".gz"),
    ("bzip2", ".bz2"), ("BZip2Codec", ".bz2"), ("DefaultCodec", ".deflate"),
])
def test_codec_names(name: str, ext: str) -> None:
    found = codec(name)
    assert found is not None and found.extension == ext


def test_unavailable_codecs_say_so() -> None:
    assert codec("None") is None
    with pytest.raises(ValueError, match="not available"):
        codec("snappy")
    with pytest.raises(ValueError, match="unknown codec"):
        codec("rar")


def test_vint_matches_hadoop() -> None:
    assert [vint(v).hex() for v in (0, 127, 128, -112, -113, 256)] == [
        "00", "7f", "8f80", "90", "8770", "8e0100"]


def read_sequence_file(data: bytes) -> tuple[str, list[tuple[int, bytes]]]:
    """A minimal reader of uncompressed SequenceFiles, written from Hadoop's format notes."""
    assert data[:4] == b"SEQ\x06"
    pos = 4
    names = []
    for _ in range(2):
        n = data[pos]
        names.append(data[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    assert data[pos:pos + 2] == b"\x00\x00"
    pos += 2
    assert struct.unpack_from(">i", data, pos)[0] == 0
    pos += 4
    sync = data[pos:pos + 16]
    pos += 16
    records = []
    while pos < len(data):
        (length,) = struct.unpack_from(">i", data, pos)
        if length == -1:
            assert data[pos + 4:pos + 20] == sync
            pos += 20
            continue
        key_len = struct.unpack_from(">i", data, pos + 4)[0]
        key = struct.unpack_from(">q", data, pos + 8)[0]
        value = data[pos + 8 + key_len:pos + 8 + length]
        records.append((key, value))
        pos += 8 + length
    return names[1], records


def test_sequence_file_writable_and_text_records() -> None:
    enc = SequenceFileEncoder("Writable", sync=b"S" * 16)
    events = [Event({"timestamp": str(i)}, b"x" * 90) for i in range(100)]
    data = enc.header() + enc.records(events[:60], 0) + enc.records(events[60:], 0)
    value_class, records = read_sequence_file(data)
    assert value_class == "org.apache.hadoop.io.BytesWritable"
    assert [k for k, _ in records] == list(range(100))
    assert all(v == struct.pack(">i", 90) + b"x" * 90 for _, v in records)
    assert data.count(b"\xff\xff\xff\xff" + b"S" * 16) >= 4  # sync marks every ~2000 bytes
    text = SequenceFileEncoder("Text", sync=b"T" * 16)
    data = text.header() + text.records([Event({}, b"hello")], 42)
    assert read_sequence_file(data) == ("org.apache.hadoop.io.Text", [(42, b"\x05hello")])
    assert valid_length(data, "sequence") == len(data)
    assert valid_length(data[:-3], "sequence") == len(text.header())


@given(st.lists(st.binary(max_size=200), min_size=1, max_size=6), st.integers(1, 40),
       st.sampled_from(["gzip", "bzip2", "zlib"]))
def test_valid_length_keeps_whole_members_only(members: list[bytes], cut: int,
                                               kind: str) -> None:
    compress = {"gzip": gzip.compress, "bzip2": bz2.compress, "zlib": zlib.compress}[kind]
    blobs = [compress(m) for m in members]
    data = b"".join(blobs)
    assert valid_length(data, kind) == len(data)
    torn = data[:-min(cut, len(blobs[-1]))]
    assert valid_length(torn, kind) == len(data) - len(blobs[-1])


def test_valid_length_of_text() -> None:
    assert valid_length(b"a\nb\npart", "text") == 4
    assert valid_length(b"no newline", "text") == 0
    assert valid_length(b"anything", "raw") == 8
