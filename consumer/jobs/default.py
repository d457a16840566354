"""The built-in default job: top URLs of an Apache access log, Spark's classic Flume example.

Push receiver on 127.0.0.1:9092, 1 s batches, request counts per URL over a 300 s window
sliding every 1 s, the top 10 printed in pprint format as ``(url, count)``, count descending,
ties by URL. It is an ordinary declarative job (the same data a YAML file would hold), so the
CLI options only override settings and the same validation applies; the equivalent YAML is
``configs/jobs/apache-top-urls.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consumer.jobs.spec import JobSpec, OutputSpec, ReceiverSpec

__all__ = ["DEFAULT_JOB_NAME", "OPTION_NAMES", "WINDOW_S", "default_job_data"]

DEFAULT_JOB_NAME = "apache_top_urls"
WINDOW_S = 300.0  # the classic example's five minutes (a job file's own default is one batch)

# validation paths -> the CLI options that set them (for error messages)
OPTION_NAMES = {
    "receiver.host": "--host", "receiver.port": "--port", "receiver.addresses": "--pull",
    "batch": "--batch", "window": "--window", "slide": "--slide", "outputs[0].top": "--top",
    "outputs[1].path": "--sqlite", "checkpoint": "--checkpoint",
}


def default_job_data(host: str = ReceiverSpec.host, port: int = ReceiverSpec.port,
                     pull: Sequence[str] = (), checkpoint: str | None = None,
                     batch: float = JobSpec.batch, window: float = WINDOW_S,
                     slide: float = JobSpec.slide, top: int = OutputSpec.top,
                     sqlite: str | None = None) -> dict[str, Any]:
    """The default job as raw job data (validate it with ``validate_job``)."""
    receiver: dict[str, Any] = (
        {"type": "pull", "addresses": list(pull)} if pull
        else {"type": "push", "host": host, "port": port})
    outputs: list[dict[str, Any]] = [{"type": "console", "top": top}]
    if sqlite:
        outputs.append({"type": "sqlite", "path": sqlite, "table": DEFAULT_JOB_NAME})
    data: dict[str, Any] = {
        "name": DEFAULT_JOB_NAME,
        "receiver": receiver,
        "parser": "apache_combined",
        "key": "url",
        "aggregation": "count",
        "batch": batch,
        "window": window,
        "slide": slide,
        "outputs": outputs,
    }
    if checkpoint:
        data["checkpoint"] = checkpoint
    return data
