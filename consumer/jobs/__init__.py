"""Declarative streaming jobs: a YAML spec (or the built-in default) -> a DStream graph.

``load_job_file(path)`` parses and validates (every problem, with file and line);
``build_job(ssc, spec, events)`` wires the graph onto an input DStream of Flume
``(headers, body)`` records; ``consumer.jobs.runner.run_job`` adds the receiver, signals and
the periodic log summary around it.
"""

from consumer.jobs.spec import Issue, JobInvalid, JobSpec
from consumer.jobs.validate import load_job_file, validate_job

__all__ = ["Issue", "JobInvalid", "JobSpec", "load_job_file", "validate_job"]
