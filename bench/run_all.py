"""Run every benchmark in ``bench/`` and print one summary table.

Each ``bench/*.py`` (except this file, ``common.py`` and ``__init__.py``) runs as its own
subprocess with this interpreter, in name order, with ``--quick`` passed on. A benchmark's
result is the last line of its output that is a JSON object (``bench.common.report``); a
target is a floor for rates and a ceiling for durations (see ``lower_is_better``); a result
with ``"skipped": reason`` (and ``"value": null``) is shown as skipped, not failed. A
crash, a timeout or a missing result line is shown in the table as a failure and the run goes
on. A benchmark with several figures prints each earlier one as a JSON line with
``"row": "extra"``: each gets a row of its own, above the result's. The exit code is 1 if
any benchmark failed (with ``--strict``, also if a target was missed), else 0.

    python bench/run_all.py [--quick] [--only NAME ...] [--bench-dir DIR] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
SKIP = {"run_all.py", "common.py", "__init__.py"}
REQUIRED = ("bench", "value")
TIME_UNITS = {"ns", "us", "µs", "ms", "s", "sec", "seconds", "minutes"}


def lower_is_better(result: dict[str, Any]) -> bool:
    """An explicit ``"better": "lower"|"higher"`` wins; else durations (a metric in a time
    unit, or a bench/metric named like latency) are better low, rates better high."""
    better = str(result.get("better", "")).lower()
    if better in ("lower", "higher"):
        return better == "lower"
    metric = str(result.get("metric", "")).strip().lower()
    name = f"{result.get('bench', '')} {metric}".lower()
    return metric in TIME_UNITS or "latency" in name


@dataclass
class Outcome:
    """One benchmark's run: its JSON result, or why there is none."""

    script: str
    seconds: float
    result: dict[str, Any] | None = None
    error: str | None = None
    extra: list[dict[str, Any]] = field(default_factory=list)  # further figures, same run

    @property
    def met(self) -> bool | None:
        """Target reached? None when there is no result or no numeric target."""
        if self.result is None:
            return None
        target, value = self.result.get("target"), self.result.get("value")
        if not isinstance(target, int | float) or not isinstance(value, int | float):
            return None
        return value <= target if lower_is_better(self.result) else value >= target


def discover(bench_dir: Path, only: Sequence[str] = ()) -> list[Path]:
    """Benchmark scripts in a fixed (name) order."""
    scripts = sorted(p for p in bench_dir.glob("*.py") if p.name not in SKIP)
    if only:
        wanted = {name.removesuffix(".py") for name in only}
        unknown = wanted - {p.stem for p in scripts}
        if unknown:
            raise SystemExit(f"run_all: no such benchmark(s): {', '.join(sorted(unknown))}")
        scripts = [p for p in scripts if p.stem in wanted]
    return scripts


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The last output line that is a JSON object with at least ``bench`` and ``value``."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and all(key in data for key in REQUIRED):
            return data
    return None


def parse_extra_rows(stdout: str) -> list[dict[str, Any]]:
    """Every JSON object line marked ``"row": "extra"`` (with ``bench`` and ``value``)."""
    rows = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if (isinstance(data, dict) and data.get("row") == "extra"
                and all(key in data for key in REQUIRED)):
            rows.append(data)
    return rows


def expand(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """One outcome per table row: a benchmark's extra figures first, then its result."""
    rows = []
    for o in outcomes:
        rows += [Outcome(o.script, o.seconds, extra) for extra in o.extra]
        rows.append(o)
    return rows


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def run_one(script: Path, quick: bool, timeout: float, echo: bool = True) -> Outcome:
    cmd = [sys.executable, str(script)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=BENCH_DIR.parent)
    except subprocess.TimeoutExpired:
        return Outcome(script.stem, time.perf_counter() - start,
                       error=f"timeout after {timeout:g} s")
    seconds = time.perf_counter() - start
    if echo:
        print(f"=== {script.stem} ({seconds:.1f} s) ===")
        print(proc.stdout.rstrip())
    result = parse_result(proc.stdout)
    extra = [row for row in parse_extra_rows(proc.stdout) if row != result]
    if proc.returncode != 0:
        why = _last_line(proc.stderr) or _last_line(proc.stdout)
        return Outcome(script.stem, seconds, result,
                       error=f"exit {proc.returncode}" + (f": {why}" if why else ""))
    if result is None:
        return Outcome(script.stem, seconds, error="no JSON result line")
    return Outcome(script.stem, seconds, result, extra=extra)


def _number(value: Any) -> str:
    if isinstance(value, int | float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return "-" if value is None else str(value)


def _target(result: dict[str, Any]) -> str:
    if result.get("target") is None:
        return "-"
    return ("<= " if lower_is_better(result) else ">= ") + _number(result["target"])


def format_table(outcomes: Sequence[Outcome]) -> str:
    """One aligned text table: bench, value, metric, baseline, target, met."""
    header = ("bench", "value", "metric", "baseline", "target", "met")
    rows = []
    for o in outcomes:
        r = o.result or {}
        if "baseline" in r:
            baseline = f"{r.get('baseline_name', 'baseline')}: {_number(r['baseline'])}"
        else:
            baseline = "-"
        met = {True: "yes", False: "NO", None: "-"}[o.met]
        if r.get("skipped"):
            met = f"skipped ({r['skipped']})"
        if o.error is not None:
            met = f"FAILED ({o.error})"
        rows.append((str(r.get("bench", o.script)), _number(r.get("value")),
                     str(r.get("metric", "-")), baseline, _target(r), met))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    right = {1, 4}  # numbers align right

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def exit_code(outcomes: Sequence[Outcome], strict: bool = False) -> int:
    if any(o.error is not None for o in outcomes):
        return 1
    if strict and any(o.met is False for o in outcomes):
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("--bench-dir", type=Path, default=BENCH_DIR)
    ap.add_argument("--only", nargs="+", default=(), metavar="NAME", help="run only these")
    ap.add_argument("--timeout", type=float, help="seconds per benchmark (60 quick, 600)")
    ap.add_argument("--strict", action="store_true", help="a missed target also fails the run")
    args = ap.parse_args(argv)
    timeout = args.timeout or (60.0 if args.quick else 600.0)
    scripts = discover(args.bench_dir, args.only)
    if not scripts:
        print(f"run_all: no benchmarks in {args.bench_dir}", file=sys.stderr)
        return 1
    outcomes = [run_one(script, args.quick, timeout) for script in scripts]
    print()
    print(format_table(expand(outcomes)))
    return exit_code(expand(outcomes), args.strict)


if __name__ == "__main__":
    sys.exit(main())
