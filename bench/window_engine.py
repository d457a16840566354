"""Bench: the classic top-URLs job through the streaming engine vs a plain-Python loop.

Generates N Apache combined-log lines deterministically, split into 1 s batches, and runs
parse -> (url, 1) -> reduceByKeyAndWindow(300 s, 60 s) -> top 10 at every slide:

* compat: PySpark-style per-record lambdas (map/map/reduceByKeyAndWindow with add/sub, a
  checkpoint directory as Spark requires, so a checkpoint is written after every batch);
* fast:   the same answer via the declarative path (batch-level parse with one regex pass
  over the joined batch, ``countByKeyAndWindow``: Counter per batch, no per-key calls);
* baseline: a plain-Python loop (same parse function, a Counter per batch, a deque of the
  last 300 batch counters, summed at each slide).

All three must produce identical top-10 lists. Prints events/s and one JSON line.
Usage: python bench/window_engine.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.clock import ManualClock
from consumer import SparkContext
from consumer.streaming import StreamingContext

WINDOW_S, SLIDE_S = 300, 60
TARGET = 300_000.0
LINE_RE = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)\s*(\S*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"')
URL_RE = re.compile(r'^\S+ \S+ \S+ \[[^\]]+\] "\S+ (\S+)[^"]*" \d{3} (?:\d+|-) "[^"]*" "[^"]*"',
                    re.MULTILINE)


def generate(n_lines: int, n_batches: int) -> list[list[str]]:
    rng = random.Random(20231114)
    urls = [f"/section{i % 37}/page{i}.html" for i in range(3000)]
    weights = [1.0 / (i + 1) for i in range(len(urls))]  # Zipf-like popularity
    hosts = [f"10.{i // 250}.{i % 250}.{(i * 7) % 250}" for i in range(500)]
    agents = ['"Mozilla/5.0 (X11; Linux x86_64)"', '"curl/8.0"', '"Googlebot/2.1"']
    chosen = rng.choices(urls, cum_weights=list(_accumulate(weights)), k=n_lines)
    per = n_lines // n_batches
    batches = []
    for b in range(n_batches):
        stamp = f"14/Nov/2023:22:{(b // 60) % 60:02d}:{b % 60:02d} +0000"
        lo, hi = b * per, (b + 1) * per if b < n_batches - 1 else n_lines
        batch = []
        for i in range(lo, hi):
            if i % 997 == 0:
                batch.append("malformed line without a request")
                continue
            batch.append(f'{hosts[i % 500]} - - [{stamp}] "GET {chosen[i]} HTTP/1.1" '
                         f'{200 if i % 11 else 404} {i % 5000} "-" {agents[i % 3]}')
        batches.append(batch)
    return batches


def _accumulate(ws: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in ws:
        total += w
        out.append(total)
    return out


def extract_url(line: str) -> str | None:
    m = LINE_RE.match(line)
    return m.group(6) if m else None


def top10(pairs) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in pairs if v > 0), key=lambda kv: (-kv[1], kv[0]))[:10]


def run_baseline(batches: list[list[str]]) -> tuple[list, float]:
    t0 = time.perf_counter()
    results = []
    recent: deque[Counter[str]] = deque(maxlen=WINDOW_S)
    for i, batch in enumerate(batches, start=1):
        counts: Counter[str] = Counter()
        for line in batch:
            url = extract_url(line)
            if url is not None:
                counts[url] += 1
        recent.append(counts)
        if i % SLIDE_S == 0:
            window: Counter[str] = Counter()
            for c in recent:
                window.update(c)
            results.append(top10(window.items()))
    return results, time.perf_counter() - t0


CKPT_SECONDS: dict[str, float] = {}


def run_engine(batches: list[list[str]], fast: bool, ckpt: str,
               every_batch: bool = False) -> tuple[list, float]:
    ssc = StreamingContext(SparkContext(appName="bench"), 1, clock=ManualClock(0))
    lines = ssc.queueStream(batches)
    if fast:
        def parse_batch(it):
            return URL_RE.findall("\n".join(it))

        urls = lines.mapPartitions(parse_batch)  # one group: findall yields the URLs
        counts = urls.countByKeyAndWindow(WINDOW_S, SLIDE_S)
    else:
        urls = lines.map(extract_url).filter(lambda u: u is not None)
        counts = urls.map(lambda u: (u, 1)).reduceByKeyAndWindow(
            lambda x, y: x + y, lambda x, y: x - y, WINDOW_S, SLIDE_S)
    if not every_batch:
        # Spark's default for a windowed stream: the smallest multiple of the slide >= 10 s.
        counts.checkpoint(SLIDE_S * max(1, -(-10 // SLIDE_S)))
    results: list = []
    counts.transform(lambda rdd: rdd.filter(lambda kv: kv[1] > 0)
                     .sortBy(lambda kv: (-kv[1], kv[0]))) \
        .foreachRDD(lambda rdd: results.append(rdd.take(10)))
    ssc.checkpoint(ckpt)
    spent = [0.0]
    t0 = time.perf_counter()
    ssc.step()
    pipeline = ssc._pipeline
    assert pipeline is not None and pipeline.write_checkpoint is not None
    write = pipeline.write_checkpoint

    def timed_write(t_ms, payload):
        c0 = time.perf_counter()
        write(t_ms, payload)
        spent[0] += time.perf_counter() - c0

    pipeline.write_checkpoint = timed_write
    for _ in batches[1:]:
        ssc.step()
    elapsed = time.perf_counter() - t0
    CKPT_SECONDS[("fast" if fast else "compat") + ("-every" if every_batch else "")] = spent[0]
    ssc.stop()
    return results, elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k lines instead of 1M")
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    n_batches = 360 if args.quick else 600
    t0 = time.perf_counter()
    batches = generate(n, n_batches)
    print(f"generated {n:,} lines in {n_batches} batches in {time.perf_counter() - t0:.2f}s")
    base_res, base_s = run_baseline(batches)
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        comp_res, comp_s = run_engine(batches, fast=False, ckpt=d1)
        fast_res, fast_s = run_engine(batches, fast=True, ckpt=d2)
    with tempfile.TemporaryDirectory() as d3:
        every_res, every_s = run_engine(batches, fast=False, ckpt=d3, every_batch=True)
    same = base_res == comp_res == fast_res == every_res
    print(f"baseline plain-Python loop : {n / base_s:12,.0f} lines/s ({base_s:.2f}s)")
    print(f"engine, per-record lambdas : {n / comp_s:12,.0f} lines/s ({comp_s:.2f}s, "
          f"checkpoint every {SLIDE_S}s as Spark's default)")
    print(f"engine, declarative path   : {n / fast_s:12,.0f} lines/s ({fast_s:.2f}s, "
          f"same checkpoints)")
    print(f"engine, lambdas, checkpoint every batch: {n / every_s:12,.0f} lines/s "
          f"({every_s:.2f}s; what a receiver acking per batch costs)")
    elapsed = {"compat": comp_s, "fast": fast_s, "compat-every": every_s}
    for name, secs in CKPT_SECONDS.items():
        print(f"  {name}: durable checkpoints took {secs:.2f}s; engine work without them "
              f"{n / (elapsed[name] - secs):,.0f} lines/s")
    print(f"windows compared: {len(base_res)}; identical results: {same}")
    if base_res:
        print(f"last window top 3: {base_res[-1][:3]}")
    if not same:
        print("ERROR: results differ", file=sys.stderr)
    print(json.dumps({"bench": "window_engine", "metric": "events/s", "value": n / comp_s,
                      "baseline": n / base_s, "baseline_name": "plain-Python loop",
                      "target": TARGET, "fast_path": n / fast_s, "identical": same}))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
