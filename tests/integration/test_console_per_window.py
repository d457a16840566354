"""Console output per window: a batch that closes several event-time windows prints the top
N of EACH of them, in time order (it used to print the top N across all of them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.windows import EventWindow
from consumer.jobs.graph import build_job
from consumer.jobs.observe import BatchReport
from consumer.jobs.validate import load_job_file
from consumer.streaming import StreamingContext

LINE = ('10.0.0.1 - - [10/Oct/2023:13:{m:02d}:{s:02d} +0000] "GET {url} HTTP/1.1" 200 5 "-" '
        '"curl/8"')
BASE = 1696946100  # 10/Oct/2023:13:55:00 UTC
DASHES = "-" * 43


def hit(url: str, second: int) -> tuple:
    m, s = divmod(55 * 60 + second, 60)
    return ({}, LINE.format(url=url, m=m, s=s))


def test_a_batch_closing_three_windows_prints_three_blocks(tmp_path: Path, capsys) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text("parser: apache_combined\nkey: url\nevent_time: {field: time}\n"
                        "window: 10\noutputs:\n  - {type: console, top: 2}\n")
    spec = load_job_file(str(job_file))
    # one file dropped at once: three windows' worth of lines, and one that closes them
    lines = [hit("/a", 1), hit("/b", 2), hit("/a", 3), hit("/c", 4),      # [0, 10)
             hit("/d", 11), hit("/d", 12), hit("/e", 13),                  # [10, 20)
             hit("/f", 25),                                                # [20, 30)
             hit("/z", 40)]                                                # watermark 40
    ssc = StreamingContext(SparkContext(), spec.batch, clock=ManualClock(0))
    job = build_job(ssc, spec, ssc.queueStream([lines], default=[]))
    reports: list[BatchReport] = []
    job.observers.append(reports.append)
    ssc.step()
    out = capsys.readouterr().out
    when = f"Time: {datetime.fromtimestamp(1)}"

    def block(start: int, *rows: tuple, more: bool = False) -> list[str]:
        lines = [DASHES, when, DASHES]
        lines += [str(EventWindow(float(BASE + start), BASE + start + 10.0, k, v))
                  for k, v in rows]
        return [*lines, *(["..."] if more else []), ""]

    assert out.split("\n") == [
        *block(0, ("/a", 2), ("/b", 1), more=True),
        *block(10, ("/d", 2), ("/e", 1)),
        *block(20, ("/f", 1)),
        "",
    ]
    windows = reports[-1].windows
    assert [(w.start_ms, w.end_ms, w.keys) for w in windows] == [
        (BASE * 1000 + s, BASE * 1000 + s + 10_000, keys)
        for s, keys in ((0, 3), (10_000, 2), (20_000, 1))]
    assert windows[0].pairs() == [("/a", 2), ("/b", 1)]


def test_a_batch_closing_no_window_prints_one_empty_block_as_pprint(tmp_path: Path,
                                                                     capsys) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text("key: url\nevent_time: {field: time}\nwindow: 10\n")
    spec = load_job_file(str(job_file))
    ssc = StreamingContext(SparkContext(), spec.batch, clock=ManualClock(0))
    build_job(ssc, spec, ssc.queueStream([[hit("/a", 1)]], default=[]))
    ssc.step()
    assert capsys.readouterr().out == "\n".join(
        [DASHES, f"Time: {datetime.fromtimestamp(1)}", DASHES, "", ""])
