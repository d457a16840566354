"""RecordPipeline: parse, filter, key/value and event time in one pass; drops are counted."""

from __future__ import annotations

import pytest

from consumer.jobs.extract import RecordPipeline, make_time_parser, to_number
from consumer.jobs.spec import EventTimeSpec, FilterSpec, JobSpec, ParserSpec

LINE = '1.2.3.4 - - [10/Oct/2023:13:55:{s:02d} +0000] "{m} {u} HTTP/1.1" {st} {b} "-" "ua"'


def access(u: str = "/a", m: str = "GET", st: int = 200, b: int = 10, s: int = 0) -> tuple:
    return ({}, LINE.format(u=u, m=m, st=st, b=b, s=s))


def spec(**kw) -> JobSpec:
    return JobSpec(name="t", **kw)


def test_count_pairs_and_malformed_lines_counted():
    p = RecordPipeline(spec())
    out = p.process([access("/a"), ({}, "garbage"), access("/b"), ({}, None)])
    assert out == [("/a", None), ("/b", None)]
    assert p.counters.as_dict() == {"events": 4, "malformed": 2, "filtered": 0,
                                    "missing_field": 0, "bad_value": 0, "bad_time": 0}


@pytest.mark.parametrize(("flt", "kept"), [
    (FilterSpec("status", "eq", "200"), ["/ok"]),           # string matches an int field
    (FilterSpec("status", "ne", 200), ["/missing", "/err"]),
    (FilterSpec("method", "in", ["POST", "PUT"]), ["/err"]),
    (FilterSpec("method", "not_in", ["POST"]), ["/ok", "/missing"]),
    (FilterSpec("url", "regex", "^/(ok|err)$"), ["/ok", "/err"]),
    (FilterSpec("url", "not_regex", "ok"), ["/missing", "/err"]),
    (FilterSpec("agent", "contains", "u"), ["/ok", "/missing", "/err"]),
    (FilterSpec("bytes", "gt", 10), ["/err"]),
    (FilterSpec("bytes", "ge", 10), ["/ok", "/err"]),
    (FilterSpec("status", "lt", 500), ["/ok", "/missing"]),
    (FilterSpec("status", "le", 404), ["/ok", "/missing"]),
    (FilterSpec("header:env", "exists"), ["/ok"]),
    (FilterSpec("header:env", "eq", "prod"), ["/ok"]),
])
def test_filter_ops(flt, kept):
    p = RecordPipeline(spec(filters=(flt,)))
    events = [({"env": "prod"}, access("/ok")[1]), access("/missing", st=404, b=0),
              access("/err", m="POST", st=500, b=99)]
    assert [k for k, _ in p.process(events)] == kept
    assert p.counters.filtered == 3 - len(kept)


def test_filters_are_anded_and_a_missing_field_fails_the_filter():
    p = RecordPipeline(spec(parser=ParserSpec("json"),
                            filters=(FilterSpec("n", "gt", 1), FilterSpec("k", "ne", "x")),
                            key=("k",)))
    out = p.process([({}, '{"k": "a", "n": 2}'), ({}, '{"k": "x", "n": 5}'),
                     ({}, '{"k": "b"}'), ({}, '{"k": "c", "n": "many"}'),
                     ({}, '{"k": "d", "n": null}')])
    assert out == [("a", None)]
    assert p.counters.filtered == 4


def test_composite_keys_header_keys_and_json_encoding():
    p = RecordPipeline(spec(parser=ParserSpec("json"), key=("header:host", "tags")))
    out = p.process([({"host": "web1"}, '{"tags": ["b", "a"]}'),
                     ({}, '{"tags": 1}'), ({"host": "web2"}, '{"tags": {"z": 1, "a": 2}}')])
    assert out == [(("web1", '["b","a"]'), None), (("web2", '{"a":2,"z":1}'), None)]
    assert p.counters.missing_field == 1


def test_numeric_values_and_bad_values():
    p = RecordPipeline(spec(parser=ParserSpec("json"), key=("k",), value="v",
                            aggregation="sum"))
    out = p.process([({}, '{"k": "a", "v": 3}'), ({}, '{"k": "a", "v": "2.5"}'),
                     ({}, '{"k": "a", "v": "lots"}'), ({}, '{"k": "a", "v": true}'),
                     ({}, '{"k": "a"}'), ({}, '{"v": 1}')])
    assert out == [("a", 3), ("a", 2.5)]
    assert (p.counters.bad_value, p.counters.missing_field) == (2, 2)


def test_non_numeric_aggregations_take_any_hashable_value():
    p = RecordPipeline(spec(parser=ParserSpec("json"), key=("k",), value="v",
                            aggregation="distinct_count"))
    assert p.process([({}, '{"k": 1, "v": [1, 2]}'), ({}, '{"k": 1, "v": "x"}')]) == \
        [(1, "[1,2]"), (1, "x")]


def test_event_time_from_field_and_header():
    p = RecordPipeline(spec(event_time=EventTimeSpec(field="time", format="apache")))
    out = p.process([access("/a", s=5), access("/b", s=6)])
    assert out == [(1696946105.0, "/a", None), (1696946106.0, "/b", None)]
    p = RecordPipeline(spec(event_time=EventTimeSpec(header="timestamp")))
    out = p.process([({"timestamp": "1700000000500"}, access()[1]),
                     ({"timestamp": "soon"}, access()[1]), access()])
    assert out == [(1700000000.5, "/a", None)]
    assert (p.counters.bad_time, p.counters.missing_field) == (1, 1)


@pytest.mark.parametrize(("fmt", "raw", "expected"), [
    ("epoch_ms", "1500", 1.5), ("epoch_ms", 2000, 2.0), ("epoch_s", "12.25", 12.25),
    ("iso8601", "1970-01-01T00:01:00Z", 60.0), ("iso8601", "1970-01-01T01:00:00+01:00", 0.0),
    ("iso8601", "1970-01-01 00:00:10", 10.0),  # no zone: UTC
    ("apache", "01/Jan/1970:00:00:30 +0000", 30.0),
    ("%Y/%m/%d %H.%M", "1970/01/01 00.02", 120.0),
])
def test_time_formats(fmt, raw, expected):
    assert make_time_parser(fmt)(raw) == expected


def test_bad_times_raise_value_errors():
    for fmt, raw in (("epoch_ms", "x"), ("iso8601", "yesterday"), ("apache", "10/Oct/2023")):
        with pytest.raises(ValueError):
            make_time_parser(fmt)(raw)


def test_to_number():
    assert [to_number(v) for v in (3, 2.5, "4", "4.5", "x", True, None, [1])] == \
        [3, 2.5, 4, 4.5, None, None, None, None]
