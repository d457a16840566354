"""Decoding appendBatch parameters: the specialised Flume-event decoder against fastavro.

Two workloads: 1000 events of ~130-byte Apache lines with two headers (what a Flume avro
sink sends), and a frame of many tiny events (empty headers, 8-byte bodies), where per-event
overhead dominates. Baseline in the same run: fastavro's schemaless reader on the same bytes
with the same schema. Best of several runs, CPU time (a shared machine's noise only ever
slows a run down). The decoder also checks the call limits while decoding; fastavro checks
nothing.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastavro import schemaless_reader

from bench.common import apache_line, report
from protocol import codec
from protocol.eventarray import DecodeBudget, decode_events
from protocol.limits import ListenerLimits
from protocol.schemas import AVRO_SOURCE_PROTOCOL

REQUEST = AVRO_SOURCE_PROTOCOL.messages["appendBatch"].request
LIMITS = ListenerLimits()


def workloads() -> dict[str, tuple[bytes, int]]:
    rng = random.Random(1)
    batch = [{"headers": {"timestamp": str(1700000000000 + i), "host": "web-01"},
              "body": apache_line(i, rng)} for i in range(1000)]
    tiny = [{"headers": {}, "body": b"%08d" % i} for i in range(50_000)]
    return {"1000 x 130 B": (codec.encode(REQUEST, {"events": batch}), 1000),
            "50k tiny": (codec.encode(REQUEST, {"events": tiny}), 50_000)}


def specialised(data: bytes) -> Any:
    return decode_events(data, 0, DecodeBudget(LIMITS.max_events_per_call,
                                               LIMITS.max_call_bytes))[0]


def with_fastavro(data: bytes) -> Any:
    value: Any = schemaless_reader(io.BytesIO(data), REQUEST, None)
    return value["events"]


def best_rate(fn: Callable[[bytes], Any], data: bytes, events: int, seconds: float) -> float:
    """Events/s of the fastest of several timed rounds of ~``seconds / 5`` each."""
    best = 0.0
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        start, n = time.process_time(), 0
        while n == 0 or time.process_time() - start < seconds / 5:
            fn(data)
            n += 1
        best = max(best, n * events / (time.process_time() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    figures: dict[str, tuple[float, float]] = {}
    for name, (data, events) in workloads().items():
        assert specialised(data) == with_fastavro(data)
        ours = best_rate(specialised, data, events, seconds)
        theirs = best_rate(with_fastavro, data, events, seconds)
        figures[name] = (ours, theirs)
        print(f"{name}: specialised {ours:,.0f} events/s, fastavro {theirs:,.0f} events/s "
              f"({ours / theirs:.2f}x)")
    ours, theirs = figures["1000 x 130 B"]
    report("event_decoder: appendBatch of 1000 x 130-byte events, decoded (tiny events: "
           f"{figures['50k tiny'][0]:,.0f} vs {figures['50k tiny'][1]:,.0f})",
           ours, theirs, "fastavro, same bytes", round(theirs))


if __name__ == "__main__":
    main()
