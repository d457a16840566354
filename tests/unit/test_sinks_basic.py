"""seq source, logger / null / file_roll sinks."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from agent.channel_processor import DefaultChannelProcessor
from agent.channels import MemoryChannel
from agent.components import ManualClock, Status
from agent.config.model import SinkSpec
from agent.registry import BuildContext, ComponentConfigError, build
from agent.selectors import ReplicatingSelector
from agent.sinks.file_roll import RollingFileSink
from agent.sinks.logger import LoggerSink, dump_event
from agent.sinks.null import NullSink
from agent.sources.seq import SequenceGeneratorSource
from protocol.event import Event
from tests.agent_helpers import component


def fill(channel: MemoryChannel, bodies: list[bytes]) -> None:
    tx = channel.transaction()
    tx.begin()
    for body in bodies:
        tx.put(Event({}, body))
    tx.commit()
    tx.close()


def test_dump_event_matches_flume_user_guide_sample():
    event = Event({}, b"Hello world!\r")
    expected = "{ headers:{} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }"
    assert dump_event(event) == expected


def test_dump_event_headers_truncation_and_empty_body():
    event = Event({"a": "1", "b": "x y"}, bytes(range(250, 256)) + b"0123456789abcdefXYZ")
    assert dump_event(event) == (
        "{ headers:{a=1, b=x y} body: FA FB FC FD FE FF 30 31 32 33 34 35 36 37 38 39 "
        "......0123456789 }"
    )
    assert dump_event(Event({"k": "v"}, b"")) == "{ headers:{k=v} body: }"


def test_dump_event_longer_than_16_bytes_keeps_later_offsets():
    text = dump_event(Event({}, b"A" * 20), max_bytes=20)
    assert text == (
        "{ headers:{} body: " + "41 " * 16 + "A" * 16 + "\n00000010 " + "41 " * 4
        + "   " * 12 + "AAAA }"
    )


def test_logger_sink_logs_one_event_per_transaction(caplog):
    ch = MemoryChannel("c")
    fill(ch, [b"hi", b"there"])
    sink = LoggerSink("k", max_bytes_to_log=16)
    sink.channel = ch

    async def go():
        return [await sink.process() for _ in range(3)]

    with caplog.at_level(logging.INFO, logger="agent.sinks.logger"):
        statuses = asyncio.run(go())
    assert statuses == [Status.READY, Status.READY, Status.BACKOFF]
    messages = [r.getMessage() for r in caplog.records if r.name == "agent.sinks.logger"]
    assert messages == [
        "Event: { headers:{} body: 68 69" + " " * 43 + "hi }",
        "Event: { headers:{} body: 74 68 65 72 65" + " " * 34 + "there }",
    ]
    assert sink.counter.get("EventDrainSuccessCount") == 2
    assert sink.counter.get("BatchEmptyCount") == 1


def test_null_sink_drains_in_batches_and_counts():
    ch = MemoryChannel("c", capacity=1000, transaction_capacity=100)
    fill(ch, [b"x"] * 100)
    fill(ch, [b"x"] * 30)
    sink = NullSink("k", batch_size=100)
    sink.channel = ch

    async def go():
        return [await sink.process() for _ in range(3)]

    assert asyncio.run(go()) == [Status.READY, Status.READY, Status.BACKOFF]
    c = sink.counter
    assert (c.get("BatchCompleteCount"), c.get("BatchUnderflowCount"),
            c.get("BatchEmptyCount")) == (1, 1, 1)
    assert c.get("EventDrainSuccessCount") == 130
    assert ch.size() == 0
    with pytest.raises(ValueError, match="batchSize"):
        NullSink("k", batch_size=0)


def test_seq_source_emits_counter_bodies_then_backs_off():
    ch = MemoryChannel("c", capacity=100, transaction_capacity=10)
    src = SequenceGeneratorSource("r", total_events=7, batch_size=3)
    src.channel_processor = DefaultChannelProcessor(ReplicatingSelector({"c": ch}))

    async def go():
        return [await src.process() for _ in range(4)]

    assert asyncio.run(go()) == [Status.READY, Status.READY, Status.BACKOFF, Status.BACKOFF]
    tx = ch.transaction()
    tx.begin()
    assert [e.body for e in tx.take_batch(10)] == [str(i).encode() for i in range(7)]
    assert src.counter.get("EventAcceptedCount") == 7
    assert src.counter.get("AppendBatchAcceptedCount") == 3


def test_seq_source_full_channel_backs_off_and_resends_the_same_batch():
    ch = MemoryChannel("c", capacity=2, transaction_capacity=2)
    src = SequenceGeneratorSource("r", total_events=None, batch_size=2)
    src.channel_processor = DefaultChannelProcessor(ReplicatingSelector({"c": ch}))

    async def go():
        return [await src.process() for _ in range(2)]

    assert asyncio.run(go()) == [Status.READY, Status.BACKOFF]
    assert src.counter.get("ChannelWriteFail") == 1
    tx = ch.transaction()
    tx.begin()
    tx.take_batch(2)
    tx.commit()
    tx.close()
    asyncio.run(go())
    tx = ch.transaction()
    tx.begin()
    assert [e.body for e in tx.take_batch(2)] == [b"2", b"3"]


def make_file_sink(tmp_path: Path, clock: ManualClock, **settings) -> RollingFileSink:
    base = {"sink.directory": str(tmp_path / "out"), "sink.rollInterval": 30}
    base.update(settings)
    ctx = BuildContext(clock=clock)
    sink = component("sink", "file_roll", base, ctx, name="k")
    assert isinstance(sink, RollingFileSink)
    return sink


def test_file_roll_names_and_rolls_on_the_clock(tmp_path):
    clock = ManualClock(1_700_000_000.5)
    ch = MemoryChannel("c")
    sink = make_file_sink(tmp_path, clock, **{"sink.pathManager.prefix": "app-",
                                              "sink.pathManager.extension": "log"})
    sink.channel = ch

    async def go():
        await sink.start()
        fill(ch, [b"a", b"b"])
        assert await sink.process() is Status.READY
        assert await sink.process() is Status.BACKOFF
        clock.advance(29)
        fill(ch, [b"c"])
        await sink.process()
        clock.advance(1)  # 30 s since start: roll
        fill(ch, [b"d"])
        await sink.process()
        clock.advance(65)  # two intervals passed: roll once, keep the schedule
        await sink.process()
        await sink.stop()

    asyncio.run(go())
    out = tmp_path / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["app-1700000000500-1.log", "app-1700000000500-2.log",
                     "app-1700000000500-3.log"]
    assert (out / names[0]).read_bytes() == b"a\nb\nc\n"
    assert (out / names[1]).read_bytes() == b"d\n"
    assert (out / names[2]).read_bytes() == b""  # idle interval: empty file, as Flume
    assert sink.counter.get("ConnectionCreatedCount") == 3
    assert sink.counter.get("ConnectionClosedCount") == 3


def test_file_roll_never_rolls_with_zero_interval_and_no_newline(tmp_path):
    clock = ManualClock(1000.0)
    ch = MemoryChannel("c")
    sink = make_file_sink(tmp_path, clock, **{"sink.rollInterval": 0,
                                              "sink.serializer.appendNewline": False})
    sink.channel = ch

    async def go():
        await sink.start()
        for body in (b"x", b"y"):
            fill(ch, [body])
            await sink.process()
            clock.advance(10_000)
        await sink.stop()

    asyncio.run(go())
    files = list((tmp_path / "out").iterdir())
    assert [f.name for f in files] == ["1000000-1"]
    assert files[0].read_bytes() == b"xy"


def test_file_roll_write_failure_rolls_back(tmp_path):
    ch = MemoryChannel("c")
    sink = make_file_sink(tmp_path, ManualClock())
    sink.channel = ch

    async def go():
        await sink.start()
        fill(ch, [b"a", b"b"])
        handle = await sink._ensure_open()
        handle.close()  # writes now fail
        with pytest.raises(ValueError):
            await sink.process()

    asyncio.run(go())
    assert ch.size() == 2
    assert sink.counter.get("EventWriteFail") == 1


def test_file_roll_refuses_unknown_serializer_and_missing_directory():
    with pytest.raises(ValueError, match=r"'avro_event' exists in Flume but is not available"):
        component("sink", "file_roll", {"sink.directory": "/tmp", "sink.serializer": "avro_event"})
    with pytest.raises(ValueError, match=r"missing required key 'sink\.directory'"):
        component("sink", "file_roll", {})


def test_registry_builds_by_alias_and_reports_unavailable_types():
    ctx = BuildContext()
    ch = component("channel", "memory", {"capacity": 5, "transactionCapacity": 5}, ctx)
    assert isinstance(ch, MemoryChannel) and ch.capacity == 5
    src = component("source", "SEQ", {"totalEvents": 3}, ctx)
    assert isinstance(src, SequenceGeneratorSource) and src.total_events == 3
    with pytest.raises(ComponentConfigError, match=r"sink type .irc.*is not available"):
        build("sink", SinkSpec("sink", "k", "irc", {}), ctx)
