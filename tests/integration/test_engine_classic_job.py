"""The classic Flume -> Spark log job, unchanged except its imports (and queueStream in place
of FlumeUtils.createStream), run by the real background loop on a manual clock."""

from __future__ import annotations

import threading
import time

from common.clock import ManualClock
from consumer.streaming import StreamingContext

JOB = '''
import re
from consumer import SparkContext
from consumer.streaming import StreamingContext

parts = [
    r'(?P<host>\\S+)', r'\\S+', r'(?P<user>\\S+)', r'\\[(?P<time>.+)\\]', r'"(?P<request>.*)"',
    r'(?P<status>[0-9]+)', r'(?P<size>\\S+)', r'"(?P<referer>.*)"', r'"(?P<agent>.*)"',
]
pattern = re.compile(r'\\s+'.join(parts) + r'\\s*\\Z')

def extractURLRequest(line):
    exp = pattern.match(line)
    if exp:
        request = exp.groupdict()["request"]
        if request:
            requestFields = request.split()
            if (len(requestFields) > 1):
                return requestFields[1]

sc = SparkContext(appName="StreamingFlumeLogAggregator")
sc.setLogLevel("ERROR")
ssc = StreamingContext(sc, 1)
flumeStream = ssc.queueStream(INPUT)
lines = flumeStream.map(lambda x: x[1])
urls = lines.map(extractURLRequest)
urlCounts = urls.map(lambda x: (x, 1)).reduceByKeyAndWindow(
    lambda x, y: x + y, lambda x, y: x - y, 300, 1)
sortedResults = urlCounts.transform(lambda rdd: rdd.sortBy(lambda x: x[1], False))
sortedResults.pprint()
ssc.checkpoint("checkpoint")
ssc.start()
ssc.awaitTermination()
'''


def log_line(url: str) -> str:
    return (f'66.249.75.159 - - [29/Nov/2015:03:50:05 +0000] "GET {url} HTTP/1.1" 200 32 '
            '"-" "Mozilla/5.0 (compatible; Googlebot/2.1)"')


def event(url: str) -> tuple[dict, str]:
    return ({"timestamp": "1448769005000"}, log_line(url))


INPUT = [
    [event("/index.html")] * 3 + [event("/about")],
    [event("/about")] * 3 + [event("/contact")] + [({}, "garbage line")],
    [],
]

DASHES = "-" * 43


def test_classic_job_prints_windowed_top_urls(tmp_path, monkeypatch, capsys, utc):
    monkeypatch.chdir(tmp_path)
    clock = ManualClock(1_700_000_000.3)
    monkeypatch.setattr(StreamingContext, "defaultClock", clock)
    errors: list[BaseException] = []

    def run_job():
        try:
            exec(compile(JOB, "classic_job.py", "exec"), {"INPUT": INPUT})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    job = threading.Thread(target=run_job)
    job.start()
    deadline = time.monotonic() + 10
    while StreamingContext.getActive() is None and time.monotonic() < deadline and not errors:
        time.sleep(0.005)  # bounded polling for the job thread to reach start()
    ssc = StreamingContext.getActive()
    assert ssc is not None, errors
    for t in (1_700_000_001_000, 1_700_000_002_000, 1_700_000_003_000):
        clock.set_ms(t)
        assert ssc.awaitBatchCompleted(t)
    ssc.stop()
    job.join(10)
    assert not job.is_alive() and not errors
    out = capsys.readouterr().out
    assert out == (
        f"{DASHES}\nTime: 2023-11-14 22:13:21\n{DASHES}\n"
        "('/index.html', 3)\n('/about', 1)\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:22\n{DASHES}\n"
        "('/about', 4)\n('/index.html', 3)\n('/contact', 1)\n(None, 1)\n\n"
        f"{DASHES}\nTime: 2023-11-14 22:13:23\n{DASHES}\n"
        "('/about', 4)\n('/index.html', 3)\n('/contact', 1)\n(None, 1)\n\n"
    )
    assert (tmp_path / "checkpoint" / "checkpoint-1700000003000").exists()
