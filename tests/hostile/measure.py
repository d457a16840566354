"""Run issue 21's attacks (items 2-6), at the issue's sizes and with default limits, against
the processes of a source tree, and print what each cost.

    python -m tests.hostile.measure [--root DIR] [--only TEXT ...]

``--root`` is the tree whose ``flume-agent``/``flume-consumer`` are attacked (default: this
one), so the same attacks measure a tree before a change and after it. Each row: the
target's RSS peak growth during the attack, and the well-behaved client's rate during it
against its rate just before. Not a test: nothing is asserted (tests/hostile/ does that).
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.hostile import attacks
from tests.hostile.net_targets import (
    ROOT,
    AgentPorts,
    GoodSender,
    Target,
    attack,
    avro_agent,
    free_port,
    listening,
    metrics,
    push_consumer,
    running,
    wait_for,
)
from tests.wire import open_fds

MiB = 2**20

Attack = Callable[[int, int | None], object]  # (port, deflate port)

# tests/hostile/test_net_items.py's slow job, also for a tree without listener limits
SLOW_ANY_TREE = """\
import time
from consumer import SparkContext
from consumer.flume import FlumeUtils
from consumer.streaming import StreamingContext

sc = SparkContext(appName="slow")
ssc = StreamingContext(sc, 1)
try:
    from protocol.limits import ListenerLimits
    events = FlumeUtils.createStream(ssc, "127.0.0.1", {port},
                                     limits=ListenerLimits(max_backlog_bytes={backlog}))
except (ImportError, TypeError):  # a tree without listener limits
    events = FlumeUtils.createStream(ssc, "127.0.0.1", {port})

def slow(rdd):
    time.sleep(1.5)
    print("processed", rdd.count(), flush=True)

events.foreachRDD(slow)
ssc.start()
ssc.awaitTermination()
"""

ATTACKS: dict[str, Attack] = {
    "2: 8 MiB frame of 4M empty events": lambda p, d: attacks.tiny_events_frame(p),
    "2: the same deflated (8 KB)": lambda p, d: attacks.deflate_bomb(d) if d else None,
    "3: 16 unfinished 63 MiB frames": lambda p, d: attacks.unfinished_frames(p),
    "3: the same deflated (63 KB each)":
        lambda p, d: attacks.unfinished_frames(d, deflate=True) if d else None,
    "4: 2000 handshakes, new 100 KB protocols":
        lambda p, d: attacks.new_protocols(p, 2000, 100_000),
    "4: 500 handshakes, new 60 KB protocols": lambda p, d: attacks.new_protocols(p, 500),
}


def network(root: Path, tmp: Path, only: list[str]) -> None:
    ports = AgentPorts()
    agent = avro_agent(tmp, ports, root)
    push = free_port()
    consumer = push_consumer(tmp, push, tmp / "out.jsonl", root)
    try:
        for tname, target, port, dport in (("agent", agent, ports.avro, ports.deflate),
                                           ("consumer", consumer, push, None)):
            sender = GoodSender(port)
            with running(sender):
                for name, fn in ATTACKS.items():
                    if (only and not any(o in name for o in only)) or not target.alive():
                        continue
                    if "deflated" in name and dport is None:
                        continue
                    out = attack(target, sender.record, name,
                                 lambda fn=fn, p=port, d=dport: fn(p, d))  # type: ignore[misc]
                    print(f"{tname:9s} {out}", flush=True)
            print(f"{tname:9s} alive after the attacks: {target.alive()}", flush=True)
    finally:
        agent.stop()
        consumer.stop()


def item5(root: Path, tmp: Path) -> None:
    """A client pipelining appendBatch calls, never reading a reply, into a consumer whose
    job takes 1.5 s per 1 s batch."""
    port = free_port()
    job = tmp / "slow.py"
    job.write_text(SLOW_ANY_TREE.format(port=port, backlog=16 * MiB))
    target = Target("flume-consumer", ["-m", "consumer.cli", "run", str(job)], tmp / "slow.log",
                    root)
    try:
        wait_for(lambda: listening(port), 30, "the consumer", target)
        base = target.rss()
        target.reset_peak()
        sent = attacks.pipelining_never_reading(port, seconds=10.0)
        print(f"5: pipelining 10 s into a slow consumer: {sent / MiB:.0f} MiB accepted "
              f"off the wire, RSS +{(target.peak() - base) / MiB:.0f} MiB", flush=True)
        time.sleep(3)
        print(f"5: 3 s after the client left: RSS +{(target.rss() - base) / MiB:.0f} MiB",
              flush=True)
    finally:
        target.stop()


def item6(root: Path, tmp: Path) -> None:
    """RLIMIT_NOFILE 256, 400 idle connections to the avro source, files in the spool dir."""
    spool, out = tmp / "spool", tmp / "roll"
    spool.mkdir()
    out.mkdir()
    avro, mport = free_port(), free_port()
    conf = tmp / "fd.conf"
    conf.write_text(f"""\
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = spooldir
a1.sources.r1.spoolDir = {spool}
a1.sources.r1.channels = c1
a1.sources.r2.type = avro
a1.sources.r2.bind = 127.0.0.1
a1.sources.r2.port = {avro}
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
""")
    target = Target("flume-agent", ["-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                    "-Dflume.root.logger=INFO,console",
                                    "-Dflume.monitoring.type=http",
                                    f"-Dflume.monitoring.port={mport}"],
                    tmp / "fd.log", root, nofile=256)
    socks = []
    try:
        wait_for(lambda: listening(avro) and listening(mport), 30, "the agent", target)
        for _ in range(400):
            try:
                socks.append(socket.create_connection(("127.0.0.1", avro), timeout=2))
            except OSError:
                break
        time.sleep(1)
        for i in range(5):
            staging = tmp / f"f{i}.log"
            staging.write_text("".join(f"file {i} line {n}\n" for n in range(200)))
            os.rename(staging, spool / staging.name)
        time.sleep(5)
        try:
            metrics(mport)
            answered = "yes"
        except OSError as exc:
            answered = f"no ({exc})"
        lines = sum(len(p.read_text().splitlines()) for p in out.iterdir())
        fds = open_fds(target.pid)
    finally:
        for s in socks:
            s.close()
        target.stop()
    log = target.text().splitlines()
    print(f"6: RLIMIT_NOFILE 256, 400 idle connections: agent fds {fds}, /metrics answered "
          f"{answered}, spooled lines delivered {lines}/1000, log {len(log)} lines "
          f"({sum('Too many open files' in x for x in log)} with 'Too many open files')",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    root, only = args.root.resolve(), args.only
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not only or any(o[0] in "234" for o in only):
            network(root, tmp, only)
        if not only or "5" in only:
            item5(root, tmp)
        if not only or "6" in only:
            item6(root, tmp)


if __name__ == "__main__":
    main()
