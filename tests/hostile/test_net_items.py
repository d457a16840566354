"""Issue 21 items 5 and 6 with real processes: a client pipelining into a consumer that is
slower than it, and a flood of idle connections under a lowered descriptor limit."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from tests.hostile import attacks
from tests.hostile.net_targets import (
    GoodSender,
    Target,
    free_port,
    listening,
    metrics,
    wait_for,
)
from tests.wire import open_fds

pytestmark = pytest.mark.e2e
MiB = 2**20

SLOW_JOB = """\
import time
from consumer import SparkContext
from consumer.flume import FlumeUtils
from consumer.streaming import StreamingContext
from protocol.limits import ListenerLimits

sc = SparkContext(appName="slow")
ssc = StreamingContext(sc, 1)
events = FlumeUtils.createStream(ssc, "127.0.0.1", {port},
                                 limits=ListenerLimits(max_backlog_bytes={backlog}))

def slow(rdd):
    time.sleep(1.5)  # every batch takes longer than the batch interval
    print("processed", rdd.count(), flush=True)

events.foreachRDD(slow)
ssc.start()
ssc.awaitTermination()
"""


def test_item5_a_pipelining_client_is_held_back_by_a_slow_consumer(tmp_path: Path) -> None:
    """Before: every call was answered at once and the consumer queued what it could not
    process (+1.22 GiB for 400 MiB). Now calls wait once 16 MiB (decoded) are answered but
    unprocessed; the client is held back by TCP and the consumer's RSS stays bounded."""
    port = free_port()
    job = tmp_path / "slow.py"
    job.write_text(SLOW_JOB.format(port=port, backlog=16 * MiB))
    target = Target("flume-consumer", ["-m", "consumer.cli", "--log-level", "info", "run",
                                       str(job)], tmp_path / "slow.log")
    try:
        wait_for(lambda: listening(port), 30, "the consumer to listen", target)
        base = target.rss()
        target.reset_peak()
        sent = attacks.pipelining_never_reading(port, seconds=4.0)
        growth = target.peak() - base
        print(f"item 5: sent {sent / MiB:.0f} MiB in 4 s, consumer RSS +{growth / MiB:.0f} MiB")
        assert target.alive(), target.text()[-3000:]
        assert growth < 100 * MiB
        # what the kernel buffers hold, the calls read ahead and 16 MiB of backlog: no more
        assert sent < 64 * MiB
        wait_for(lambda: "processed" in target.text(), 20, "a batch to be processed", target)
    finally:
        target.stop()


def test_item6_idle_connections_under_a_low_descriptor_limit(tmp_path: Path) -> None:
    """RLIMIT_NOFILE 256 and 400 idle connections (before: every descriptor taken, the
    spool dir could not be scanned, /metrics stopped answering, a flood of log lines). Now
    the connections past the process's share are refused with one log line, spool files
    keep flowing, /metrics answers, and once the idle ones time out a client gets in."""
    spool, out = tmp_path / "spool", tmp_path / "out"
    spool.mkdir()
    out.mkdir()
    avro, metrics_port = free_port(), free_port()
    conf = tmp_path / "fd.conf"
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
a1.sources.r2.idle-timeout = 3000
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.channels.c2.capacity = 100000
a1.channels.c2.transactionCapacity = 1000
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
                                    f"-Dflume.monitoring.port={metrics_port}"],
                    tmp_path / "fd.log", nofile=256)
    socks: list[socket.socket] = []
    try:
        for port in (avro, metrics_port):
            wait_for(lambda p=port: listening(p), 30, f"port {port}", target)  # type: ignore[misc]
        for _ in range(400):
            try:
                socks.append(socket.create_connection(("127.0.0.1", avro), timeout=5))
            except OSError:
                break
        wait_for(lambda: open_fds(target.pid) < 250, 10, "refused connections to close",
                 target)
        # the process's own work goes on
        for i in range(5):
            staging = tmp_path / f"f{i}.log"
            staging.write_text("".join(f"file {i} line {n}\n" for n in range(200)))
            os.rename(staging, spool / staging.name)
        assert metrics(metrics_port)["SOURCE.r2"]["OpenConnectionCount"]

        def delivered() -> int:
            return sum(len(p.read_text().splitlines()) for p in out.iterdir() if p.is_file())

        wait_for(lambda: delivered() == 1000, 30, "every spooled line to arrive", target)
        # the idle connections time out (3 s), then a real client gets in and sends
        time.sleep(3.5)
        sender = GoodSender(avro)
        sender.start()
        wait_for(lambda: sender.record.total >= 1000, 30, "a new client to send", target)
        sender.stop()
        assert target.alive()
    finally:
        for s in socks:
            s.close()
        target.stop()
    log = target.text()
    refusals = [line for line in log.splitlines() if "refusing the connection" in line]
    assert 1 <= len(refusals) <= 3, log[-3000:]
    assert "file descriptors" in refusals[0]
    assert "Too many open files" not in log and "Traceback" not in log, log[-3000:]
    assert len(log.splitlines()) < 80, log[-3000:]
