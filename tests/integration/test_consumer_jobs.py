"""Declarative jobs end to end on the real engine, driven by queueStream and a manual clock."""

from __future__ import annotations

import asyncio
import random
import socket
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

from common.clock import ManualClock
from consumer import SparkContext
from consumer.engine.windows import EventWindow
from consumer.jobs.default import default_job_data
from consumer.jobs.graph import build_job
from consumer.jobs.runner import EXIT_OK, run_job
from consumer.jobs.spec import JobSpec, ReceiverSpec
from consumer.jobs.validate import load_job_file, validate_job
from consumer.streaming import StreamingContext
from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import RpcClient

LINE = ('10.0.0.{h} - - [10/Oct/2023:13:55:{s:02d} +0000] "GET {url} HTTP/1.1" {st} {b} "-" '
        '"curl/8"')


def hit(url: str, s: int = 0, st: int = 200, b: int = 100, h: int = 1, **headers) -> tuple:
    return (headers, LINE.format(url=url, s=s, st=st, b=b, h=h))


def default_spec(**overrides) -> JobSpec:
    spec, issues = validate_job(default_job_data(**overrides), "test")
    assert spec is not None, issues
    return spec


def yaml_spec(tmp_path: Path, text: str) -> JobSpec:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return load_job_file(str(path))


def run_steps(spec: JobSpec, batches: list[list[tuple]], clock_ms: int = 0):
    ssc = StreamingContext(SparkContext(), spec.batch, clock=ManualClock(clock_ms / 1000))
    if spec.checkpoint:
        ssc.checkpoint(spec.checkpoint)
    job = build_job(ssc, spec, ssc.queueStream(batches, default=[]))
    for _ in batches:
        ssc.step()
    return ssc, job


def header(ms: int) -> str:
    return f"Time: {datetime.fromtimestamp(ms / 1000)}"


def test_default_job_prints_top_urls_in_pprint_format_ties_by_url(capsys):
    spec = default_spec(top=3)
    batches = [
        [hit("/b"), hit("/a"), hit("/c"), hit("/b"), ({}, "not a log line")],
        [hit("/d"), hit("/a"), hit("/a")],
    ]
    _ssc, job = run_steps(spec, batches)
    dashes = "-" * 43
    assert capsys.readouterr().out == "\n".join([
        dashes, header(1000), dashes, "('/b', 2)", "('/a', 1)", "('/c', 1)", "",
        dashes, header(2000), dashes, "('/a', 3)", "('/b', 2)", "('/c', 1)", "...", "", "",
    ])
    assert (job.counters.events, job.counters.malformed) == (8, 1)
    assert job.timer.last is not None and job.timer.last.events == 3


def test_window_slides_and_forgets_old_batches(capsys):
    spec = default_spec(window=2, slide=2, top=5)
    batches = [[hit("/a")], [hit("/b")], [hit("/a"), hit("/c")], [], []]
    run_steps(spec, batches)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("(")]
    # slides at 2 s, 4 s and 6 s (zero time 0): windows (0,2], (2,4], (4,6]
    assert printed == ["('/a', 1)", "('/b', 1)", "('/a', 1)", "('/c', 1)"]


def test_incremental_path_with_checkpoint_matches_recomputation(tmp_path, capsys):
    rng = random.Random(7)
    urls = [f"/p{i}" for i in range(6)]
    batches = [[hit(rng.choice(urls)) for _ in range(rng.randrange(0, 8))] for _ in range(25)]
    run_steps(default_spec(window=5, slide=1, top=100), batches)
    recomputed = capsys.readouterr().out
    run_steps(default_spec(window=5, slide=1, top=100, checkpoint=str(tmp_path / "ckpt")),
              batches)
    assert capsys.readouterr().out == recomputed
    assert (tmp_path / "ckpt").exists() and any((tmp_path / "ckpt").iterdir())


def test_yaml_sum_job_with_filters_writes_sqlite_rows_per_slide(tmp_path, capsys):
    db = tmp_path / "res.db"
    spec = yaml_spec(tmp_path, f"""
name: bytes_by_status
parser: apache_combined
filters:
  - {{field: url, op: regex, value: "^/api/"}}
key: status
value: bytes
aggregation: sum
window: 2
slide: 1
outputs:
  - {{type: sqlite, path: "{db}"}}
  - {{type: console, top: 1}}
""")
    batches = [[hit("/api/x", st=200, b=10), hit("/api/y", st=500, b=1), hit("/home", b=999)],
               [hit("/api/x", st=200, b=5)],
               []]
    run_steps(spec, batches)
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT window_start, window_end, key, value FROM bytes_by_status "
                           "ORDER BY window_end, key").fetchall()
    assert got == [(-1000, 1000, "200", 10), (-1000, 1000, "500", 1),
                   (0, 2000, "200", 15), (0, 2000, "500", 1),
                   (1000, 3000, "200", 5)]
    out = capsys.readouterr().out
    assert "(200, 15)" in out and "...\n" in out


def test_yaml_top_k_and_avg_jobs_on_json_events(tmp_path, capsys):
    events: list[tuple[dict[str, str], str]] = [
              ({}, '{"user": "ann", "page": "/a", "ms": 10}'),
              ({}, '{"user": "ann", "page": "/b", "ms": 20}'),
              ({}, '{"user": "ann", "page": "/a", "ms": 30}'),
              ({}, '{"user": "bob", "page": "/c", "ms": "4"}'),
              ({}, '{"user": "bob"}')]
    spec = yaml_spec(tmp_path, """
parser: json
key: user
value: page
aggregation: {type: top_k, k: 1}
outputs: [console]
""")
    _ssc, job = run_steps(spec, [events])
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:5] == ["('ann', [('/a', 2)])", "('bob', [('/c', 1)])"]
    assert job.counters.missing_field == 1
    spec = yaml_spec(tmp_path, "parser: json\nkey: user\nvalue: ms\naggregation: avg\n")
    run_steps(spec, [events])
    assert capsys.readouterr().out.splitlines()[3:5] == ["('ann', 20.0)", "('bob', 4.0)"]


def test_event_time_job_emits_closed_windows_and_counts_late_records(tmp_path, capsys):
    db = tmp_path / "et.db"
    spec = yaml_spec(tmp_path, f"""
parser: apache_combined
key: url
event_time: {{field: time, allowed_lateness: 5}}
window: 10
outputs:
  - console
  - {{type: sqlite, path: "{db}", table: hits}}
""")
    base = 1696946100  # 10/Oct/2023:13:55:00 UTC
    batches = [[hit("/a", s=1), hit("/b", s=2), hit("/a", s=9)],
               [hit("/a", s=16)],          # watermark 11: closes [0, 10)
               [hit("/a", s=3)],           # too late: counted, dropped
               [hit("/b", s=40)]]          # watermark 35: closes [10, 20)
    _ssc, job = run_steps(spec, batches)
    out = capsys.readouterr().out
    assert str(EventWindow(float(base), base + 10.0, "/a", 2)) in out
    assert job.event_windows.lateRecords == 1
    assert job.dropped()["late"] == 1
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT window_start, window_end, key, value FROM hits "
                           "ORDER BY window_start, key").fetchall()
    ms = base * 1000
    assert got == [(ms, ms + 10_000, "/a", 2), (ms, ms + 10_000, "/b", 1),
                   (ms + 10_000, ms + 20_000, "/a", 1)]


def test_checkpointed_job_resumes_its_window_after_a_restart(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    db = tmp_path / "out.db"
    spec = default_spec(window=5, slide=1, checkpoint=ckpt, sqlite=str(db))

    def setup_with(batches):
        def setup():
            ssc = StreamingContext(SparkContext(), spec.batch, clock=ManualClock(0))
            build_job(ssc, spec, ssc.queueStream(batches, default=[]))
            return ssc
        return setup

    first = StreamingContext.getOrCreate(ckpt, setup_with([[hit("/a"), hit("/a")], [hit("/b")]]))
    first.step()
    first.step()
    # a new process: same job, the window state comes back from the checkpoint
    second = StreamingContext.getOrCreate(ckpt, setup_with([[hit("/a")]]))
    assert second.step() == 3000
    with sqlite3.connect(db) as conn:
        last = conn.execute("SELECT key, value FROM apache_top_urls WHERE window_end = 3000 "
                            "ORDER BY key").fetchall()
    assert last == [("/a", 3), ("/b", 1)]


def test_run_job_plumbing_with_duration_and_graceful_last_batch(tmp_path):
    db = tmp_path / "run.db"
    spec = default_spec(sqlite=str(db))

    def events(ssc, _spec):
        return ssc.queueStream([[hit("/x"), hit("/y"), hit("/x")]], default=[])

    code = run_job(spec, duration=0.2, clock=ManualClock(0), install_signals=False,
                   make_events=events)
    assert code == EXIT_OK
    with sqlite3.connect(db) as conn:  # the graceful stop ran one last batch and wrote it
        got = conn.execute("SELECT key, value FROM apache_top_urls ORDER BY key").fetchall()
    assert got == [("/x", 2), ("/y", 1)]


def test_run_job_returns_1_when_a_batch_fails(tmp_path):
    spec = default_spec()

    def events(ssc, _spec):
        def explode(rdd):
            raise RuntimeError("disk on fire")
        return ssc.queueStream([[hit("/x")]], default=[]).map(lambda r: r).transform(
            lambda rdd: explode(rdd) if rdd.count() else rdd)

    assert run_job(spec, duration=0.2, clock=ManualClock(0), install_signals=False,
                   make_events=events) == 1


def test_default_job_with_the_real_push_receiver(tmp_path):
    """Flume's avro sink protocol in, SQLite out: the daemon's real wiring, stopped
    gracefully the way a SIGTERM stops it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    db = tmp_path / "push.db"
    spec = default_spec(sqlite=str(db))
    spec = JobSpec(**{**spec.__dict__, "receiver": ReceiverSpec("push", "127.0.0.1", port)})
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(
        run_job(spec, clock=ManualClock(0), install_signals=False)))
    runner.start()

    async def push() -> list[str]:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port)
        try:
            return [await client.call("appendBatch", {"events": [
                {"headers": {}, "body": hit(u)[1].encode()} for u in ("/p", "/q", "/p")]})]
        finally:
            await client.close()

    deadline = time.monotonic() + 10
    while True:
        ssc = StreamingContext.getActive()
        if ssc is not None:
            try:
                assert asyncio.run(push()) == ["OK"]
                break
            except OSError:
                pass
        assert time.monotonic() < deadline, "receiver did not come up"
        time.sleep(0.02)
    ssc.stop(stopSparkContext=False, stopGraceFully=True)
    runner.join(10)
    assert result == [EXIT_OK]
    with sqlite3.connect(db) as conn:
        got = conn.execute("SELECT key, value FROM apache_top_urls ORDER BY key").fetchall()
    assert got == [("/p", 2), ("/q", 1)]
