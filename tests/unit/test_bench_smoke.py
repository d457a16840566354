"""bench/run_all.py: result collection, failure isolation and the summary table, driven by
fake benchmark scripts in a temporary directory (the real benchmarks are too slow for tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import run_all

ROOT = Path(__file__).resolve().parents[2]


def result_line(name: str, value: float, target: float, baseline: float = 50.0) -> str:
    return json.dumps({"bench": name, "metric": "events/s", "value": value,
                       "baseline": baseline, "baseline_name": "plain loop", "target": target})


def write_bench(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(body)


def fake_benches(directory: Path) -> None:
    write_bench(directory, "alpha", f"""
import sys
print("alpha: some human output")
print({result_line("alpha", 1500.0, 1000.0)!r} if "--quick" in sys.argv else "not quick")
""")
    write_bench(directory, "beta", f"""
print({result_line("beta", 12.5, 100.0, baseline=9.0)!r})
""")
    write_bench(directory, "crash", """
import sys
print("crash: starting")
sys.exit("boom: the peer went away")
""")
    write_bench(directory, "silent", "print('no json here')\n")
    write_bench(directory, "common", "raise SystemExit('common must not run')\n")
    write_bench(directory, "__init__", "")


def test_parse_result_takes_the_last_json_object_line() -> None:
    out = "\n".join(["{not json", result_line("x", 1.0, 2.0), "trailing text",
                     '{"other": 1}', ""])
    assert run_all.parse_result(out) == json.loads(result_line("x", 1.0, 2.0))
    assert run_all.parse_result("nothing\n[1, 2]\n") is None


def test_discover_skips_helpers_and_keeps_a_fixed_order(tmp_path: Path) -> None:
    fake_benches(tmp_path)
    names = [p.stem for p in run_all.discover(tmp_path)]
    assert names == ["alpha", "beta", "crash", "silent"]
    assert [p.stem for p in run_all.discover(tmp_path, ["silent", "alpha.py"])] == [
        "alpha", "silent"]


def test_format_table_shows_values_baselines_targets_and_failures() -> None:
    outcomes = [
        run_all.Outcome("alpha", 1.0, json.loads(result_line("alpha", 1500.0, 1000.0))),
        run_all.Outcome("beta", 1.0, json.loads(result_line("beta", 12.5, 100.0, 9.0))),
        run_all.Outcome("crash", 1.0, error="exit 1: boom"),
    ]
    lines = run_all.format_table(outcomes).splitlines()
    assert lines[0].split() == ["bench", "value", "metric", "baseline", "target", "met"]
    assert set(lines[1]) == {"-", " "}
    alpha, beta, crash = lines[2:]
    assert alpha.split()[:3] == ["alpha", "1,500", "events/s"]
    assert "plain loop: 50" in alpha and alpha.rstrip().endswith("yes")
    assert "12.50" in beta and "plain loop: 9.00" in beta and beta.rstrip().endswith("NO")
    assert crash.startswith("crash") and crash.endswith("FAILED (exit 1: boom)")
    assert len({line.index("events/s") for line in (alpha, beta)}) == 1  # columns align


def test_targets_are_ceilings_for_durations_and_floors_for_rates() -> None:
    def met(**result: object) -> bool | None:
        return run_all.Outcome("x", 0.0, {"bench": "x", **result}).met

    assert met(value=900.0, target=1250, metric="ms") is True
    assert met(value=1300.0, target=1250, metric="ms") is False
    assert met(value=0.5, target=1, metric="events/s", bench="latency_p50") is True
    assert met(value=900.0, target=1250, metric="events/s") is False
    assert met(value=900.0, target=1250, metric="events/s", better="lower") is True
    assert met(value=900.0, target=None, metric="events/s") is None
    table = run_all.format_table([run_all.Outcome(
        "lat", 1.0, {"bench": "lat", "value": 961.0, "metric": "ms", "target": 1250})])
    assert "<= 1,250" in table and table.splitlines()[-1].endswith("yes")


def test_run_all_runs_every_bench_and_fails_only_at_the_end(tmp_path: Path) -> None:
    fake_benches(tmp_path)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick", "--bench-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 1
    table = proc.stdout[proc.stdout.index("\nbench "):].strip().splitlines()
    rows = {line.split()[0]: line for line in table[2:]}
    assert list(rows) == ["alpha", "beta", "crash", "silent"]  # crash did not stop the run
    assert rows["alpha"].endswith("yes")  # --quick was passed on
    assert rows["beta"].endswith("NO")
    assert "FAILED (exit 1: boom: the peer went away)" in rows["crash"]
    assert "FAILED (no JSON result line)" in rows["silent"]
    assert "common must not run" not in proc.stdout + proc.stderr
    assert "alpha: some human output" in proc.stdout  # each bench's own output is shown


def test_exit_code_is_zero_when_all_ran_and_strict_counts_missed_targets(tmp_path: Path) -> None:
    write_bench(tmp_path, "ok", f"print({result_line('ok', 10.0, 100.0)!r})\n")
    assert run_all.main(["--bench-dir", str(tmp_path)]) == 0
    assert run_all.main(["--bench-dir", str(tmp_path), "--strict"]) == 1


def test_a_hanging_bench_times_out_and_is_reported(tmp_path: Path) -> None:
    write_bench(tmp_path, "hang", "import time\ntime.sleep(30)\n")
    outcome = run_all.run_one(tmp_path / "hang.py", quick=True, timeout=0.5, echo=False)
    assert outcome.error == "timeout after 0.5 s"
    assert run_all.exit_code([outcome]) == 1


def test_a_bench_with_several_figures_gets_a_row_for_each(tmp_path: Path) -> None:
    extra = json.dumps({**json.loads(result_line("multi_first", 3.0, 2.0)), "row": "extra"})
    write_bench(tmp_path, "multi", f"""
print({extra!r})
print({result_line("multi_last", 1.0, 2.0)!r})
""")
    outcome = run_all.run_one(tmp_path / "multi.py", quick=True, timeout=30, echo=False)
    rows = run_all.expand([outcome])
    assert [r.result["bench"] for r in rows if r.result] == ["multi_first", "multi_last"]
    assert [r.met for r in rows] == [True, False]
    table = run_all.format_table(rows).splitlines()
    assert table[2].startswith("multi_first") and table[3].startswith("multi_last")
    assert run_all.main(["--bench-dir", str(tmp_path), "--strict"]) == 1  # the last missed


def test_a_skipped_bench_says_why_and_does_not_fail_the_run(tmp_path: Path) -> None:
    write_bench(tmp_path, "optional", 'import json\nprint(json.dumps({"bench": "optional", '
                '"value": None, "skipped": "pyspark is not installed"}))\n')
    outcome = run_all.run_one(tmp_path / "optional.py", quick=True, timeout=30, echo=False)
    assert outcome.error is None and outcome.met is None
    row = run_all.format_table([outcome]).splitlines()[-1]
    assert row.endswith("skipped (pyspark is not installed)")
    assert run_all.exit_code([outcome], strict=True) == 0
