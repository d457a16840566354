"""The example jobs in configs/jobs validate, and the default job's YAML twin is identical."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from consumer.jobs import load_job_file, validate_job
from consumer.jobs.default import default_job_data
from consumer.jobs.runner import summarize

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "configs" / "jobs").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path):
    spec = load_job_file(str(path))
    assert spec.name in path.read_text()  # every example names its job (= its SQLite table)
    assert spec.aggregation in summarize(spec)


def test_default_job_equals_its_yaml_twin():
    builtin, issues = validate_job(default_job_data(), "x")
    assert builtin is not None, issues
    twin = load_job_file(str(next(p for p in EXAMPLES if p.name == "apache-top-urls.yaml")))
    assert dataclasses.replace(twin, source="x") == builtin
