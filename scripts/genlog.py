#!/usr/bin/env python3
"""Deterministic Apache combined-log generator for tests, benchmarks and demos.

Same ``--seed`` and options -> byte-identical output, on any machine, so oracles
(``expected_counts``) can be computed from the generator instead of stored as fixtures.

* URL popularity is Zipf-like (weight of rank r is 1 / r**s), as real access logs are: a few
  pages take most hits, a long tail takes the rest. Top-N jobs thus have a stable answer.
* Clients, user agents, referers, statuses and sizes are drawn from realistic pools.
* ``--malformed-rate`` mixes in lines that the classic Spark example's regex (``LOG_PATTERN``)
  rejects: truncated writes, garbage, a non-numeric status, a missing ``[``, an unquoted
  request. Every well-formed line matches it.
* Event times rise through ``[start, start + span)`` in line order.
* Files are written the way a spooling directory needs: to a dot-prefixed name in the same
  directory (which spooldir ignores), fsynced, then ``os.rename``-d into place, so the source
  never sees a file that is still growing.

    python scripts/genlog.py --lines 100000 --files 10 --out /tmp/spool --seed 7
    python scripts/genlog.py --lines 5 --stdout
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOG_PATTERN = re.compile(
    r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+)\s*(\S*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"'
)
URL_GROUP = 6

DEFAULT_START = 1_700_000_000  # 2023-11-14T22:13:20Z
DEFAULT_SPAN = 3600
DEFAULT_ZIPF_S = 1.1
HOST = "https://www.example.com"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.58",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
)
_UA_WEIGHTS: tuple[float, ...] = (30, 14, 8, 16, 12, 6, 4, 2, 3, 3, 2)

SEARCH_REFERERS = (
    "https://www.google.com/",
    "https://www.bing.com/search?q=example+shop",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/",
    "https://t.co/x1Yz42",
)

_STATUSES: tuple[tuple[int, float], ...] = (
    (200, 82), (304, 7), (301, 2), (302, 3), (404, 4), (403, 1), (500, 0.7), (503, 0.3))
_METHODS: tuple[tuple[str, float], ...] = (("GET", 90), ("POST", 7), ("HEAD", 3))
_PROTOCOLS: tuple[tuple[str, float], ...] = (("HTTP/1.1", 85), ("HTTP/2.0", 12), ("HTTP/1.0", 3))
_USERS = ("-",) * 40 + ("alice", "bob")
_MALFORMED_KINDS = ("truncated", "garbage", "bad_status", "no_bracket", "unquoted_request")


def build_urls(rng: random.Random, n: int | None = None) -> list[str]:
    """A site's URL set, most popular first (rank order is part of the seed's output).

    ``n``: exactly that many distinct URLs (the built-in set of about 150, cut or extended
    with generated product, article and image pages); None keeps the built-in set."""
    urls = ["/", "/index.html", "/favicon.ico", "/static/css/site.css", "/static/js/app.js",
            "/robots.txt", "/login", "/search", "/cart", "/about", "/contact", "/sitemap.xml"]
    for category in ("books", "music", "garden", "toys", "kitchen", "sports"):
        urls.append(f"/products/{category}")
        urls.extend(f"/products/{category}/item-{n}" for n in rng.sample(range(1000, 9999), 12))
    for year, month in itertools.product((2022, 2023), (1, 4, 7, 10)):
        urls.append(f"/blog/{year}/{month:02d}/post-{rng.randrange(100, 999)}.html")
    urls.extend(f"/api/v1/items?id={rng.randrange(1, 50000)}" for _ in range(20))
    urls.extend(f"/static/img/photo-{n}.jpg" for n in rng.sample(range(100, 999), 30))
    if n is not None:
        urls = urls[:n] if n <= len(urls) else urls + _more_urls(rng, n - len(urls), set(urls))
    head, tail = urls[:4], urls[4:]
    rng.shuffle(tail)  # popularity is not alphabetical: shuffle everything but the front page
    return head + tail


def _more_urls(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    kinds = ("/products/{}/item-{}", "/blog/{}/post-{}.html", "/static/img/{}-{}.jpg",
             "/api/v1/{}?id={}")
    words = ("books", "music", "garden", "toys", "kitchen", "sports", "news", "photo", "user")
    out: list[str] = []
    i = 0
    while len(out) < count:
        url = kinds[i % len(kinds)].format(rng.choice(words), 10_000 + i)
        i += 1
        if url not in taken:
            out.append(url)
    return out


def zipf_cum_weights(n: int, s: float) -> list[float]:
    """Cumulative weights 1/r**s for ranks 1..n (for ``bisect`` sampling)."""
    return list(itertools.accumulate(1.0 / (rank ** s) for rank in range(1, n + 1)))


def _weighted(pairs: Sequence[tuple[T, float]]) -> tuple[list[T], list[float]]:
    return [v for v, _ in pairs], list(itertools.accumulate(w for _, w in pairs))


def _ip(rng: random.Random) -> str:
    """A plausible public IPv4 address (no private, loopback, multicast or reserved blocks)."""
    while True:
        a = rng.randrange(1, 224)
        if a not in (10, 100, 127, 169, 172, 192, 198, 203):
            return f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def apache_time(epoch: int) -> str:
    """``10/Oct/2000:13:55:36 +0000`` (UTC; no locale or tz database involved)."""
    t = time.gmtime(epoch)
    return (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


class _Site:
    """Pools drawn once per seed: URLs with Zipf ranks, clients, base sizes per URL."""

    def __init__(self, rng: random.Random, zipf_s: float, urls: int | None = None) -> None:
        self.urls = build_urls(rng, urls)
        self.url_cum = zipf_cum_weights(len(self.urls), zipf_s)
        self.sizes = {u: rng.randrange(200, 60_000) for u in self.urls}
        self.clients = [_ip(rng) for _ in range(500)]
        self.client_cum = zipf_cum_weights(len(self.clients), 0.8)
        self.statuses, self.status_cum = _weighted(_STATUSES)
        self.methods, self.method_cum = _weighted(_METHODS)
        self.protocols, self.protocol_cum = _weighted(_PROTOCOLS)
        self.ua_cum = list(itertools.accumulate(_UA_WEIGHTS))


def _pick(rng: random.Random, values: Sequence[T], cum: list[float]) -> T:
    return values[bisect.bisect(cum, rng.random() * cum[-1])]


def _good_line(rng: random.Random, site: _Site, epoch: int) -> str:
    url = _pick(rng, site.urls, site.url_cum)
    status = _pick(rng, site.statuses, site.status_cum)
    if status == 304 or rng.random() < 0.01:
        size = "-"
    elif status >= 300:
        size = str(rng.randrange(150, 600))
    else:
        size = str(max(1, int(site.sizes[url] * rng.uniform(0.9, 1.1))))
    roll = rng.random()
    if roll < 0.45:
        referer = "-"
    elif roll < 0.85:
        referer = HOST + _pick(rng, site.urls, site.url_cum)
    else:
        referer = rng.choice(SEARCH_REFERERS)
    return (
        f"{_pick(rng, site.clients, site.client_cum)} - {rng.choice(_USERS)} "
        f"[{apache_time(epoch)}] "
        f'"{_pick(rng, site.methods, site.method_cum)} {url} '
        f'{_pick(rng, site.protocols, site.protocol_cum)}" {status} {size} '
        f'"{referer}" "{_pick(rng, USER_AGENTS, site.ua_cum)}"'
    )


def _malformed_line(rng: random.Random, good: str) -> str:
    """Damage a well-formed line so that ``LOG_PATTERN`` no longer matches it."""
    kind = rng.choice(_MALFORMED_KINDS)
    if kind == "truncated":  # a torn write: the user agent's closing quote is always lost
        return good[: rng.randrange(8, len(good) - 1)]
    if kind == "garbage":
        return "".join(rng.choice("abcdefghij0123456789 #%&=") for _ in range(rng.randrange(5, 60)))
    if kind == "bad_status":
        return re.sub(r'" \d{3} ', '" OK ', good, count=1)
    if kind == "no_bracket":
        return good.replace("[", "", 1)
    return good.replace('"', "", 2)  # unquoted_request


def generate(
    n: int,
    seed: int = 0,
    *,
    malformed_rate: float = 0.0,
    start: int = DEFAULT_START,
    span: int = DEFAULT_SPAN,
    zipf_s: float = DEFAULT_ZIPF_S,
    urls: int | None = None,
) -> Iterator[str]:
    """Yield ``n`` log lines (no newline); line i's time is in ``[start, start + span)``,
    non-decreasing in i. About ``malformed_rate`` of them are malformed. ``urls``: how
    many distinct URLs the site has (default: the built-in set of about 150)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= malformed_rate <= 1.0:
        raise ValueError(f"malformed_rate must be within [0, 1], got {malformed_rate}")
    if span <= 0:
        raise ValueError(f"span must be > 0 seconds, got {span}")
    if urls is not None and urls < 1:
        raise ValueError(f"urls must be >= 1, got {urls}")
    rng = random.Random(seed)
    site = _Site(rng, zipf_s, urls)
    for i in range(n):
        epoch = start + int(span * (i + rng.random()) / n)  # (i + u) / n keeps times sorted
        line = _good_line(rng, site, epoch)
        if malformed_rate and rng.random() < malformed_rate:
            line = _malformed_line(rng, line)
        yield line


def url_of(line: str) -> str | None:
    """The request URL of a well-formed line (as the Spark example extracts it), else None."""
    match = LOG_PATTERN.match(line)
    return match.group(URL_GROUP) if match else None


def expected_counts(lines: Iterable[str]) -> Counter[str]:
    """Hits per URL over the well-formed lines: the oracle for top-URL jobs."""
    return Counter(url for url in map(url_of, lines) if url is not None)


def malformed_count(lines: Iterable[str]) -> int:
    return sum(1 for line in lines if url_of(line) is None)


def split_counts(total: int, parts: int) -> list[int]:
    """``total`` lines over ``parts`` files, the first files one line longer when uneven."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def write_spool_file(directory: Path, name: str, lines: Iterable[str]) -> Path:
    """Write ``lines`` to ``directory/name`` atomically as a spooling directory needs.

    The data goes to ``.name.tmp`` (dot files are ignored by spooldir), is fsynced, then
    renamed. Refuses to replace an existing file: spooldir treats a reused name as an error.
    """
    final = directory / name
    if final.exists():
        raise FileExistsError(f"{final} already exists; spooldir file names must be unique")
    temp = directory / f".{name}.tmp"
    with open(temp, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temp, final)
    return final


def write_files(
    out: Path, lines: Iterable[str], total: int, files: int, prefix: str = "access"
) -> list[Path]:
    """Split ``total`` lines of ``lines`` over ``files`` files named ``prefix-00000.log`` ..."""
    out.mkdir(parents=True, exist_ok=True)
    iterator = iter(lines)
    return [
        write_spool_file(out, f"{prefix}-{index:05d}.log", itertools.islice(iterator, count))
        for index, count in enumerate(split_counts(total, files))
    ]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=10_000, help="lines in total (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--files", type=int, default=1, help="number of files to split into")
    ap.add_argument("--out", type=Path, help="directory to write into (e.g. a spool directory)")
    ap.add_argument("--prefix", default="access", help="file name prefix (default access)")
    ap.add_argument("--malformed-rate", type=float, default=0.0, help="share of bad lines")
    ap.add_argument("--start", type=int, default=DEFAULT_START, help="first event time (epoch s)")
    ap.add_argument("--span", type=int, default=DEFAULT_SPAN, help="seconds the times cover")
    ap.add_argument("--zipf", type=float, default=DEFAULT_ZIPF_S, help="Zipf exponent s")
    ap.add_argument("--urls", type=int, help="distinct URLs (default: the built-in ~150)")
    ap.add_argument("--stdout", action="store_true", help="print lines instead of writing files")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    if args.lines < 0:
        ap.error("--lines must be >= 0")
    if args.files < 1:
        ap.error("--files must be >= 1")
    if args.stdout == (args.out is not None):
        ap.error("give exactly one of --out DIR or --stdout")
    try:
        lines = generate(args.lines, args.seed, malformed_rate=args.malformed_rate,
                         start=args.start, span=args.span, zipf_s=args.zipf, urls=args.urls)
        if args.stdout:
            for line in lines:
                sys.stdout.write(line + "\n")
            return 0
        paths = write_files(args.out, lines, args.lines, args.files, args.prefix)
    except (ValueError, OSError) as exc:
        print(f"genlog: {exc}", file=sys.stderr)
        return 2
    print(f"genlog: wrote {args.lines} lines to {len(paths)} file(s) in {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
