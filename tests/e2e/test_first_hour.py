"""What a new user sees in the first hour, from the real command lines: one clear line per
event (a peer down, the peer back, a port taken, a spool directory missing), the stop signals
(Ctrl-C twice, two SIGTERMs at once), ``--version``, a forgotten ``run``, and the same
behaviour for ``python job.py`` and ``flume-consumer run job.py``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.e2e.procs import ENV, ROOT, Proc, free_port, wait_listening, wait_until

pytestmark = pytest.mark.e2e
PY = sys.executable
AVRO_CONF = ROOT / "configs" / "spooldir-avro.conf"


def agent_args(spool: Path, port: int, *extra: str) -> list[str]:
    return [PY, "-m", "agent.cli", "-f", str(AVRO_CONF), "-n", "a1",
            f"-Da1.sources.r1.spoolDir={spool}", f"-Da1.sinks.k1.port={port}", *extra]


def lines_with(proc: Proc, text: str) -> list[str]:
    return [line for line in proc.tail(200_000).splitlines() if text in line]


def write_log(spool: Path, lines: int, name: str = "access.log") -> None:
    staging = spool.parent / "staging"
    staging.mkdir(exist_ok=True)
    (staging / name).write_text("".join(f"line {i}\n" for i in range(lines)))
    (staging / name).rename(spool / name)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process (this test) is listening on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield int(sock.getsockname()[1])


def run(args: list[str], timeout: float = 60, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=ENV, stdin=subprocess.DEVNULL)


def test_both_commands_say_their_version() -> None:
    expected = version("flumelet")
    agent = run([PY, "-m", "agent.cli", "--version"])
    consumer = run([PY, "-m", "consumer.cli", "--version"])
    assert (agent.returncode, agent.stdout) == (0, f"flume-agent (flumelet) {expected}\n")
    assert (consumer.returncode, consumer.stdout) == (
        0, f"flume-consumer (flumelet) {expected}\n")


def test_a_job_without_run_gets_a_hint(tmp_path: Path) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("name: x\n")
    result = run([PY, "-m", "consumer.cli", str(job)])
    assert result.returncode == 2
    assert f"{job} is a job: run it with 'flume-consumer run {job}'" in result.stderr


def test_an_agent_port_clash_is_one_line(tmp_path: Path, held_port: int) -> None:
    conf = tmp_path / "clash.conf"
    conf.write_text(f"""a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {held_port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
""")
    result = run([PY, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
                  "-Dflume.root.logger=WARN,console"])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if " ERROR " in line]
    [line] = result.stderr.splitlines()
    assert line.endswith(f"agent a1 could not start: source r1: cannot listen on "
                         f"127.0.0.1:{held_port}: address already in use (another process has "
                         "this port, perhaps another agent: stop it, or change "
                         "a1.sources.r1.port)")


def test_a_consumer_port_clash_is_one_line(held_port: int) -> None:
    result = run([PY, "-m", "consumer.cli", "--port", str(held_port), "--log-level", "WARNING"])
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert "cannot start the receiver: " in line and "Errno" not in line
    assert f"cannot listen on 127.0.0.1:{held_port}: address already in use (another " \
           "process has this port" in line


def test_peer_down_then_back_is_one_line_each(tmp_path: Path, spool: Path) -> None:
    port = free_port()
    agent = Proc("flume-agent", agent_args(spool, port), tmp_path / "agent.log")
    consumer: Proc | None = None
    try:
        write_log(spool, 500)
        wait_until(lambda: bool(lines_with(agent, "unreachable")), 30,
                   "the sink's peer-down line", [agent])
        [down] = lines_with(agent, "unreachable")
        assert " WARNING " in down
        assert down.endswith(f"sink k1: localhost:{port} unreachable (connection refused); "
                             "retrying every 5 s, events stay in c1")
        consumer = Proc("flume-consumer", [PY, "-m", "consumer.cli", "--port", str(port),
                                           "--log-level", "WARNING"], tmp_path / "consumer.log")
        wait_until(lambda: bool(lines_with(agent, "delivering again")), 30,
                   "the sink's peer-back line", [agent, consumer])
        [back] = lines_with(agent, "delivering again")
        assert " WARNING " in back and "sink k1: delivering again after " in back
        wait_until(lambda: (spool / "access.log.COMPLETED").exists(), 30, "the file done",
                   [agent, consumer])
        assert agent.stop() == 0
        assert consumer.stop() == 0
    finally:
        for proc in (agent, consumer):
            if proc is not None:
                proc.stop()
    text = agent.tail(200_000)
    assert len(lines_with(agent, "unreachable")) == 1
    assert "Traceback" not in text
    assert "Traceback" not in consumer.tail(200_000)


def test_pull_receiver_says_once_that_no_agent_answers_then_that_one_does(
        tmp_path: Path, spool: Path) -> None:
    port = free_port()
    consumer = Proc("flume-consumer", [PY, "-m", "consumer.cli", "--pull", f"127.0.0.1:{port}",
                                       "--log-level", "WARNING"], tmp_path / "consumer.log")
    agent: Proc | None = None
    try:
        wait_until(lambda: bool(lines_with(consumer, "unreachable")), 30, "the down line",
                   [consumer])
        conf = ROOT / "configs" / "spooldir-spark.conf"
        agent = Proc("flume-agent", [PY, "-m", "agent.cli", "-f", str(conf), "-n", "a1",
                                     f"-Da1.sources.r1.spoolDir={spool}",
                                     f"-Da1.sinks.k1.port={port}"], tmp_path / "agent.log")
        wait_until(lambda: bool(lines_with(consumer, "connected again")), 30, "the back line",
                   [consumer, agent])
        assert consumer.stop() == 0
        assert agent.stop() == 0
    finally:
        consumer.stop()
        if agent is not None:
            agent.stop()
    # five pollers, one line
    [down] = lines_with(consumer, "unreachable")
    assert down.endswith(f"polling 127.0.0.1:{port}: unreachable (connection refused); is an "
                         f"agent with a SparkSink running on 127.0.0.1:{port}? retrying every "
                         "5 s at most")
    [back] = lines_with(consumer, "connected again")
    assert f"polling 127.0.0.1:{port}: connected again after " in back
    assert "Traceback" not in consumer.tail(200_000)


def test_a_missing_relative_spool_dir_says_where_it_is_looked_for(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [PY, "-m", "agent.cli", "-f", str(AVRO_CONF), "-n", "a1", "--grace", "0"],
            cwd=tmp_path, env={**ENV, "PYTHONPATH": str(ROOT)}, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        where = str(tmp_path / "demo-run" / "spool")

        def said(text: str) -> bool:
            return text in log.read_text()

        deadline = time.monotonic() + 30
        while not said("does not exist yet") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert said("source r1: spool directory ./demo-run/spool (relative to the agent's "
                    f"working directory: {where}) does not exist yet"), log.read_text()
        (tmp_path / "demo-run" / "spool").mkdir(parents=True)
        while not said("is usable now") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert said("is usable now"), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_ctrl_c_twice_stops_the_agent_at_once_and_says_what_was_lost(tmp_path: Path,
                                                                      spool: Path) -> None:
    port = free_port()  # nobody listens: the sink cannot deliver
    agent = Proc("flume-agent", agent_args(spool, port, "--grace", "60"),
                 tmp_path / "agent.log")
    try:
        write_log(spool, 700)
        wait_until(lambda: (spool / "access.log.COMPLETED").exists(), 30,
                   "the file read into the channel", [agent])
        agent.proc.send_signal(signal.SIGINT)
        wait_until(lambda: bool(lines_with(agent, "sinks get up to 60 s")), 30,
                   "the graceful stop to begin", [agent])
        time.sleep(0.6)  # a person's second Ctrl-C, not the same request twice
        started = time.monotonic()
        agent.proc.send_signal(signal.SIGINT)
        assert agent.proc.wait(30) == 3
        assert time.monotonic() - started < 10  # not the 60 s grace
    finally:
        agent.stop()
    [again] = lines_with(agent, "SIGINT again")
    assert "stopping at once, without waiting for the sinks" in again
    [lost] = lines_with(agent, "are lost")
    assert " WARNING " in lost
    assert "agent a1: 700 event(s) still in memory channel c1 are lost: stopped at once; " \
           "give the sinks longer with --grace, or use a file channel" in lost
    assert "Traceback" not in agent.tail(200_000)


def test_two_sigterms_at_once_are_one_graceful_stop(tmp_path: Path, spool: Path) -> None:
    port = free_port()
    consumer = Proc("flume-consumer", [PY, "-m", "consumer.cli", "--port", str(port)],
                    tmp_path / "consumer.log")
    agent = Proc("flume-agent", agent_args(spool, port), tmp_path / "agent.log")
    try:
        wait_listening(port, consumer)
        wait_until(lambda: bool(lines_with(agent, "agent a1 started")), 30, "the agent",
                   [agent])
        for proc in (agent, consumer):  # as timeout(1) does: the child, then its group
            proc.proc.send_signal(signal.SIGTERM)
            proc.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(30) == 0
        assert consumer.proc.wait(30) == 0
    finally:
        agent.stop()
        consumer.stop()
    assert lines_with(consumer, "stopped cleanly")
    assert not lines_with(consumer, "stopping at once")
    assert not lines_with(agent, "SIGTERM again")


JOB = """\
import sys
from consumer import SparkContext
from consumer.streaming import StreamingContext

sc = SparkContext(appName="first-hour")
ssc = StreamingContext(sc, 0.2)
ssc.queueStream([], default=[1, 2, 3]).count().pprint()
ssc.start()
print("streaming", flush=True)
ssc.awaitTermination()
print("after awaitTermination", flush=True)
"""


@pytest.mark.parametrize("how", ["python", "flume-consumer run"])
def test_a_script_stops_gracefully_on_ctrl_c_however_it_runs(tmp_path: Path, how: str) -> None:
    job = tmp_path / "job.py"
    job.write_text(JOB)
    args = [PY, str(job)] if how == "python" else [PY, "-m", "consumer.cli", "run", str(job)]
    proc = Proc(how, args, tmp_path / "job.log")
    try:
        wait_until(lambda: "streaming" in proc.tail(), 30, "the job to stream", [proc])
        proc.proc.send_signal(signal.SIGINT)
        assert proc.proc.wait(30) == 0
    finally:
        proc.stop()
    text = proc.tail(200_000)
    assert "after awaitTermination" in text  # the script went on after the graceful stop
    assert "INFO consumer.jobs: SIGINT: finishing the batch in flight, then stopping" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
