"""W1, the job users run: Apache access logs through flume-agent into an event-time job.

The workload (issue 12): ``scripts/genlog.py`` Apache combined log, 1M lines over 3,600 s of
event time, 50k URLs with Zipf popularity, 1 % malformed, split into 10 files. The job:
``flume-consumer run job.yaml`` with a push receiver, ``event_time: {field: time, format:
apache}``, window 300 s sliding every 60 s, count by URL, output JSON lines.

Figures, all from this run:

* pipeline: a real ``flume-agent`` (spooldir -> memory -> avro sink, ``configs/spooldir-avro.conf``
  with batch sizes of 1000) pushes to a real ``flume-consumer``; timed from the first rename of
  a file into the spool directory until the last window the watermark closes is written;
* consumer alone: a second process pushes pre-encoded ``appendBatch`` frames (1000 events,
  the headers the agent sends) as fast as the consumer answers, timed the same way;
* top_k: the same job with ``top_k`` (k=10) of client hosts per URL instead of ``count``,
  consumer alone, checked against its own oracle (the target: at most 2x count's time);
* lambdas: the same job written as a pyspark.streaming-style script (``.py``: a regex in a
  ``map``, ``eventTimeWindow`` with lambdas, ``foreachRDD`` writing JSON lines), consumer alone;
* baseline: a plain Python loop over the same files (regex + cached strptime + Counter per
  window), which is also the oracle: every window each run wrote must equal it, and every
  window the final watermark closes must be there;
* the consumer's peak RSS (VmHWM of its process tree) in the pipeline run.

    python bench/pipeline.py [--quick] [--lines N] [--only pipeline alone topk lambdas]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts import genlog  # noqa: E402

WINDOW_S, SLIDE_S = 300, 60
SEED = 12
FILES = 10
URLS = 50_000
MALFORMED = 0.01
BATCH_EVENTS = 1000
TARGET = 150_000.0
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

# The classic Spark example's regex for the Apache combined format (the oracle's own copy).
LOG_RE = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)\s*(\S*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"'
    r'\s*$')
APACHE_TIME = "%d/%b/%Y:%H:%M:%S %z"

JOB_YAML = """\
name: w1
receiver: {{type: push, host: 127.0.0.1, port: {port}}}
parser: apache_combined
key: url
{aggregation}
event_time: {{field: time, format: apache}}
window: {window}
slide: {slide}
outputs:
  - {{type: jsonl, path: {out}}}
"""

JOB_SCRIPT = '''\
"""W1 as a pyspark.streaming-style script: per-record lambdas, event-time windows."""
import json
import re
import sys
from datetime import datetime

from consumer import SparkContext
from consumer.flume import FlumeUtils
from consumer.streaming import StreamingContext

port, out_path = int(sys.argv[1]), sys.argv[2]
LOG = re.compile(r'^(\\S+) (\\S+) (\\S+) \\[([^\\]]+)\\] "(\\S+) (\\S+)\\s*(\\S*)" (\\d{{3}}) '
                 r'(\\d+|-) "([^"]*)" "([^"]*)"\\s*$')
times = {{}}


def epoch(text):
    t = times.get(text)
    if t is None:
        t = times[text] = datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    return t


def parse(line):
    m = LOG.match(line)
    return None if m is None else (epoch(m.group(4)), m.group(6))


out = open(out_path, "a", encoding="utf-8")


def write(rdd):
    for w in rdd.collect():
        out.write(json.dumps({{"window_start": round(w.start * 1000),
                              "window_end": round(w.end * 1000), "key": w.key,
                              "value": w.value}}) + "\\n")
    out.flush()


ssc = StreamingContext(SparkContext(appName="w1-lambdas"), 1)
hits = FlumeUtils.createStream(ssc, "127.0.0.1", port) \\
    .map(lambda event: parse(event[1])).filter(lambda hit: hit is not None)
hits.eventTimeWindow(timestamp=lambda hit: hit[0], windowDuration={window},
                     slideDuration={slide}, key=lambda hit: hit[1]).foreachRDD(write)
ssc.start()
ssc.awaitTermination()
'''

Windows = dict[tuple[int, int], dict[str, Any]]
TOP_K = 10
AGGREGATIONS = {"count": "aggregation: count",
                "top_k": f"aggregation: {{type: top_k, k: {TOP_K}}}\nvalue: host"}


# ---- the workload and the oracle ----------------------------------------------------------
def write_workload(staging: Path, lines: int) -> list[Path]:
    """The W1 files, written outside the spool directory (renaming them in is what we time);
    mtimes one second apart so spooldir's ``consumeOrder = oldest`` reads them in order."""
    gen = genlog.generate(lines, SEED, malformed_rate=MALFORMED, urls=URLS)
    paths = genlog.write_files(staging, gen, lines, FILES)
    base = time.time() - len(paths)
    for i, path in enumerate(paths):
        os.utime(path, (base + i, base + i))
    return paths


def plain_loop(paths: Sequence[Path]) -> tuple[Windows, int, float]:
    """The baseline and oracle: every window that the final watermark (the newest event time,
    no allowed lateness) closes; also returns the number of lines and the seconds it took."""
    start = time.perf_counter()
    match = LOG_RE.match
    epochs: dict[str, int] = {}
    per_slide: dict[int, Counter[str]] = {}
    n = 0
    newest = None
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                n += 1
                m = match(line.rstrip("\n"))
                if m is None:
                    continue
                text = m.group(4)
                ts = epochs.get(text)
                if ts is None:
                    ts = epochs[text] = int(datetime.strptime(text, APACHE_TIME).timestamp())
                slide = ts - ts % SLIDE_S
                counts = per_slide.get(slide)
                if counts is None:
                    counts = per_slide[slide] = Counter()
                counts[m.group(6)] += 1
                if newest is None or ts > newest:
                    newest = ts
    windows: Windows = {}
    if newest is not None:
        first = min(per_slide) - WINDOW_S + SLIDE_S
        for w_start in range(first, newest - WINDOW_S + 1, SLIDE_S):
            total: Counter[str] = Counter()
            for s in range(w_start, w_start + WINDOW_S, SLIDE_S):
                total.update(per_slide.get(s, {}))
            if total:
                windows[(w_start * 1000, (w_start + WINDOW_S) * 1000)] = dict(total)
    return windows, n, time.perf_counter() - start


def top_hosts_oracle(paths: Sequence[Path]) -> Windows:
    """The oracle of the top_k job: per closed window and URL, the ``TOP_K`` most frequent
    client hosts as ``[host, count]``, count descending, ties by host."""
    match = LOG_RE.match
    epochs: dict[str, int] = {}
    per_slide: dict[int, dict[str, Counter[str]]] = {}
    newest = None
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = match(line.rstrip("\n"))
                if m is None:
                    continue
                text = m.group(4)
                ts = epochs.get(text)
                if ts is None:
                    ts = epochs[text] = int(datetime.strptime(text, APACHE_TIME).timestamp())
                urls = per_slide.setdefault(ts - ts % SLIDE_S, {})
                urls.setdefault(m.group(6), Counter())[m.group(1)] += 1
                newest = ts if newest is None else max(newest, ts)
    windows: Windows = {}
    if newest is None:
        return windows
    for w_start in range(min(per_slide) - WINDOW_S + SLIDE_S, newest - WINDOW_S + 1, SLIDE_S):
        total: dict[str, Counter[str]] = {}
        for s in range(w_start, w_start + WINDOW_S, SLIDE_S):
            for url, hosts in per_slide.get(s, {}).items():
                total.setdefault(url, Counter()).update(hosts)
        if total:
            windows[(w_start * 1000, (w_start + WINDOW_S) * 1000)] = {
                url: [[h, c] for h, c in sorted(hosts.items(), key=lambda hc: (-hc[1], hc[0]))
                      [:TOP_K]] for url, hosts in total.items()}
    return windows


def check(written: list[dict], oracle: Windows) -> list[str]:
    """Problems with the written rows: a window twice, a wrong count, a missing window."""
    got: Windows = {}
    problems = []
    for row in written:
        w = (row["window_start"], row["window_end"])
        keys = got.setdefault(w, {})
        if row["key"] in keys:
            problems.append(f"window {w}: key {row['key']!r} written twice")
        keys[row["key"]] = row["value"]
    for w, counts in got.items():
        want = oracle.get(w)
        if want is None:
            problems.append(f"window {w} written but the watermark never closed it")
        elif counts != want:
            diff = sum(1 for k in set(counts) | set(want) if counts.get(k) != want.get(k))
            problems.append(f"window {w}: {diff} keys differ from the oracle")
    missing = [w for w in oracle if w not in got]
    if missing:
        problems.append(f"{len(missing)} closed windows never written (first {missing[0]})")
    return problems


# ---- processes --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_script(name: str) -> list[str]:
    """The venv's console script next to this interpreter (what a user runs)."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", {"flume-agent": "agent.cli",
                                   "flume-consumer": "consumer.cli"}[name]]


def spawn(args: Sequence[str], log: Path, **kw: object) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(list(args), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=ENV, **kw)  # type: ignore[call-overload]


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path,
                   timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout} s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(k) for k in (task / "children").read_text().split())
        except OSError:
            continue
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants so far: on a shared
    machine a steadier measure of the work done than the wall clock."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_peak_rss_mib(pid: int) -> float:
    """VmHWM summed over a process and its descendants (MiB; 0 once it is gone)."""
    total_kib = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total_kib += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
    return total_kib / 1024


class Rows:
    """Follows the consumer's JSON lines output as it grows (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict] = []
        self._pos = 0
        self._per_window: Counter[int] = Counter()

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._pos += end
        for line in data[:end].splitlines():
            row = json.loads(line)
            self.rows.append(row)
            self._per_window[row["window_start"]] += 1

    def count(self, window_start_ms: int) -> int:
        return self._per_window[window_start_ms]


def wait_for_window(rows: Rows, start_ms: int, keys: int, procs: Sequence[subprocess.Popen[bytes]],
                    timeout: float) -> float:
    """Poll until every row of the window starting at ``start_ms`` is written; its time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows.poll()
        if rows.count(start_ms) >= keys:
            return time.perf_counter()
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a process exited before the last window was written")
        time.sleep(0.01)
    raise RuntimeError(f"the last window was not written within {timeout:g} s "
                       f"({rows.count(start_ms)} of {keys} rows)")


@dataclass
class RunResult:
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float  # the consumer's, from the first event to the last window
    problems: list[str]


def start_consumer(work: Path, kind: str, port: int, out: Path) -> subprocess.Popen[bytes]:
    log = work / f"consumer-{kind}.log"
    if kind == "lambdas":
        job = work / "w1_lambdas.py"
        job.write_text(JOB_SCRIPT.format(window=WINDOW_S, slide=SLIDE_S))
        args = [*console_script("flume-consumer"), "run", str(job), str(port), str(out)]
    else:
        job = work / f"w1-{kind}.yaml"
        job.write_text(JOB_YAML.format(
            port=port, out=json.dumps(str(out)), window=WINDOW_S, slide=SLIDE_S,
            aggregation=AGGREGATIONS["top_k" if kind == "topk" else "count"]))
        args = [*console_script("flume-consumer"), "run", str(job)]
    proc = spawn(args, log)
    wait_listening(port, proc, log)
    return proc


def run_pipeline(work: Path, paths: Sequence[Path], oracle: Windows,
                 timeout: float) -> RunResult:
    spool, ready = work / "spool", work / "to-drop"
    spool.mkdir()
    ready.mkdir()
    drops = []
    for path in paths:  # hard links: the agent renames what it finished, the oracle's stay
        os.link(path, ready / path.name)
        drops.append(ready / path.name)
    port = free_port()
    out = work / "pipeline.jsonl"
    consumer = start_consumer(work, "pipeline", port, out)
    agent = spawn([*console_script("flume-agent"), "-f", str(ROOT / "configs/spooldir-avro.conf"),
                   "-n", "a1", f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}",
                   f"-Da1.sources.r1.batchSize={BATCH_EVENTS}",
                   f"-Da1.sinks.k1.batch-size={BATCH_EVENTS}",
                   "-Da1.channels.c1.capacity=100000",
                   f"-Da1.channels.c1.transactionCapacity={BATCH_EVENTS}"],
                  work / "agent.log")
    try:
        time.sleep(1.5)  # agent start-up is not what we measure
        if agent.poll() is not None:
            raise RuntimeError(f"agent exited: {(work / 'agent.log').read_text()[-2000:]}")
        rows = Rows(out)
        last = max(oracle)
        cpu0 = tree_cpu_seconds(consumer.pid)
        t0 = time.perf_counter()
        for path in drops:
            os.rename(path, spool / path.name)
        t1 = wait_for_window(rows, last[0], len(oracle[last]), [agent, consumer], timeout)
        cpu = tree_cpu_seconds(consumer.pid) - cpu0
        peak = tree_peak_rss_mib(consumer.pid)
    finally:
        stop(agent)
        stop(consumer)
    rows.poll()
    return RunResult(t1 - t0, peak, cpu, check(rows.rows, oracle))


def run_alone(work: Path, kind: str, paths: Sequence[Path], oracle: Windows,
              timeout: float) -> RunResult:
    port = free_port()
    out = work / f"{kind}.jsonl"
    consumer = start_consumer(work, kind, port, out)
    feeder = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--feed", str(port),
         *map(str, paths)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV)
    assert feeder.stdin is not None and feeder.stdout is not None
    try:
        if feeder.stdout.readline().strip() != b"ready":
            raise RuntimeError("the feeder did not start")
        rows = Rows(out)
        last = max(oracle)
        cpu0 = tree_cpu_seconds(consumer.pid)
        t0 = time.perf_counter()
        feeder.stdin.write(b"go\n")
        feeder.stdin.flush()
        t1 = wait_for_window(rows, last[0], len(oracle[last]), [consumer], timeout)
        cpu = tree_cpu_seconds(consumer.pid) - cpu0
        peak = tree_peak_rss_mib(consumer.pid)
        if feeder.wait(timeout) != 0:
            raise RuntimeError("the feeder failed")
    finally:
        feeder.kill()
        feeder.wait()
        stop(consumer)
    rows.poll()
    return RunResult(t1 - t0, peak, cpu, check(rows.rows, oracle))


# ---- the feeder (a second process) ------------------------------------------------------
def _frames(paths: Sequence[str], sock: socket.socket) -> Iterator[bytes]:
    """Handshake on ``sock`` with an empty appendBatch, then yield every batch's complete
    request frame, encoded up front (headers as the agent's spooldir source sets them)."""
    from protocol.codec import encode_event_array
    from protocol.event import Event
    from protocol.rpc import ClientSession
    from protocol.schemas import AVRO_SOURCE_PROTOCOL

    session = ClientSession(AVRO_SOURCE_PROTOCOL)
    session.send_request("appendBatch", {}, encoded=encode_event_array([]))
    sock.sendall(session.data_to_send())
    while not session.feed(sock.recv(65536)):
        pass
    frames = []
    now_ms = str(int(time.time() * 1000))
    for path in paths:
        with open(path, "rb") as f:
            bodies = f.read().splitlines()
        headers = {"file": path, "timestamp": now_ms}
        for i in range(0, len(bodies), BATCH_EVENTS):
            events = [Event(headers, b) for b in bodies[i:i + BATCH_EVENTS]]
            session.send_request("appendBatch", {}, encoded=encode_event_array(events))
            frames.append(session.data_to_send())
    yield from frames


def feed(port: int, paths: Sequence[str]) -> None:
    """Push pre-encoded frames one at a time, each as soon as the previous one is answered
    (as an avro sink does); exits non-zero on anything but ``OK``."""
    from protocol.framing import PackDecoder

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frames = list(_frames(paths, sock))
        print("ready", flush=True)
        sys.stdin.readline()
        decoder = PackDecoder()
        for frame in frames:
            sock.sendall(frame)
            packs = []
            while not packs:
                data = sock.recv(65536)
                if not data:
                    raise SystemExit("the consumer closed the connection")
                packs = decoder.feed(data)
            if not packs[0].payload.endswith(b"\x00\x00"):  # no error flag, Status.OK
                raise SystemExit(f"appendBatch answered {packs[0].payload!r}")


# ---- main ---------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k lines instead of 1M")
    ap.add_argument("--lines", type=int, help="lines in total (default 1M, quick 100k)")
    ap.add_argument("--only", nargs="+", choices=("pipeline", "alone", "topk", "lambdas"),
                    default=("pipeline", "alone", "topk", "lambdas"))
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    ap.add_argument("--feed", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.feed:
        feed(args.feed, args.paths)
        return
    lines = args.lines or (100_000 if args.quick else 1_000_000)
    timeout = 120.0 if args.quick else 600.0
    with tempfile.TemporaryDirectory(prefix="flumelet-w1-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        paths = write_workload(work / "staging", lines)
        print(f"W1: {lines:,} lines in {len(paths)} files, {URLS:,} URLs, "
              f"{MALFORMED:.0%} malformed ({time.perf_counter() - t:.1f} s to generate)")
        cpu0 = time.process_time()
        oracle, n, base_s = plain_loop(paths)
        base_cpu = time.process_time() - cpu0
        baseline = n / base_s
        print(f"plain-Python loop (regex + strptime + Counter): {baseline:,.0f} lines/s "
              f"(CPU {base_cpu / n * 1e6:.1f} µs/line); {len(oracle)} closed windows, "
              f"{sum(map(len, oracle.values())):,} rows")
        results: dict[str, RunResult] = {}
        failures = []
        for kind in args.only:
            if kind == "pipeline":
                results[kind] = run_pipeline(work, paths, oracle, timeout)
            elif kind == "topk":
                results[kind] = run_alone(work, kind, paths, top_hosts_oracle(paths), timeout)
            else:
                results[kind] = run_alone(work, kind, paths, oracle, timeout)
            r = results[kind]
            print(f"{kind:>9}: {lines / r.seconds:12,.0f} lines/s ({r.seconds:.2f} s), "
                  f"consumer CPU {r.cpu_seconds / lines * 1e6:.1f} µs/line, "
                  f"peak RSS {r.peak_rss_mib:,.0f} MiB, "
                  f"{'windows exact' if not r.problems else 'WRONG RESULTS'}")
            for p in r.problems[:10]:
                print(f"    {p}")
                failures.append(f"{kind}: {p}")
    rate = {k: lines / r.seconds for k, r in results.items()}
    print()
    print("| figure | lines/s |")
    print("|---|---|")
    for label, key in (("W1 pipeline, drop -> last window", "pipeline"),
                       ("consumer alone, W1 YAML job", "alone"),
                       ("consumer alone, W1 PySpark-style lambdas", "lambdas"),
                       (f"consumer alone, W1 with top_k (k={TOP_K}) of hosts per URL", "topk")):
        if key in rate:
            print(f"| {label} | {rate[key]:,.0f} |")
    print(f"| plain-Python loop (baseline) | {baseline:,.0f} |")
    if "alone" in rate and "topk" in rate:
        print(f"| top_k / count time, same job | {rate['alone'] / rate['topk']:.2f}x |")
    if "pipeline" in results:
        print(f"| consumer peak RSS (pipeline) | {results['pipeline'].peak_rss_mib:,.0f} MiB |")
    head = "pipeline" if "pipeline" in rate else next(iter(rate))
    summary = {"bench": "pipeline_w1", "metric": "lines/s", "value": round(rate[head], 1),
               "baseline": round(baseline, 1), "baseline_name": "plain-Python loop",
               "target": TARGET if head == "pipeline" else None,
               "consumer_alone": round(rate.get("alone", 0.0), 1),
               "lambdas": round(rate.get("lambdas", 0.0), 1),
               "top_k": round(rate.get("topk", 0.0), 1),
               "peak_rss_mib": round(max(r.peak_rss_mib for r in results.values()), 1),
               "exact": not failures}
    print(json.dumps(summary))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
