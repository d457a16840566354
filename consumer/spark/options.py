"""The ``flume`` data source's options: parsed once, every problem reported together.

Spark passes options as strings and matches their names case-insensitively; so do we.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OPTION_DOCS", "SourceOptions", "parse_address", "parse_options"]

# name -> (default, what it means); the README's option table is written from this.
OPTION_DOCS: dict[str, tuple[str, str]] = {
    "addresses": ("(required)", "comma-separated host:port of the agents' SparkSinks"),
    "stagingDir": ("(required)", "a directory every executor and the driver can reach (shared "
                                 "storage on a cluster), one per query: where pulled events are "
                                 "kept until Spark commits the micro-batch"),
    "maxBatchSize": ("1000", "events asked for per getEventBatch call"),
    "maxUnackedBatches": ("4", "SparkSink batches a task holds before it stages them (one "
                                "fsync) and acks them; each holds one of the sink's `threads`"),
    "maxEventsPerTrigger": ("100000", "events pulled per micro-batch, split evenly over the "
                                      "agents read in it"),
    "bodyDecoder": ("binary", "`binary` keeps `body` as bytes; `utf-8` makes it a string "
                              "(undecodable bytes become U+FFFD)"),
    "pollTimeoutMs": ("5000", "how long a task waits for one getEventBatch answer before it "
                              "ends its slot (Spark's own sink needs ~3 s for a partial batch)"),
    "probeWaitMs": ("200", "how long the driver waits for an agent to show it has events "
                           "before it plans a micro-batch without that agent"),
    "connectTimeoutMs": ("10000", "TCP connect timeout to an agent"),
    "sinkTimeoutMs": ("60000", "the SparkSink's `timeout`: an ack later than 90% of it is not "
                               "trusted to have committed"),
    "redeliveryTimeoutMs": ("120000", "how long events counted but not known to be acked are "
                                      "expected back from the agent at the least (must exceed "
                                      "sinkTimeoutMs)"),
}

BODY_DECODERS = ("binary", "utf-8")


@dataclass(frozen=True)
class SourceOptions:
    addresses: tuple[str, ...]
    staging_dir: str
    max_batch_size: int = 1000
    max_events_per_trigger: int = 100_000
    max_unacked_batches: int = 4
    body_as_string: bool = False
    poll_timeout: float = 5.0
    probe_wait: float = 0.2
    connect_timeout: float = 10.0
    sink_timeout: float = 60.0
    redelivery_timeout: float = 120.0


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text.strip()!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text.strip()!r}: port must be 1..65535")
    return host, int(port)


def parse_options(raw: Mapping[str, str]) -> SourceOptions:
    """Validate ``raw`` (Spark's option map); raise ValueError listing every problem."""
    known = {name.lower(): name for name in OPTION_DOCS}
    given = {str(k).lower(): str(v) for k, v in raw.items()}
    problems = [f"unknown option {k!r} (known: {', '.join(OPTION_DOCS)})"
                for k in given if k not in known]

    def number(name: str, kind: type[int] | type[float], minimum: float) -> float:
        text = given.get(name.lower(), OPTION_DOCS[name][0])
        try:
            value = kind(text)
        except ValueError:
            problems.append(f"{name} must be a number, got {text!r}")
            return kind(OPTION_DOCS[name][0])
        if value < minimum:
            problems.append(f"{name} must be >= {minimum:g}, got {text!r}")
        return value

    addresses: list[str] = []
    for part in given.get("addresses", "").split(","):
        if not part.strip():
            continue
        try:
            host, port = parse_address(part)
        except ValueError as exc:
            problems.append(f"addresses: {exc}")
            continue
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if address in addresses:
            problems.append(f"addresses: {address} is listed twice")
        addresses.append(address)
    if not addresses and "addresses" not in " ".join(problems):
        problems.append("addresses is required: comma-separated host:port of SparkSinks")
    staging = given.get("stagingdir", "").strip()
    if not staging:
        problems.append("stagingDir is required: a directory the driver and every executor can "
                        "reach, one per query (it holds pulled events until Spark commits them)")
    decoder = given.get("bodydecoder", "binary").strip().lower().replace("utf8", "utf-8")
    if decoder not in BODY_DECODERS:
        problems.append(f"bodyDecoder must be one of {', '.join(BODY_DECODERS)}, "
                        f"got {given['bodydecoder']!r}")
    opts = SourceOptions(
        addresses=tuple(addresses),
        staging_dir=staging,
        max_batch_size=int(number("maxBatchSize", int, 1)),
        max_events_per_trigger=int(number("maxEventsPerTrigger", int, 1)),
        max_unacked_batches=int(number("maxUnackedBatches", int, 1)),
        body_as_string=decoder == "utf-8",
        poll_timeout=number("pollTimeoutMs", float, 1) / 1000,
        probe_wait=number("probeWaitMs", float, 0) / 1000,
        connect_timeout=number("connectTimeoutMs", float, 1) / 1000,
        sink_timeout=number("sinkTimeoutMs", float, 1) / 1000,
        redelivery_timeout=number("redeliveryTimeoutMs", float, 1) / 1000,
    )
    if opts.redelivery_timeout <= opts.sink_timeout:
        problems.append("redeliveryTimeoutMs must be larger than sinkTimeoutMs: a batch can come "
                        "back as late as the sink's timeout")
    if problems:
        raise ValueError("flume data source: " + "; ".join(problems))
    return opts
