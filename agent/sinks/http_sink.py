"""The http sink (Flume 1.8+): POSTs each event body to ``endpoint``, one event per transaction.

What a status code does is Flume's table: ``rollback``, ``backoff`` and ``incrementMetrics``
each take ``defaultRollback`` / ``defaultBackoff`` / ``defaultIncrementMetrics`` unless a
``<key>.<code>`` (e.g. ``rollback.200``) or ``<key>.<n>XX`` (e.g. ``backoff.4XX``) override
matches, the exact code first. A rolled-back event is sent again later; a committed one is
gone. An unreachable endpoint or a timeout (``connectTimeout``/``requestTimeout``) rolls back
and backs off (``EventWriteFail``). Empty bodies are taken and dropped without a request. A
back-off after a rollback is a RETRY for the runner (a doubling wait that new events do not
cut short), so a failing endpoint is not hammered by a busy channel.

Flume's defaults roll back and back off on every code, 2XX included, so a configuration that
sets no override resends every event forever; the sink warns about that at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from agent.components import Sink, Status
from agent.config.converters import integer, to_bool
from agent.config.issues import IssueCode
from agent.config.schema import Key, KeyFamily, Problem, RuleContext, Schema
from agent.metrics import CounterGroup
from agent.sinks import rollback_quietly

if TYPE_CHECKING:
    from agent.config.model import ComponentSpec
    from agent.registry import BuildContext

log = logging.getLogger(__name__)


def _flag(value: object) -> bool:
    """Java's ``Boolean.valueOf``: true only for "true", any case."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


@dataclass(frozen=True)
class StatusPolicy:
    """Flume's per-status-code decisions, pure."""

    default_backoff: bool = True
    default_rollback: bool = True
    default_increment_metrics: bool = False
    backoff: Mapping[str, bool] = field(default_factory=dict)
    rollback: Mapping[str, bool] = field(default_factory=dict)
    increment_metrics: Mapping[str, bool] = field(default_factory=dict)

    @staticmethod
    def _find(code: int, overrides: Mapping[str, bool], default: bool) -> bool:
        text = str(code)
        value = overrides.get(text)
        if value is None:
            value = overrides.get(text[:1] + "XX")
        return default if value is None else value

    def decide(self, code: int) -> tuple[bool, bool, bool]:
        """(rollback, backoff, increment metrics) for an HTTP status code."""
        if code < 100:  # not a readable status: Flume rolls back and backs off
            return True, True, False
        return (self._find(code, self.rollback, self.default_rollback),
                self._find(code, self.backoff, self.default_backoff),
                self._find(code, self.increment_metrics, self.default_increment_metrics))


def policy_from_settings(settings: Mapping[str, Any]) -> StatusPolicy:
    def overrides(prefix: str) -> dict[str, bool]:
        found = dict(settings.get(prefix) or {})  # a gathered key family
        found.update({k[len(prefix) + 1:]: v for k, v in settings.items()
                      if k.startswith(prefix + ".")})
        return {str(code).upper(): _flag(v) for code, v in found.items()}

    return StatusPolicy(
        default_backoff=_flag(settings.get("defaultBackoff", True)),
        default_rollback=_flag(settings.get("defaultRollback", True)),
        default_increment_metrics=_flag(settings.get("defaultIncrementMetrics", False)),
        backoff=overrides("backoff"), rollback=overrides("rollback"),
        increment_metrics=overrides("incrementMetrics"))


def _rules(settings: dict[str, Any], ctx: RuleContext) -> list[Problem]:
    parts = urlsplit(settings["endpoint"])
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [Problem(IssueCode.BAD_VALUE, f"endpoint {settings['endpoint']!r} is not an "
                        "http(s) URL", "endpoint")]
    return []


class HttpSink(Sink):
    SCHEMA = Schema(
        keys=(
            Key("endpoint", required=True),
            Key("connectTimeout", integer(1), 5000),
            Key("requestTimeout", integer(1), 5000),
            Key("contentTypeHeader", default="text/plain"),
            Key("acceptHeader", default="text/plain"),
            Key("defaultBackoff", to_bool, True),
            Key("defaultRollback", to_bool, True),
            Key("defaultIncrementMetrics", to_bool, False),
        ),
        families=(KeyFamily("backoff"), KeyFamily("rollback"), KeyFamily("incrementMetrics")),
        rules=_rules,
    )

    def __init__(self, name: str, endpoint: str, *, policy: StatusPolicy | None = None,
                 connect_timeout_ms: int = 5000, request_timeout_ms: int = 5000,
                 content_type: str = "text/plain", accept: str = "text/plain",
                 counter: CounterGroup | None = None) -> None:
        super().__init__(name)
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"sink {name}: endpoint {endpoint!r} is not an http(s) URL")
        if connect_timeout_ms <= 0 or request_timeout_ms <= 0:
            raise ValueError(f"sink {name}: connectTimeout and requestTimeout must be > 0")
        self.endpoint = endpoint
        self.policy = policy or StatusPolicy()
        self.timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout_ms / 1000,
                                             sock_read=request_timeout_ms / 1000)
        self.headers = {"Content-Type": content_type, "Accept": accept}
        self.counter = counter if counter is not None else CounterGroup("SINK", name)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_spec(cls, spec: ComponentSpec, ctx: BuildContext) -> HttpSink:
        s = spec.settings
        return cls(spec.name, s["endpoint"], policy=policy_from_settings(s),
                   connect_timeout_ms=s["connectTimeout"], request_timeout_ms=s["requestTimeout"],
                   content_type=s["contentTypeHeader"], accept=s["acceptHeader"],
                   counter=ctx.metrics.sink(spec.name))

    async def start(self) -> None:
        if self.policy.decide(200)[0]:
            log.warning("sink %s: a 200 answer rolls the event back (Flume's defaults): every "
                        "event will be sent again and again; set rollback.200 = false (or "
                        "rollback.2XX) and backoff.200 = false", self.name)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)

    async def stop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def process(self) -> Status:
        if self._session is None:
            raise RuntimeError(f"sink {self.name}: process() called before start()")
        counters = self.counter.counters
        tx = self.channel.transaction()
        tx.begin()
        try:
            event = tx.take()
            if event is None or not event.body:
                tx.commit()
                return Status.BACKOFF
            counters["EventDrainAttemptCount"] += 1
            try:
                async with self._session.post(self.endpoint, data=event.body,
                                              headers=self.headers) as response:
                    code = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                rollback_quietly(tx)
                counters["EventWriteFail"] += 1
                log.error("sink %s: POST to %s failed: %s", self.name, self.endpoint,
                          exc or type(exc).__name__)
                return Status.RETRY
            rollback, backoff, count = self.policy.decide(code)
            if rollback:
                tx.rollback()
                log.info("sink %s: got status code %d; rolled the event back%s", self.name,
                         code, " and backed off" if backoff else " for retry")
            else:
                tx.commit()
            if count:
                counters["EventDrainSuccessCount"] += 1
            if not backoff:
                return Status.READY
            return Status.RETRY if rollback else Status.BACKOFF
        except BaseException:
            rollback_quietly(tx)
            raise
        finally:
            tx.close()
