"""A pyspark.streaming-style script run by ``flume-consumer run`` gets the web UI a YAML job
has, fed by a StreamingListener: its batches, records and receivers."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from protocol.schemas import AVRO_SOURCE_PROTOCOL
from protocol.transport import RpcClient
from tests.e2e.procs import Proc, free_port, listening, wait_until

pytestmark = pytest.mark.e2e

JOB = """\
import sys
from consumer import SparkContext
from consumer.flume import FlumeUtils
from consumer.streaming import StreamingContext

sc = SparkContext(appName="script-ui")
ssc = StreamingContext(sc, 0.5)
FlumeUtils.createStream(ssc, "127.0.0.1", int(sys.argv[1])).count().pprint()
ssc.start()
ssc.awaitTermination()
"""


def send(port: int, events: int) -> None:
    async def main() -> None:
        client = RpcClient(AVRO_SOURCE_PROTOCOL, "127.0.0.1", port, request_timeout=10)
        try:
            batch = [{"headers": {}, "body": b"event %d" % i} for i in range(events)]
            assert await client.call("appendBatch", {"events": batch}) == "OK"
        finally:
            await client.close()
    asyncio.run(main())


def state(ui: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui}/api/state", timeout=5) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def test_flume_consumer_run_serves_a_scripts_progress(tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    job.write_text(JOB)
    push, ui = free_port(), free_port()
    proc = Proc("flume-consumer run", [sys.executable, "-m", "consumer.cli", "run",
                                       "--ui-port", str(ui), str(job), str(push)],
                tmp_path / "job.log")
    try:
        wait_until(lambda: listening(push) and listening(ui), 30, "the script's ports", [proc])
        send(push, 40)
        wait_until(lambda: state(ui)["totals"]["records"] >= 40, 30, "40 records in the UI",
                   [proc])
        got = state(ui)
        assert got["job"]["name"] == "script-ui"
        assert got["job"]["batch"] == 500
        assert got["totals"]["batches"] >= 1
        assert len(got["receivers"]) == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/metrics", timeout=5) as resp:
            assert b"flumelet_consumer_batches_total" in resp.read()
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(30) == 0
    finally:
        proc.stop()
    assert "Traceback" not in proc.tail(200_000)
