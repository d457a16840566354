"""One vocabulary for problems: the agent's config issues and a job's issues."""

from __future__ import annotations

from agent.config.issues import ConfigIssue, IssueCode
from common.issues import Issue, Severity, where
from consumer.jobs.spec import Issue as JobIssue


def test_both_kinds_are_common_issues_and_place_themselves_alike():
    config = ConfigIssue(IssueCode.BAD_VALUE, "bad", "a.conf", 3, "a1.sinks.k1")
    job = JobIssue("job.yaml", 3, "window", "bad")
    for issue in (config, job):
        assert isinstance(issue, Issue)
        assert issue.is_error and issue.severity is Severity.ERROR
    assert str(config).startswith("a.conf:3: ") and str(job).startswith("job.yaml:3: ")
    assert str(job) == "job.yaml:3: window: bad"
    assert str(config) == "a.conf:3: a1.sinks.k1 [BAD_VALUE] bad"


def test_where_leaves_out_a_line_the_problem_does_not_have():
    assert where("job.yaml", 14) == "job.yaml:14"
    assert where("job.yaml", None) == "job.yaml"
    assert where("a.conf", 0) == "a.conf"  # 0: a -D override or a default
    assert str(JobIssue("flume-consumer", None, "", "bad")) == "flume-consumer: bad"
    warning = ConfigIssue(IssueCode.UNKNOWN_KEY, "ignored", "a.conf", severity=Severity.WARNING)
    assert str(warning) == "a.conf: [UNKNOWN_KEY] warning: ignored" and not warning.is_error
