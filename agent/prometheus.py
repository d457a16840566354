"""Flume's counters in Prometheus' text format (``-Dflume.monitoring.type=prometheus``).

Read from the same snapshot Flume's JSON is rendered from, so both always agree. Names
follow Prometheus' conventions, with the component as a label rather than in the name:
``flume_source_event_received_total{agent="a1",component="r1"}`` for Flume's
``SOURCE.r1 EventReceivedCount``; counters (Flume's ``*Count`` and ``*Fail`` keys) end in
``_total``; ``ChannelSize``, ``ChannelCapacity`` and ``OpenConnectionCount`` are gauges
(``flume_channel_size``, ``flume_channel_capacity``, ``flume_source_open_connections``);
``ChannelFillPercentage`` becomes ``flume_channel_fill_ratio`` (0 to 1); ``StartTime`` and
``StopTime`` become ``flume_<type>_start_time_seconds`` / ``..._stop_time_seconds`` (0 while
running). A counter restarts at 0 when its component starts, as in Flume; Prometheus'
``rate()`` treats that as a reset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.metrics import MetricsRegistry

__all__ = ["CONTENT_TYPE", "FlumeCollector", "metric_name", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
GAUGES = {"ChannelSize": "size", "ChannelCapacity": "capacity",
          "OpenConnectionCount": "open_connections",
          "ChannelFillPercentage": "fill_ratio", "StartTime": "start_time_seconds",
          "StopTime": "stop_time_seconds"}
DIVISOR = {"ChannelFillPercentage": 100, "StartTime": 1000, "StopTime": 1000}
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def metric_name(type_: str, key: str) -> tuple[str, bool]:
    """(family name without ``_total``, is a counter) for a Flume counter key."""
    prefix = "flume_" + re.sub(r"[^a-z0-9_]", "_", type_.lower())
    if key in GAUGES:
        return f"{prefix}_{GAUGES[key]}", False
    counter = key.endswith(("Count", "Fail"))
    stem = key[: -len("Count")] if key.endswith("Count") else key
    return f"{prefix}_{_WORD.sub('_', stem).lower()}", counter


class FlumeCollector:
    """A prometheus_client collector over one agent's :class:`MetricsRegistry`."""

    def __init__(self, metrics: MetricsRegistry, agent: str) -> None:
        self.metrics = metrics
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for group_key, attributes in self.metrics.snapshot().items():
            type_, component = group_key.split(".", 1)
            for key, text in attributes.items():
                if key == "Type":
                    continue
                name, counter = metric_name(type_, key)
                family = families.get(name)
                if family is None:
                    doc = f"Flume {type_} {key}"
                    family = families[name] = (
                        CounterMetricFamily(name, doc, labels=("agent", "component")) if counter
                        else GaugeMetricFamily(name, doc, labels=("agent", "component")))
                family.add_metric((self.agent, component), float(text) / DIVISOR.get(key, 1))
        yield from families.values()


def render(metrics: MetricsRegistry, agent: str) -> bytes:
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlumeCollector(metrics, agent))
    return generate_latest(registry)
