"""scripts/genlog.py: deterministic, Zipf-skewed, parseable by the Spark example's regex,
and written into a spool directory only by rename."""

from __future__ import annotations

import calendar
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import genlog

ROOT = Path(__file__).resolve().parents[2]
# The regex of the classic Spark Apache-log example, spelled out here independently of genlog.
SPARK_REGEX = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)\s*(\S*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"'
)


def test_same_seed_same_lines_other_seed_other_lines() -> None:
    a = list(genlog.generate(2000, seed=7, malformed_rate=0.05))
    b = list(genlog.generate(2000, seed=7, malformed_rate=0.05))
    c = list(genlog.generate(2000, seed=8, malformed_rate=0.05))
    assert a == b
    assert sum(x != y for x, y in zip(a, c, strict=True)) > 1900


def test_output_is_the_same_in_a_fresh_interpreter() -> None:
    """No dependence on hash randomisation or process state."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "genlog.py"), "--lines", "300", "--seed", "5",
         "--malformed-rate", "0.1", "--stdout"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout
    assert out == "".join(line + "\n" for line in genlog.generate(300, 5, malformed_rate=0.1))


def test_every_well_formed_line_parses_and_every_malformed_one_is_rejected() -> None:
    good = list(genlog.generate(5000, seed=1))
    assert all(SPARK_REGEX.match(line) for line in good)
    mixed = list(genlog.generate(5000, seed=1, malformed_rate=0.5))
    bad = [line for line in mixed if not SPARK_REGEX.match(line)]
    kinds = {
        "truncated": any(not line.endswith('"') and "[" in line for line in bad),
        "bad_status": any('" OK ' in line for line in bad),
        "unquoted": any("] GET " in line for line in bad),
        "no_bracket": any(" - - " in line and "[" not in line and '"' in line for line in bad),
    }
    assert all(kinds.values()), kinds
    for line in mixed:  # url_of agrees with the Spark regex line by line
        match = SPARK_REGEX.match(line)
        assert genlog.url_of(line) == (match.group(6) if match else None)


def test_well_formed_fields_are_realistic() -> None:
    for line in genlog.generate(2000, seed=2):
        m = SPARK_REGEX.match(line)
        assert m is not None
        ip, _, _, when, method, url, proto, status, size, referer, agent = m.groups()
        assert all(0 <= int(part) <= 255 for part in ip.split(".")) and ip.count(".") == 3
        assert not ip.startswith(("10.", "127.", "192.168."))
        time.strptime(when, "%d/%b/%Y:%H:%M:%S +0000")
        assert method in ("GET", "POST", "HEAD")
        assert url.startswith("/")
        assert proto.startswith("HTTP/")
        assert 200 <= int(status) < 600
        assert size == "-" or int(size) > 0
        assert referer == "-" or referer.startswith("http")
        assert agent


def _parsed_times(lines: list[str]) -> list[int]:
    return [calendar.timegm(time.strptime(m.group(4), "%d/%b/%Y:%H:%M:%S +0000"))
            for m in map(SPARK_REGEX.match, lines) if m]


def test_event_times_rise_through_the_chosen_span() -> None:
    start, span = 1_600_000_000, 600
    times = _parsed_times(list(genlog.generate(3000, seed=3, start=start, span=span)))
    assert times == sorted(times)
    assert start <= times[0] < start + 2
    assert start + span - 2 <= times[-1] < start + span
    assert len({(t - start) // 60 for t in times}) == 10  # every minute of the span is used


def test_url_popularity_is_zipf_like() -> None:
    n = 50_000
    counts = genlog.expected_counts(genlog.generate(n, seed=4))
    ranked = [c for _, c in counts.most_common()]
    assert ranked[0] / n > 0.10  # the most popular URL alone takes a tenth of the hits
    top = max(1, len(ranked) // 10)
    assert sum(ranked[:top]) / n > 0.5  # 10 % of URLs take over half the traffic
    # log(count) falls linearly with log(rank), slope about -s, over the first 30 ranks
    xs = [math.log(r) for r in range(1, 31)]
    ys = [math.log(c) for c in ranked[:30]]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)
    assert -1.4 < slope < -0.8


def test_the_site_can_have_a_chosen_number_of_urls() -> None:
    """W1 (bench/pipeline.py) needs 50k URLs; fewer than the built-in set cuts it."""
    import random

    for n in (1, 7, 5000):
        urls = genlog.build_urls(random.Random(3), n)
        assert len(urls) == len(set(urls)) == n
        assert all(u.startswith("/") and " " not in u for u in urls)
    lines = list(genlog.generate(20_000, seed=3, urls=5000))
    assert all(SPARK_REGEX.match(line) for line in lines)
    assert 2000 < len(genlog.expected_counts(lines)) <= 5000  # a long tail is visited
    assert list(genlog.generate(50, seed=3)) != list(genlog.generate(50, seed=3, urls=5000))
    with pytest.raises(ValueError):
        list(genlog.generate(5, 0, urls=0))


def test_malformed_share_follows_the_rate() -> None:
    for rate in (0.0, 0.02, 0.2):
        lines = list(genlog.generate(20_000, seed=5, malformed_rate=rate))
        share = genlog.malformed_count(lines) / len(lines)
        assert abs(share - rate) < 0.01 + rate * 0.1, (rate, share)


def test_expected_counts_ignores_malformed_lines() -> None:
    lines = list(genlog.generate(3000, seed=6, malformed_rate=0.1))
    counts = genlog.expected_counts(lines)
    assert sum(counts.values()) + genlog.malformed_count(lines) == 3000


@pytest.mark.parametrize("bad", [{"n": -1}, {"malformed_rate": 1.5}, {"span": 0}])
def test_bad_arguments_are_refused(bad: dict[str, float]) -> None:
    args = {"n": 10, **bad}
    n = int(args.pop("n"))
    with pytest.raises(ValueError):
        list(genlog.generate(n, 0, **args))  # type: ignore[arg-type]


def test_files_split_the_same_stream_and_appear_only_by_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[str, str, list[str]]] = []
    real_rename = os.rename

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # When the rename happens the temp file is complete and the final name absent.
        assert not Path(dst).exists()
        assert Path(src).name.startswith(".")
        renames.append((Path(src).name, Path(dst).name, sorted(os.listdir(tmp_path))))
        real_rename(src, dst)

    monkeypatch.setattr(genlog.os, "rename", spy)
    assert genlog.main(["--lines", "1001", "--files", "3", "--seed", "9", "--out",
                        str(tmp_path)]) == 0
    names = sorted(os.listdir(tmp_path))
    assert names == ["access-00000.log", "access-00001.log", "access-00002.log"]
    assert [r[:2] for r in renames] == [(f".{n}.tmp", n) for n in names]
    assert all(not any(not f.startswith(".") and f not in names[:i] for f in listing)
               for i, (_, _, listing) in enumerate(renames))  # nothing visible before rename
    contents = [(tmp_path / n).read_text().splitlines() for n in names]
    assert [len(c) for c in contents] == [334, 334, 333]
    assert [line for c in contents for line in c] == list(genlog.generate(1001, 9))


def test_existing_file_name_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "access-00000.log").write_text("keep me\n")
    assert genlog.main(["--lines", "5", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "access-00000.log").read_text() == "keep me\n"


def test_cli_requires_exactly_one_destination(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        genlog.main(["--lines", "5"])
    with pytest.raises(SystemExit):
        genlog.main(["--lines", "5", "--stdout", "--out", str(tmp_path)])
