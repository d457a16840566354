"""The agent's Prometheus exposition: parsed with prometheus_client's own parser, every
Flume counter present under its Prometheus name and equal to the JSON metrics."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.cli import interpret_system_properties
from agent.metrics import MetricsRegistry
from agent.prometheus import metric_name
from agent.runtime.http_metrics import MetricsServer
from tests.e2e.procs import ROOT, Proc, free_port, wait_until


def parse(text: str) -> dict[tuple[str, str, str], float]:
    """(sample name, agent, component) -> value."""
    return {(s.name, s.labels["agent"], s.labels["component"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_monitoring_type_prometheus_is_understood() -> None:
    props = interpret_system_properties(("flume.monitoring.type=prometheus",
                                         "flume.monitoring.port=9100"), "a1")
    assert (props.metrics_format, props.metrics_port, props.warnings) == ("prometheus", 9100, [])
    assert interpret_system_properties(("flume.monitoring.type=http",), "a1").metrics_format \
        == "http"


def busy_registry() -> MetricsRegistry:
    metrics = MetricsRegistry()
    channel = metrics.channel("c1")
    channel.counters["ChannelCapacity"] = 1000
    channel.size_probe = lambda: 250
    channel.increment("EventPutSuccessCount", 900)
    source = metrics.source("r1")
    source.start(1_700_000_000_123)
    source.increment("EventAcceptedCount", 900)
    source.set("OpenConnectionCount", 3)
    metrics.sink("k1").increment("EventDrainSuccessCount", 650)
    metrics.other("SINK_PROCESSOR", "g1", ("FailoverCount", "ActiveSinkIndex")) \
        .increment("FailoverCount", 2)
    return metrics


def test_prometheus_names_follow_the_conventions() -> None:
    assert metric_name("SOURCE", "EventReceivedCount") == ("flume_source_event_received", True)
    assert metric_name("SINK", "EventWriteFail") == ("flume_sink_event_write_fail", True)
    assert metric_name("SOURCE", "OpenConnectionCount") == ("flume_source_open_connections",
                                                             False)
    assert metric_name("CHANNEL", "ChannelFillPercentage") == ("flume_channel_fill_ratio", False)
    assert metric_name("SINK_PROCESSOR", "ActiveSinkIndex") == (
        "flume_sink_processor_active_sink_index", False)


def test_every_json_counter_has_its_series_with_the_same_value() -> None:
    metrics = busy_registry()
    http = MetricsServer(metrics, 0)
    prom = MetricsServer(metrics, 0, exposition="prometheus", agent="a1")
    status, ctype, body = prom.respond("GET", "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    series = parse(body.decode())
    snapshot = json.loads(http.respond("GET", "/metrics")[2])
    assert snapshot == metrics.snapshot()  # the JSON is Flume's, untouched
    checked = 0
    for group, attributes in snapshot.items():
        type_, component = group.split(".", 1)
        for key, text in attributes.items():
            if key == "Type":
                continue
            name, counter = metric_name(type_, key)
            value = series[(name + "_total" if counter else name, "a1", component)]
            scale = {"ChannelFillPercentage": 100, "StartTime": 1000, "StopTime": 1000}
            assert value == pytest.approx(float(text) / scale.get(key, 1), rel=1e-15), key
            checked += 1
    assert checked == len(series)  # nothing more, nothing less
    assert series[("flume_channel_fill_ratio", "a1", "c1")] == 0.25
    assert series[("flume_source_event_accepted_total", "a1", "r1")] == 900
    assert series[("flume_source_open_connections", "a1", "r1")] == 3
    assert series[("flume_source_start_time_seconds", "a1", "r1")] == 1_700_000_000.123
    assert series[("flume_sink_processor_failover_total", "a1", "g1")] == 2


def test_a_running_agent_serves_prometheus_text_with_the_monitoring_type(tmp_path: Path) -> None:
    port = free_port()
    conf = tmp_path / "a.conf"
    conf.write_text((ROOT / "configs" / "example-seq-logger.conf").read_text()
                    .replace("totalEvents = 100", "totalEvents = 500")
                    .replace("type = logger", "type = null"))
    agent = Proc("flume-agent", [str(ROOT / ".venv" / "bin" / "flume-agent"), "-f", str(conf),
                                 "-n", "a1", "-Dflume.monitoring.type=prometheus",
                                 f"-Dflume.monitoring.port={port}"], tmp_path / "agent.log")
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> dict[tuple[str, str, str], float]:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return parse(resp.read().decode())
        except OSError:
            return {}

    try:
        wait_until(lambda: scrape().get(("flume_sink_event_drain_success_total", "a1", "k1"))
                   == 500, 30, "the 500 events to drain", [agent])
        series = scrape()
        assert series[("flume_source_event_accepted_total", "a1", "r1")] == 500
        assert series[("flume_channel_event_put_success_total", "a1", "c1")] == 500
        assert series[("flume_channel_size", "a1", "c1")] == 0
        assert series[("flume_channel_capacity", "a1", "c1")] == 1000
        assert series[("flume_channel_fill_ratio", "a1", "c1")] == 0
    finally:
        assert agent.stop() == 0, agent.tail()
