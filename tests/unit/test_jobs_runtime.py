"""Batch timings / periodic summary, and the two-stage signal handling."""

from __future__ import annotations

import logging
import signal
import threading

import pytest

from consumer import SparkContext
from consumer.jobs.logsummary import BatchSample, BatchTimer, SummaryWindow
from consumer.jobs.runner import EXIT_FORCED, SignalStopper


class Times:
    def __init__(self) -> None:
        self.clock_ms = 0
        self.perf = 0.0


def test_timer_measures_processing_and_scheduling_delay_like_spark():
    t = Times()
    lines: list[str] = []
    timer = BatchTimer(lambda: t.clock_ms, lambda: t.perf, interval_s=10, emit=lines.append)
    t.clock_ms, t.perf = 1_030, 5.0  # batch 1000 starts 30 ms late
    timer.begin(1_000, 42)
    t.perf = 5.012
    sample = timer.end(1_000)
    assert sample is not None
    assert (sample.batch_ms, sample.events) == (1_000, 42)
    assert round(sample.processing_s, 3) == 0.012
    assert sample.scheduling_delay_s == 0.03
    assert timer.end(1_000) is None  # no begin for it any more
    assert lines == []


def test_one_summary_line_per_interval_not_per_batch():
    t = Times()
    lines: list[str] = []
    dropped = {"malformed": 0, "late": 0}
    timer = BatchTimer(lambda: t.clock_ms, lambda: t.perf, interval_s=10,
                       dropped=lambda: dict(dropped), emit=lines.append)
    for i in range(1, 22):  # 21 one-second batches, 100 events each, 62.5 ms of work
        t.clock_ms = i * 1000 + 2
        t.perf = float(i)
        timer.begin(i * 1000, 100)
        t.perf += 0.0625
        dropped["malformed"] += 1
        timer.end(i * 1000)
    assert len(lines) == 2
    assert lines[0] == ("11 batches in 10.0 s; 1100 events (110.0 events/s); processing time "
                        "avg 62.5 ms, max 62.5 ms; scheduling delay avg 2.0 ms, max 2.0 ms; "
                        "dropped: malformed 11")
    assert lines[1].startswith("10 batches in 10.0 s; 1000 events (100.0 events/s)")
    assert lines[1].endswith("dropped: malformed 10")


def test_summary_window_is_pure_and_resets():
    w = SummaryWindow(interval_s=5)
    assert not w.due(100.0)
    w.add(BatchSample(1000, 10, 0.001, 0.0), 100.0)
    assert not w.due(104.9) and w.due(105.0)
    assert w.summary(105.0).startswith("1 batches in 5.0 s; 10 events (2.0 events/s)")
    assert w.samples == [] and not w.due(109.0)


class FakeContext:
    def __init__(self) -> None:
        self.stops: list[dict] = []
        self.stopped = threading.Event()

    def stop(self, **kwargs) -> None:
        self.stops.append(kwargs)
        self.stopped.set()


def test_first_signal_stops_gracefully_second_exits_at_once():
    ssc = FakeContext()
    exits: list[int] = []
    stopper = SignalStopper(lambda: ssc, force_exit=exits.append)
    stopper.handle(signal.SIGTERM)
    assert ssc.stopped.wait(5)
    assert stopper.stopper is not None
    stopper.stopper.join(5)
    assert ssc.stops == [{"stopSparkContext": False, "stopGraceFully": True}]
    assert exits == []
    stopper.handle(signal.SIGINT)
    assert exits == [EXIT_FORCED]
    assert len(ssc.stops) == 1


def test_signal_before_anything_streams_exits_at_once():
    exits: list[int] = []
    SignalStopper(lambda: None, force_exit=exits.append).handle(signal.SIGINT)
    assert exits == [130]


def test_install_and_uninstall_restore_previous_handlers():
    before = signal.getsignal(signal.SIGTERM)
    stopper = SignalStopper(lambda: None)
    stopper.install()
    assert signal.getsignal(signal.SIGTERM) == stopper.handle
    stopper.uninstall()
    assert signal.getsignal(signal.SIGTERM) == before


def test_one_signal_sent_twice_at_once_is_one_graceful_stop():
    """timeout(1) sends SIGTERM to the child and to its group: the same request twice."""
    ssc = FakeContext()
    exits: list[int] = []
    clock = iter([100.0, 100.0001, 101.0])
    stopper = SignalStopper(lambda: ssc, force_exit=exits.append, now=lambda: next(clock))
    stopper.handle(signal.SIGTERM)
    stopper.handle(signal.SIGTERM)
    assert ssc.stopped.wait(5)
    assert stopper.stopper is not None
    stopper.stopper.join(5)
    assert exits == [] and stopper.signals == 1
    stopper.handle(signal.SIGTERM)  # a second later: meant
    assert exits == [EXIT_FORCED]


def test_a_script_s_own_ctrl_c_outside_streaming_is_passed_on():
    """python job.py: before or after streaming, Ctrl-C is Python's KeyboardInterrupt."""
    stopper = SignalStopper(lambda: None, force_exit=lambda code: None, passthrough=True)
    previous = signal.getsignal(signal.SIGINT)
    stopper.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            stopper.handle(signal.SIGINT)
    finally:
        stopper.uninstall()
    assert signal.getsignal(signal.SIGINT) is previous


def test_set_log_level_covers_every_flumelet_logger():
    sc = SparkContext(appName="levels")
    before = {n: logging.getLogger(n).level for n in ("consumer", "protocol", "common")}
    try:
        sc.setLogLevel("ERROR")
        for name in ("consumer.jobs", "protocol.transport", "common.clock"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.ERROR
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)
        sc.stop()
