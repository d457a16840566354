"""The UI's pure data model and the consumer's Prometheus text built from it."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from consumer.engine.windows import EventWindow
from consumer.jobs.logsummary import BatchSample
from consumer.jobs.observe import BatchReport
from consumer.jobs.ranking import WindowTop, top_per_window
from consumer.ui import metrics
from consumer.ui.model import JobInfo, JobView

INFO = JobInfo("top", "count by url", "push receiver on 127.0.0.1:9092", 1000, 10_000, 3, 0)


def report(t: int, events: int, dropped: dict[str, int], *windows: WindowTop) -> BatchReport:
    return BatchReport(BatchSample(t, events, 0.004, 0.25), windows, dropped)


def test_rows_hold_per_batch_drops_and_totals_add_up() -> None:
    view = JobView(INFO, retained=2)
    window = WindowTop(0, 10_000, (("/a", 5), ("/b", 2)), 7)
    view.add(report(1000, 10, {"malformed": 1, "late": 0}))
    view.add(report(2000, 30, {"malformed": 4, "late": 2}, window))
    row = view.add(report(3000, 20, {"malformed": 4, "late": 2}))
    assert row.json() == {"time": 3000, "records": 20, "scheduling_delay": 250.0,
                          "processing": 4.0, "total_delay": 254.0, "dropped": {},
                          "windows": 0}
    state = view.state([{"name": "r"}], now_ms=3500)
    assert [b["dropped"] for b in state["batches"]] == [{"malformed": 3, "late": 2}, {}]
    assert state["totals"] == {"batches": 3, "records": 60,
                               "dropped": {"malformed": 4, "late": 2}, "input_rate": 25.0}
    assert state["windows"] == [{"start": 0, "end": 10_000, "keys": 7,
                                 "top": [["/a", 5], ["/b", 2]]}]  # kept until replaced
    assert state["receivers"] == [{"name": "r"}]


def test_event_time_rows_become_one_window_each_in_time_order() -> None:
    rows = [EventWindow(10.0, 20.0, "/x", 1), EventWindow(0.0, 10.0, "/b", 2),
            EventWindow(0.0, 10.0, "/a", 2), EventWindow(0.0, 10.0, "/c", 9)]
    windows = top_per_window(rows, 2)
    assert [(w.start_ms, w.end_ms, w.keys, w.pairs()) for w in windows] == [
        (0, 10_000, 3, [("/c", 9), ("/a", 2)]), (10_000, 20_000, 1, [("/x", 1)])]
    assert top_per_window([], 2) == []
    assert top_per_window([], 2, (0, 1000)) == [WindowTop(0, 1000, (), 0)]


def test_consumer_metrics_parse_and_match_the_view() -> None:
    view = JobView(INFO)
    view.add(report(1000, 10, {"malformed": 1}))
    view.add(report(2000, 30, {"malformed": 4}))
    receivers = [{"address": "127.0.0.1:9092", "peers": ["127.0.0.1:5000"],
                  "pending_records": 7, "backlog_calls": 2}]
    samples = {(s.name, s.labels.get("reason", s.labels.get("receiver", ""))): s.value
               for f in text_string_to_metric_families(metrics.render(view, receivers).decode())
               for s in f.samples}
    assert samples[("flumelet_consumer_batches_total", "")] == 2
    assert samples[("flumelet_consumer_input_records_total", "")] == 40
    assert samples[("flumelet_consumer_records_dropped_total", "malformed")] == 4
    assert samples[("flumelet_consumer_batch_processing_seconds_count", "")] == 2
    assert samples[("flumelet_consumer_batch_scheduling_delay_seconds_sum", "")] == 0.5
    assert samples[("flumelet_consumer_receiver_peers", "127.0.0.1:9092")] == 1
    assert samples[("flumelet_consumer_receiver_pending_records", "127.0.0.1:9092")] == 7
