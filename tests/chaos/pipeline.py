"""The chaos pipeline's pieces: input with an exact oracle, configs, and what the agent logged.

One agent: spooldir -> replicating -> two file channels -> SparkSink (polled by the *pull*
consumer) and avro sink (pushing to the *push* consumer). Both consumers run the same
declarative job with a checkpoint: requests per URL in event-time windows of the log's own
timestamps, written to SQLite. Event time makes every reported window checkable: its
per-URL counts depend only on which lines were counted, not on when they arrived.
"""

from __future__ import annotations

import collections
import pickle
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from consumer.jobs.parsers import apache_combined
from scripts.genlog import apache_time, generate, write_spool_file

START = 1_700_000_000  # the log's first second
SPAN = 7_200  # seconds of log time the input covers
WINDOW = 300  # event-time windows (tumbling), seconds
LATENESS = 2_400  # allowed lateness, seconds: 8 windows, far more than any reordering here
TABLE = "chaos_urls"
SENTINEL_URL = "/chaos/sentinel"
BATCH = 1_000  # source batch, channel transaction, sink batch, poll size

WindowKey = tuple[int, int]  # (window_start_ms, window_end_ms)
Counts = dict[WindowKey, collections.Counter[str]]


def window_of(time_field: str) -> WindowKey:
    """The event-time window of an Apache ``[time]`` field, as the job computes it."""
    ms = int(datetime.strptime(time_field, "%d/%b/%Y:%H:%M:%S %z").timestamp()) * 1000
    start = ms - ms % (WINDOW * 1000)
    return start, start + WINDOW * 1000


def count(lines: list[str]) -> Counts:
    """Per window, per URL: what an exactly-once job reports for ``lines``."""
    counts: Counts = collections.defaultdict(collections.Counter)
    for line in lines:
        rec = apache_combined(line)
        if rec is not None and rec["url"] != SENTINEL_URL:
            counts[window_of(rec["time"])][rec["url"]] += 1
    return counts


def generated_input(lines: int, seed: int) -> list[str]:
    """``lines`` Apache combined lines (1% malformed); every well-formed one made unique by
    a mark in its user agent, so the agent's channel logs show which lines it put twice."""
    out = []
    for i, line in enumerate(generate(lines, seed, malformed_rate=0.01, start=START,
                                      span=SPAN)):
        if apache_combined(line) is not None:
            line = f"{line[:-1]} chaos/{i}\""
        out.append(line)
    return out


def sentinel() -> str:
    """One line far past the data: its watermark finalises every window of the data."""
    t = apache_time(START + SPAN + LATENESS + 2 * WINDOW)
    return (f'127.0.0.1 - - [{t}] "GET {SENTINEL_URL} HTTP/1.1" 200 1 "-" "chaos/end"')


class Spool:
    """The spool directory, fed whole files (written aside, renamed in)."""

    def __init__(self, root: Path, lines: list[str], files: int) -> None:
        self.dir, self.staging = root / "spool", root / "staging"
        self.dir.mkdir()
        self.staging.mkdir()
        per = -(-len(lines) // files)
        self.chunks = [lines[i:i + per] for i in range(0, len(lines), per)]
        self.landed = 0

    def land_until(self, n: int) -> None:
        while self.landed < min(n, len(self.chunks)):
            self._land(f"access-{self.landed:04d}.log", self.chunks[self.landed])
            self.landed += 1

    def land_sentinel(self) -> None:
        self._land("zz-sentinel.log", [sentinel()])

    def _land(self, name: str, lines: list[str]) -> None:
        written = write_spool_file(self.staging, name, lines)
        written.rename(self.dir / name)

    def all_completed(self) -> bool:
        names = [p.name for p in self.dir.iterdir() if not p.name.startswith(".")]
        return bool(names) and all(n.endswith(".COMPLETED") for n in names)


def agent_conf(root: Path, spool: Path, pull_port: int, push_port: int) -> Path:
    conf = root / "agent.conf"
    channels = {"cpull": root / "channel-pull", "cpush": root / "channel-push"}
    lines = [
        "a1.sources = r1", "a1.channels = cpull cpush", "a1.sinks = kpull kpush",
        "a1.sources.r1.type = spooldir", f"a1.sources.r1.spoolDir = {spool}",
        "a1.sources.r1.fileHeader = true", f"a1.sources.r1.batchSize = {BATCH}",
        "a1.sources.r1.interceptors = i1", "a1.sources.r1.interceptors.i1.type = timestamp",
        "a1.sources.r1.channels = cpull cpush",
    ]
    for name, data in channels.items():
        lines += [f"a1.channels.{name}.type = file", f"a1.channels.{name}.dataDirs = {data}",
                  f"a1.channels.{name}.checkpointDir = {data}-checkpoint",
                  f"a1.channels.{name}.capacity = 1000000",
                  f"a1.channels.{name}.transactionCapacity = {BATCH}"]
    lines += [
        "a1.sinks.kpull.type = org.apache.spark.streaming.flume.sink.SparkSink",
        "a1.sinks.kpull.hostname = 127.0.0.1", f"a1.sinks.kpull.port = {pull_port}",
        "a1.sinks.kpull.channel = cpull",
        "a1.sinks.kpush.type = avro", "a1.sinks.kpush.hostname = 127.0.0.1",
        f"a1.sinks.kpush.port = {push_port}", f"a1.sinks.kpush.batch-size = {BATCH}",
        "a1.sinks.kpush.channel = cpush",
    ]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def job_yaml(root: Path, name: str, receiver: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(f"""\
name: {TABLE}
receiver: {receiver}
parser: apache_combined
key: url
event_time: {{field: time, format: apache, allowed_lateness: {LATENESS}}}
window: {WINDOW}
checkpoint: {root / f"checkpoint-{name}"}
outputs:
  - {{type: sqlite, path: {root / f"{name}.db"}}}
""")
    return path


# ---- what the agent put into its channels (flumelet's file channel log) --------------------
_RECORD = struct.Struct(">II")  # length, crc32; then a pickle: ("P", [(seq, headers, body)])
LOG_NAME = "flumelet-channel.log"  # or ("T", [seq]) for committed takes


@dataclass
class ChannelLog:
    """Every event ever put into one file channel, by its sequence number, gathered across
    agent runs (each run rewrites the log with the live events, keeping their numbers)."""

    directory: Path

    def __post_init__(self) -> None:
        self.puts: dict[int, bytes] = {}

    def read(self) -> int:
        """Add this run's puts; returns how many events are live (put, take not committed)."""
        path = self.directory / LOG_NAME
        data = path.read_bytes() if path.exists() else b""
        live: set[int] = set()
        pos = 0
        while pos + _RECORD.size <= len(data):
            length, crc = _RECORD.unpack_from(data, pos)
            body = data[pos + _RECORD.size:pos + _RECORD.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break  # a torn tail: the agent cuts it too
            pos += _RECORD.size + length
            kind, items = pickle.loads(body)
            if kind == "P":
                for seq, _headers, payload in items:
                    self.puts[seq] = payload
                    live.add(seq)
            elif kind == "T":
                live.difference_update(items)
            else:
                raise AssertionError(f"{path}: unknown record {kind!r}: the format changed")
        return len(live)

    def put_again(self, lines: list[str]) -> list[str]:
        """Lines the agent put more often than ``lines`` hold them."""
        seen = collections.Counter(self.puts.values())
        seen.subtract(collections.Counter(line.encode() for line in lines))
        return [body.decode() for body, n in seen.items() for _ in range(n)]
