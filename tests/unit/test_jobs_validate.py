"""YAML job loading and validation: every problem at once, each with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from consumer.jobs import JobInvalid, load_job_file, validate_job
from consumer.jobs.default import default_job_data
from consumer.jobs.spec import EventTimeSpec, FilterSpec, JobSpec, OutputSpec, ReceiverSpec
from consumer.jobs.yamlload import load_marked

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(JobInvalid) as info:
        load_job_file(str(path))
    return [str(i).replace(str(tmp_path) + "/", "") for i in info.value.issues]


def test_broken_fixture_reports_every_problem_with_its_line_in_order():
    with pytest.raises(JobInvalid) as info:
        load_job_file(str(FIXTURES / "broken.yaml"))
    got = [(i.line, i.path) for i in info.value.issues]
    assert got == [
        (4, "receiver.port"), (5, "receiver.addresses"), (8, "filters[0].op"),
        (9, "filters[1].value"), (10, "filters[2].value"), (11, "key"),
        (13, "aggregation.type"), (15, "window"), (18, "outputs[0].type"),
        (19, "outputs[1].table"), (20, "colour")]
    text = str(info.value)
    assert f"{FIXTURES / 'broken.yaml'}:13: aggregation.type: unknown 'median' (expected one " \
           "of count, sum, avg, min, max, distinct_count, top_k)" in text
    assert "key: unknown field 'urll' for parser apache_combined" in text
    assert "did you mean 'url'?" in text
    assert "2.5 s is not a multiple of batch (1 s)" in text


def test_valid_fixture_becomes_a_typed_spec():
    spec = load_job_file(str(FIXTURES / "valid.yaml"))
    assert spec.name == "checkout_bytes"
    assert spec.receiver == ReceiverSpec("pull", addresses=(("127.0.0.1", 4545),
                                                            ("flume-b", 4546)),
                                         max_batch_size=500, parallelism=2)
    assert spec.filters == (FilterSpec("method", "in", ["GET", "POST"]),
                            FilterSpec("status", "lt", 500), FilterSpec("url", "regex", "^/api/"))
    assert (spec.key, spec.value, spec.aggregation) == (("method", "url"), "bytes", "sum")
    assert (spec.batch, spec.window, spec.slide) == (2.0, 60.0, 10.0)
    assert spec.outputs == (OutputSpec("console", top=5),
                            OutputSpec("jsonl", path="/tmp/checkout.jsonl"),
                            OutputSpec("sqlite", path="/tmp/checkout.db", table="checkout_bytes"))


def test_minimal_job_defaults(tmp_path):
    path = tmp_path / "tiny-job.yaml"
    path.write_text("key: url\n")
    spec = load_job_file(str(path))
    assert spec.name == "tiny-job"
    assert spec.receiver == ReceiverSpec("push", "127.0.0.1", 9092)
    assert spec.parser.kind == "apache_combined"
    assert (spec.aggregation, spec.batch, spec.window, spec.slide) == ("count", 1.0, 1.0, 1.0)
    assert spec.outputs == (OutputSpec("console", top=10),)


def test_a_minimal_job_file_is_a_jobspec_with_its_defaults():
    """The spec's field defaults are the job file's (JobSpec.window once said 300 s)."""
    spec, issues = validate_job({"key": "url"}, "tiny.yaml", default_name="tiny")
    assert issues == []
    assert spec == JobSpec(name="tiny", key=("url",), source="tiny.yaml")


def test_event_time_defaults_follow_the_source(tmp_path):
    spec = load_job_file(str(FIXTURES / "event_time.yaml"))
    assert spec.event_time == EventTimeSpec(field="time", format="apache", allowed_lateness=30)
    assert (spec.window, spec.slide) == (60.0, 60.0)  # tumbling by default
    path = tmp_path / "h.yaml"
    path.write_text("parser: json\nkey: user\nevent_time: {header: timestamp}\nwindow: 2.5\n")
    spec = load_job_file(str(path))
    assert spec.event_time == EventTimeSpec(header="timestamp", format="epoch_ms")
    assert spec.window == 2.5  # event-time windows need not be multiples of the batch


def test_duplicate_keys_and_syntax_errors_have_lines():
    with pytest.raises(JobInvalid, match=r"duplicate\.yaml:3: duplicate key 'key' \(first "
                                         r"defined on line 1\)"):
        load_job_file(str(FIXTURES / "duplicate.yaml"))
    with pytest.raises(JobInvalid, match=r"syntax\.yaml:4: invalid YAML"):
        load_job_file(str(FIXTURES / "syntax.yaml"))


def test_missing_file_is_a_job_problem(tmp_path):
    with pytest.raises(JobInvalid, match="cannot read job"):
        load_job_file(str(tmp_path / "absent.yaml"))


def test_type_errors_and_cross_field_rules(tmp_path):
    got = problems(tmp_path, """\
        receiver: pull
        parser: {type: csv, columns: [a, b, a], delimiter: ";;"}
        key: [a, 7]
        value: a
        aggregation: count
        batch: 0
        window: "ten"
        checkpoint: 12
        outputs: []
        """)
    assert got == [
        "job.yaml:1: receiver.addresses: expected a non-empty list of host:port",
        "job.yaml:2: parser.columns: column names must be unique",
        "job.yaml:2: parser.delimiter: expected one character, got ';;'",
        "job.yaml:3: key[1]: expected a field name, got 7",
        "job.yaml:4: value: count counts records and uses no value; remove it or choose sum, "
        "avg, min, max, distinct_count or top_k",
        "job.yaml:6: batch: must be > 0, got 0",
        "job.yaml:7: window: expected a number of seconds, got 'ten'",
        "job.yaml:8: checkpoint: expected a non-empty string, got 12",
        "job.yaml:9: outputs: expected a non-empty list of outputs",
    ]


def test_value_required_k_and_event_time_rules(tmp_path):
    got = problems(tmp_path, """\
        parser: json
        key: user
        aggregation:
          type: top_k
          k: 0
        event_time:
          header: timestamp
          field: ts
          format: fortnightly
          allowed_lateness: -1
        outputs:
          - {type: jsonl, path: out.jsonl}
          - {type: csv, path: ./out.jsonl, top: 3}
          - console
        """)
    assert got == [
        "job.yaml:4: value: top_k needs 'value': the field to aggregate",
        "job.yaml:5: aggregation.k: must be >= 1, got 0",
        "job.yaml:6: event_time: set exactly one of header (a Flume header such as timestamp) "
        "or field (a parsed field)",
        "job.yaml:9: event_time.format: unknown 'fortnightly' (expected one of epoch_ms, "
        "epoch_s, iso8601, apache, or a strptime pattern such as %Y-%m-%d %H:%M:%S)",
        "job.yaml:10: event_time.allowed_lateness: must be >= 0, got -1",
        "job.yaml:13: outputs[1].top: unknown setting (allowed: type, path)",
        "job.yaml:13: outputs[1].path: './out.jsonl' is already written by outputs[0]",
    ]


def test_header_fields_regex_groups_and_unknown_sections(tmp_path):
    got = problems(tmp_path, """\
        parser: {type: regex, pattern: "took (\\\\d+)ms"}
        key: "header:"
        filters: {field: x}
        aggregation: {type: sum, k: 3}
        value: header:size
        """)
    assert got == [
        "job.yaml:1: parser.pattern: needs at least one named group, e.g. (?P<url>\\S+)",
        "job.yaml:2: key: header: needs a header name, e.g. header:host",
        "job.yaml:3: filters: expected a list, got a mapping",
        "job.yaml:4: aggregation.k: unknown setting; k is only for top_k (allowed: type)",
    ]


def test_not_a_mapping_and_empty_file(tmp_path):
    assert problems(tmp_path, "- a\n- b\n") == \
        ["job.yaml:1: a job is a YAML mapping of settings, got a list"]
    assert problems(tmp_path, "") == ["job.yaml: a job is a YAML mapping of settings, got nothing"]


def test_default_job_data_validates_and_reports_option_problems():
    spec, issues = validate_job(default_job_data(), "flume-consumer")
    assert issues == [] and spec is not None
    assert (spec.key, spec.window, spec.slide, spec.outputs[0].top) == (("url",), 300.0, 1.0, 10)
    spec, issues = validate_job(default_job_data(batch=2, window=5, slide=3,
                                                 pull=["h:1", "nope"]), "flume-consumer")
    assert spec is None
    assert [str(i) for i in issues] == [
        "flume-consumer: receiver.addresses[1]: expected host:port, got 'nope'",
        "flume-consumer: window: 5 s is not a multiple of batch (2 s); Spark requires window "
        "and slide to be multiples of the batch interval",
        "flume-consumer: slide: 3 s is not a multiple of batch (2 s); Spark requires window "
        "and slide to be multiples of the batch interval",
    ]


def test_marked_loader_records_lines_of_nested_entries():
    data, dups = load_marked("a:\n  b: [1,\n     2]\n  c:\n    - x\n    - {y: 1}\n")
    assert data == {"a": {"b": [1, 2], "c": ["x", {"y": 1}]}}
    assert data.key_lines == {"a": 1}
    assert data["a"].key_lines == {"b": 2, "c": 4}
    assert data["a"]["b"].item_lines == [2, 3]
    assert data["a"]["c"][1].line == 6
    assert dups == []
