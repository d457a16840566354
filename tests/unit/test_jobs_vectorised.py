"""The vectorised batch path agrees with the record path: same windows, same late records,
same drop counters, on random logs full of the lines that break parsers (quotes in URLs,
tabs, information separators, non-ASCII, digits that are not ASCII, huge byte counts,
missing headers, bad times), for every aggregation, filters, event and processing time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.engine.windows import EventTimeWindows, to_ms
from consumer.jobs.aggregations import make_aggregation
from consumer.jobs.columns import make_column_parser
from consumer.jobs.extract import JobCounters, RecordPipeline
from consumer.jobs.parsers import make_parser
from consumer.jobs.spec import EventTimeSpec, FilterSpec, JobSpec, ParserSpec
from consumer.jobs.vectorised import BatchEvaluator, BatchStep
from scripts.genlog import apache_time, generate

T0 = 1_700_000_000
TRICKY = ' \t\x1c\n"[]-é٣/ab0'

# ---- random access logs ---------------------------------------------------------------
text = st.text(alphabet="abc/.-_=?&%", max_size=6)
odd = st.text(alphabet=TRICKY, max_size=3)


@st.composite
def access_line(draw: Any) -> str:
    t = T0 + draw(st.integers(0, 900))
    when = draw(st.sampled_from([apache_time(t)] * 6 + [
        apache_time(t).lstrip("0"), apache_time(t).replace("+0000", "+0130"), "not a time",
        apache_time(t).replace("Nov", "nov"), ""]))
    host = draw(st.sampled_from(["1.2.3.4", "h", 'a"b', "[x", "é"]))
    url = "/" + draw(text) + draw(st.sampled_from(["", "", "", '"', '"x', "[1]", "é", "\t",
                                                   "\x1c", "\x1f\x1f"]))
    request = draw(st.sampled_from(["{m} {u} {p}", "{m} {u}", "{m} {u}  {p}", "{m}"])).format(
        m=draw(st.sampled_from(["GET", "POST", "HEAD"])), u=url,
        p=draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "", 'H"', "x\ty"])))
    status = draw(st.sampled_from(["200", "200", "404", "500", "20x", "2000", "٢٠٠"]))
    size = draw(st.sampled_from(["-", "0", "512", "512", "99999999999999999999999", "1x"]))
    ref = draw(st.sampled_from(["-", "http://a/", 'q"q', "", "é"]))
    agent = draw(st.sampled_from(["curl/8", "Mozilla/5.0 (X11)", "", "ua\x1c"]))
    tail = draw(st.sampled_from(["", "", " ", "\t", "\n", "\x1c", "x", ' "extra"']))
    line = (f'{host} - {draw(st.sampled_from(["-", "bob"]))} [{when}] "{request}" {status} '
            f'{size} "{ref}" "{agent}"{tail}')
    mutate = draw(st.integers(0, 5))
    if mutate == 0:
        cut = draw(st.integers(0, len(line)))
        line = line[:cut] + draw(odd) + line[cut:]
    elif mutate == 1:
        line = line[:draw(st.integers(0, len(line)))]
    return line


events = st.lists(st.tuples(
    st.sampled_from([{}, {"h": "x"}, {"h": "y", "ts": str(T0 * 1000 + 1)},
                     {"ts": str((T0 + 200) * 1000)}, {"ts": "soon"}]),
    access_line()), max_size=40)

SPECS = [
    dict(key=("url",)),
    dict(key=("status",), aggregation="sum", value="bytes"),
    dict(key=("method", "status"), aggregation="avg", value="bytes"),
    dict(key=("host",), aggregation="min", value="status"),
    dict(key=("url",), aggregation="max", value="bytes"),
    dict(key=("status",), aggregation="distinct_count", value="url"),
    dict(key=("method",), aggregation="top_k", value="host", k=2),
    dict(key=("header:h",), aggregation="top_k", value="url", k=3),
    dict(key=("url",), aggregation="sum", value="user"),
    dict(key=("url",), filters=(FilterSpec("status", "eq", "200"),)),
    dict(key=("agent",), filters=(FilterSpec("bytes", "gt", 100),
                                  FilterSpec("url", "regex", "^/[a-c]"))),
    dict(key=("referrer",), filters=(FilterSpec("header:h", "in", ["x"]),)),
    dict(key=("url",), aggregation="count", value=None,
         filters=(FilterSpec("method", "not_in", ["HEAD"]),)),
    dict(key=("protocol",), aggregation="top_k", value="method"),
]
PARSERS = [ParserSpec("apache_combined"), ParserSpec("apache_common")]
TIMES = [None, EventTimeSpec(field="time", format="apache"),
         EventTimeSpec(field="time", format="apache", allowed_lateness=120.0),
         EventTimeSpec(header="ts", format="epoch_ms", allowed_lateness=30.0)]
WINDOWS = [(300.0, 60.0), (90.0, 60.0), (60.0, 60.0), (10.0, 4.0)]


def make_spec(base: dict[str, Any], parser: ParserSpec, et: EventTimeSpec | None,
              window: tuple[float, float]) -> JobSpec:
    kw = dict(base)
    if parser.kind == "apache_common":
        kw = {k: v for k, v in kw.items()}
        for name in ("key", "filters"):
            if name == "key" and any(f in ("referrer", "agent") for f in kw["key"]):
                kw["key"] = ("url",)
        if any(f.field in ("referrer", "agent") for f in kw.get("filters", ())):
            kw["filters"] = ()
    return JobSpec(name="t", parser=parser, event_time=et, window=window[0], slide=window[1],
                   **kw)


def split(items: list[Any], cuts: list[int]) -> list[list[Any]]:
    out, start = [], 0
    for c in sorted(c % (len(items) + 1) for c in cuts):
        out.append(items[start:c])
        start = c
    out.append(items[start:])
    return out


def record_path_event_time(spec: JobSpec, batches: list[list[Any]]) -> tuple[Any, ...]:
    """Today's record path: RecordPipeline, then EventTimeWindows.add per record."""
    agg = make_aggregation(spec.aggregation, spec.k)
    counters = JobCounters()
    pipeline = RecordPipeline(spec, counters)
    lateness = spec.event_time.allowed_lateness if spec.event_time else 0.0
    windows = EventTimeWindows(to_ms(spec.window), to_ms(spec.slide), to_ms(lateness),
                               agg.combine)
    out = []
    for batch in batches:
        for ts, key, value in pipeline.process(batch):
            windows.add(round(ts * 1000), key, agg.lift(value))
        out.append(reported(agg, windows.advance()))
    return out, windows.late_records, counters.as_dict()


def reported(agg: Any, windows: list[Any]) -> list[Any]:
    """What a job writes: finalized values (a value counter's internal order is not part of
    it: top_k ranks by count, then value)."""
    return [(w.start, w.end, w.key, agg.finalize(w.value)) for w in windows]


def vectorised_event_time(spec: JobSpec, batches: list[list[Any]]) -> tuple[Any, ...]:
    counters = JobCounters()
    step = BatchStep(spec, counters, to_ms(spec.window), to_ms(spec.slide))
    lateness = spec.event_time.allowed_lateness if spec.event_time else 0.0
    windows = EventTimeWindows(to_ms(spec.window), to_ms(spec.slide), to_ms(lateness),
                               step.agg.combine)
    out = []
    for batch in batches:
        for pane in step.panes(batch):
            windows.add_pane(pane)
        out.append(reported(step.agg, windows.advance()))
    return out, windows.late_records, counters.as_dict()


def record_path_partials(spec: JobSpec, batches: list[list[Any]]) -> tuple[Any, ...]:
    agg = make_aggregation(spec.aggregation, spec.k)
    counters = JobCounters()
    pipeline = RecordPipeline(spec, counters)
    return [list(agg.batch(pipeline.process(b)).items()) for b in batches], counters.as_dict()


def vectorised_partials(spec: JobSpec, batches: list[list[Any]]) -> tuple[Any, ...]:
    counters = JobCounters()
    step = BatchStep(spec, counters, to_ms(spec.window), to_ms(spec.slide))
    return [step.partials(b) for b in batches], counters.as_dict()


def typed(value: Any) -> Any:
    """Values with their types spelled out (1 == 1.0 == True would hide a difference)."""
    if isinstance(value, list | tuple):
        return [type(value).__name__, [typed(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", [(typed(k), typed(v)) for k, v in value.items()]]
    return [type(value).__name__, value]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.lists(st.integers(0, 60), max_size=4), st.sampled_from(SPECS),
       st.sampled_from(PARSERS), st.sampled_from(TIMES), st.sampled_from(WINDOWS))
def test_vectorised_and_record_paths_agree(evs, cuts, base, parser, et, window) -> None:
    spec = make_spec(base, parser, et, window)
    batches = split(evs, cuts)
    if et is None:
        assert typed(vectorised_partials(spec, batches)) == typed(
            record_path_partials(spec, batches))
    else:
        assert typed(vectorised_event_time(spec, batches)) == typed(
            record_path_event_time(spec, batches))


@settings(max_examples=200, deadline=None)
@given(st.lists(access_line(), max_size=60))
def test_apache_columns_equal_the_record_parser(lines: list[str]) -> None:
    fields = ("host", "ident", "user", "time", "method", "url", "status", "bytes",
              "referrer", "agent")
    for kind in ("apache_combined", "apache_common"):
        parse = make_parser(kind)
        recs = [parse(line) for line in lines]
        for needed in (fields[:6] if kind == "apache_common" else fields, ("url", "time"),
                       ("status", "bytes")):
            columns = make_column_parser(ParserSpec(kind), needed)
            assert columns is not None
            got = columns(lines)
            if got is None:  # declined: a value that only Python's integers hold
                assert any(r is not None and r["bytes"] >= 2**63 for r in recs)
                continue
            assert got.valid.to_list() == [r is not None for r in recs]
            for name in needed:
                assert got.fields[name].to_list() == [None if r is None else r[name]
                                                      for r in recs], name


def test_a_typical_log_never_falls_back_to_the_record_path() -> None:
    lines = list(generate(3000, seed=5, malformed_rate=0.05, urls=500))
    batch = [({"timestamp": "1"}, line) for line in lines]
    for base in SPECS[:8]:
        spec = make_spec(base, ParserSpec("apache_combined"),
                         EventTimeSpec(field="time", format="apache"), (300.0, 60.0))
        step = BatchStep(spec, JobCounters(), 300_000, 60_000)
        step.panes(batch[:1000])
        step.partials(batch[1000:])
        assert step.fallbacks == 0, base


@pytest.mark.parametrize(("body", "fallbacks"), [(None, 0), (b"bytes", 1), (42, 1)])
def test_bodies_that_are_not_text_are_malformed(body: Any, fallbacks: int) -> None:
    """None (a missing body) is a null line; other objects send the batch to Python."""
    spec = JobSpec(name="t")
    step = BatchStep(spec, JobCounters(), 300_000, 1000)
    assert step.partials([({}, '1.2.3.4 - - [x] "GET /a HTTP/1.1" 200 1 "-" "-"'),
                          ({}, body)]) == [("/a", 1)]
    assert step.fallbacks == fallbacks
    assert step.pipeline.counters.malformed == 1


def test_non_finite_times_are_bad_times_not_a_crash() -> None:
    spec = JobSpec(name="t", parser=ParserSpec("raw"), key=("body",),
                   event_time=EventTimeSpec(field="body", format="epoch_s"))
    for vectorised in (True, False):
        counters = JobCounters()
        step = BatchStep(spec, counters, 300_000, 60_000, vectorised=vectorised)
        panes = step.panes([({}, "inf"), ({}, "nan"), ({}, "-inf"), ({}, "12")])
        assert [p.keys for p in panes] == [["12"]]
        assert counters.bad_time == 3


def test_json_jobs_have_no_columnar_form() -> None:
    assert not BatchEvaluator.supports(JobSpec(name="t", parser=ParserSpec("json")))
    assert BatchEvaluator.supports(JobSpec(name="t", parser=ParserSpec("regex", "(?P<a>.)"),
                                           key=("a",)))
