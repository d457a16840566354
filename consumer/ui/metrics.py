"""The consumer's ``/metrics`` in Prometheus' text format (prometheus_client), read from the
UI's :class:`~consumer.ui.model.JobView` at scrape time.

Every series has a ``job`` label (the job's name); receivers add ``receiver`` (its address).
Counters end in ``_total``; batch timings are summaries (``_sum`` and ``_count``, so
``rate(x_sum) / rate(x_count)`` is the mean over any range) plus the last batch's value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from consumer.ui.model import JobView

__all__ = ["CONTENT_TYPE", "JobCollector", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
PREFIX = "flumelet_consumer"


class JobCollector:
    def __init__(self, view: JobView, receivers: Sequence[Mapping[str, Any]]) -> None:
        self.view = view
        self.receivers = receivers

    def collect(self) -> Iterator[Metric]:
        view, job = self.view, self.view.info.name
        labels = ("job",)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            family.add_metric((job,), value)
            return family

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            family.add_metric((job,), value)
            return family

        yield counter("batches", "Batches completed", view.completed)
        yield counter("input_records", "Records received (events)", view.records)
        dropped = CounterMetricFamily(f"{PREFIX}_records_dropped",
                                      "Records dropped, by reason", labels=("job", "reason"))
        for reason, count in sorted(view.dropped_total.items()):
            dropped.add_metric((job, reason), count)
        yield dropped
        last = view.batches[-1] if view.batches else None
        for name, doc, attr in (
                ("batch_processing_seconds", "Processing time of batches", "processing_ms"),
                ("batch_scheduling_delay_seconds", "Scheduling delay of batches",
                 "scheduling_delay_ms")):
            summary = SummaryMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            summary.add_metric((job,), count_value=view.completed,
                               sum_value=getattr(view, f"{attr}_total") / 1000)
            yield summary
            yield gauge(f"last_{name}", f"{doc} (the last one)",
                        getattr(last, attr) / 1000 if last else 0.0)
        yield gauge("batch_interval_seconds", "Batch interval", view.info.batch_ms / 1000)
        yield gauge("input_rate", "Records per second over the last 10 batches",
                    view.input_rate())
        peers = GaugeMetricFamily(f"{PREFIX}_receiver_peers",
                                  "Agents connected (push) or sinks reachable (pull)",
                                  labels=("job", "receiver"))
        pending = GaugeMetricFamily(f"{PREFIX}_receiver_pending_records",
                                    "Records received for the next batch",
                                    labels=("job", "receiver"))
        backlog = GaugeMetricFamily(f"{PREFIX}_receiver_backlog_calls",
                                    "Calls answered OK (push) or batches polled (pull) and "
                                    "not processed yet", labels=("job", "receiver"))
        for r in self.receivers:
            key = (job, str(r.get("address", "")))
            peers.add_metric(key, sum(1 for p in r.get("peers", ()) if "(down)" not in p))
            pending.add_metric(key, r.get("pending_records", 0))
            backlog.add_metric(key, r.get("backlog_calls", 0))
        yield from (peers, pending, backlog)


def render(view: JobView, receivers: Sequence[Mapping[str, Any]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobCollector(view, receivers))
    return generate_latest(registry)
