"""The validated, typed form of a declarative job (frozen: built once, then only read).

The field defaults are the job file's defaults: validation (:mod:`consumer.jobs.validate`),
the built-in job and the CLI read them from here (``ReceiverSpec.port`` ...), so each is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.issues import Severity, where
from consumer.flume.defaults import PULL_MAX_BATCH_SIZE, PULL_PARALLELISM, PUSH_HOST, PUSH_PORT

__all__ = [
    "EventTimeSpec",
    "FilterSpec",
    "Issue",
    "JobInvalid",
    "JobSpec",
    "OutputSpec",
    "ParserSpec",
    "ReceiverSpec",
    "UiSpec",
]


@dataclass(frozen=True)
class Issue:
    """One problem in a job (a :class:`common.issues.Issue`; every one refuses the job):
    ``job.yaml:14: aggregation.type: unknown 'median' (...)``."""

    file: str
    line: int | None  # 1-based, None when not tied to a line
    path: str  # the setting, e.g. ``aggregation.type``
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        at = where(self.file, self.line)
        return f"{at}: {self.path}: {self.message}" if self.path else f"{at}: {self.message}"


class JobInvalid(ValueError):
    """A job that cannot run; carries every problem found, in line order."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass(frozen=True)
class ReceiverSpec:
    kind: str = "push"  # push | pull
    host: str = PUSH_HOST
    port: int = PUSH_PORT
    deflate: bool = False
    addresses: tuple[tuple[str, int], ...] = ()
    max_batch_size: int = PULL_MAX_BATCH_SIZE
    parallelism: int = PULL_PARALLELISM
    limits: tuple[tuple[str, int], ...] = ()  # push: listener limit keys (protocol.limits)


@dataclass(frozen=True)
class ParserSpec:
    kind: str = "apache_combined"
    pattern: str | None = None
    columns: tuple[str, ...] = ()
    delimiter: str = ","


@dataclass(frozen=True)
class FilterSpec:
    field: str
    op: str
    value: object = None


@dataclass(frozen=True)
class EventTimeSpec:
    header: str | None = None
    field: str | None = None
    format: str = "epoch_ms"
    allowed_lateness: float = 0.0


@dataclass(frozen=True)
class OutputSpec:
    kind: str  # console | jsonl | csv | sqlite
    top: int = 10
    path: str | None = None
    table: str | None = None


@dataclass(frozen=True)
class UiSpec:
    """The web UI (``ui:``): Spark's port by default, on loopback; port 0 turns it off."""

    host: str = "127.0.0.1"
    port: int = 4040
    top: int | None = None  # rows per window shown; default: the console's top, else 10


@dataclass(frozen=True)
class JobSpec:
    name: str
    receiver: ReceiverSpec = field(default_factory=ReceiverSpec)
    parser: ParserSpec = field(default_factory=ParserSpec)
    filters: tuple[FilterSpec, ...] = ()
    key: tuple[str, ...] = ("url",)
    value: str | None = None
    aggregation: str = "count"
    k: int = 10
    batch: float = 1.0
    window: float = batch  # one batch; a job file's window defaults to its batch
    slide: float = batch  # one batch; for event-time windows validation uses the window
    event_time: EventTimeSpec | None = None
    checkpoint: str | None = None
    outputs: tuple[OutputSpec, ...] = (OutputSpec("console"),)
    ui: UiSpec = field(default_factory=UiSpec)
    source: str = "<job>"
