"""DStream.pprint output, byte for byte as PySpark 2.4 prints it."""

from __future__ import annotations

from datetime import datetime

from common.clock import ManualClock
from consumer import SparkContext
from consumer.jobs.outputs import ConsoleOutput
from consumer.jobs.ranking import WindowTop
from consumer.streaming import StreamingContext

DASHES = "-" * 43


def test_pprint_format_with_more_than_num_elements_and_empty_batches(utc, capsys):
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(1_700_000_000.2))
    s = ssc.queueStream([[("/a", 12), ("/b", 3)], list(range(12)), []])
    s.pprint()
    s.pprint(num=2)
    for _ in range(3):
        ssc.step()
    out = capsys.readouterr().out
    expected = (
        f"{DASHES}\nTime: 2023-11-14 22:13:21\n{DASHES}\n('/a', 12)\n('/b', 3)\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:21\n{DASHES}\n('/a', 12)\n('/b', 3)\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:22\n{DASHES}\n"
        + "".join(f"{i}\n" for i in range(10)) + "...\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:22\n{DASHES}\n0\n1\n...\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:23\n{DASHES}\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:23\n{DASHES}\n\n"
    )
    assert out == expected


def test_pprint_time_shows_microseconds_only_when_nonzero(utc, capsys):
    ssc = StreamingContext(SparkContext(), 0.5, clock=ManualClock(1_700_000_000.1))
    ssc.queueStream([["x"], ["y"]]).pprint()
    ssc.step()
    ssc.step()
    out = capsys.readouterr().out
    assert "Time: 2023-11-14 22:13:20.500000\n" in out
    assert "Time: 2023-11-14 22:13:21\n" in out


def test_pprint_prints_str_of_records_like_print(utc, capsys):
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(0))
    ssc.queueStream([["plain", ("t", "u"), {"k": 1}, None]]).pprint()
    ssc.step()
    lines = capsys.readouterr().out.splitlines()
    assert lines[3:7] == ["plain", "('t', 'u')", "{'k': 1}", "None"]


class _RecordingStream:
    """A stdout that remembers each write, like an unbuffered pipe."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_pprint_writes_each_block_in_one_call(utc, monkeypatch):
    # Two writes per block let a log line on the same pipe land inside the block
    # (PYTHONUNBUFFERED with 2>&1), which broke parsers of the output.
    stream = _RecordingStream()
    monkeypatch.setattr("sys.stdout", stream)
    ssc = StreamingContext(SparkContext(), 1, clock=ManualClock(1_700_000_000.2))
    ssc.queueStream([[("/a", 12)], []]).pprint()
    ssc.step()
    ssc.step()
    assert stream.writes == [
        f"{DASHES}\nTime: 2023-11-14 22:13:21\n{DASHES}\n('/a', 12)\n\n",
        f"{DASHES}\nTime: 2023-11-14 22:13:22\n{DASHES}\n\n",
    ]


def test_console_output_writes_each_batch_in_one_call():
    stream = _RecordingStream()
    ConsoleOutput(top=2, stream=stream).write(  # type: ignore[arg-type]
        datetime(2023, 11, 14, 22, 13, 21), [WindowTop(0, 0, (("/a", 3),), 1)])
    assert len(stream.writes) == 1 and stream.writes[0].endswith("('/a', 3)\n\n")
