"""Shared helpers for the benchmarks: sample data and the one-line JSON result."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

URLS = ["/index.html", "/about", "/products/item-%d", "/static/app.js", "/api/v1/search?q=%d"]


def apache_line(i: int, rng: random.Random) -> bytes:
    """A ~130-byte Apache combined log line."""
    url = rng.choice(URLS)
    if "%d" in url:
        url = url % rng.randrange(50)
    return (
        f'10.0.{i % 256}.{rng.randrange(256)} - - [14/Nov/2023:22:13:{i % 60:02d} +0000] '
        f'"GET {url} HTTP/1.1" 200 {rng.randrange(100, 9999)} "-" "Mozilla/5.0 (X11)"'
    ).encode()


def rate(n: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def report(name: str, value: float, baseline: float, baseline_name: str, target: float,
           metric: str = "events/s") -> None:
    direction = "<=" if metric == "ms" else ">="  # latencies: lower is better
    print(f"{name}: {value:,.0f} {metric} (baseline {baseline_name}: {baseline:,.0f}; "
          f"target {direction} {target:,.0f})")
    print(json.dumps({"bench": name, "metric": metric, "value": round(value, 1),
                      "baseline": round(baseline, 1), "baseline_name": baseline_name,
                      "target": target}))
