"""bench/pipeline.py's oracle: the windows the final watermark closes, and the result check
(the benchmark itself is too slow for tests; ``make bench`` runs it)."""

from __future__ import annotations

from pathlib import Path

from bench import pipeline
from scripts.genlog import apache_time

T0 = 1_700_000_040  # a multiple of 60


def line(ts: int, url: str) -> str:
    return f'1.2.3.4 - - [{apache_time(ts)}] "GET {url} HTTP/1.1" 200 5 "-" "curl/8"\n'


def test_plain_loop_closes_the_windows_the_watermark_passed(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text(line(T0, "/a") + "garbage\n" + line(T0 + 61, "/b") + line(T0 + 61, "/a")
                   + line(T0 + 400, "/c"))
    windows, n, seconds = pipeline.plain_loop([log])
    assert n == 5 and seconds >= 0
    ms = 1000
    # watermark T0+400: windows [s, s+300) with s+300 <= T0+400, s a multiple of 60
    assert windows == {
        ((T0 - 240) * ms, (T0 + 60) * ms): {"/a": 1},
        ((T0 - 180) * ms, (T0 + 120) * ms): {"/a": 2, "/b": 1},
        ((T0 - 120) * ms, (T0 + 180) * ms): {"/a": 2, "/b": 1},
        ((T0 - 60) * ms, (T0 + 240) * ms): {"/a": 2, "/b": 1},
        (T0 * ms, (T0 + 300) * ms): {"/a": 2, "/b": 1},
        ((T0 + 60) * ms, (T0 + 360) * ms): {"/a": 1, "/b": 1},
    }


def test_check_reports_wrong_duplicate_unclosed_and_missing_windows() -> None:
    oracle = {(0, 300): {"/a": 2, "/b": 1}, (60, 360): {"/a": 1}}

    def row(start: int, key: str, value: int) -> dict[str, object]:
        return {"window_start": start, "window_end": start + 300, "key": key, "value": value}

    assert pipeline.check([row(0, "/a", 2), row(0, "/b", 1), row(60, "/a", 1)], oracle) == []
    problems = pipeline.check([row(0, "/a", 2), row(0, "/a", 2), row(0, "/b", 5),
                               row(120, "/x", 1)], oracle)
    assert any("written twice" in p for p in problems)
    assert any("1 keys differ" in p for p in problems)
    assert any("never closed" in p for p in problems)
    assert any("1 closed windows never written" in p for p in problems)
