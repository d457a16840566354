"""The SparkSink-compatible pull sink: recorded poller stream, redelivery, isolation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
import time
from typing import Any

from agent.sinks.spark import SparkSink
from protocol import ackproof, codec
from protocol.event import Event
from protocol.framing import encode_pack
from protocol.schemas import CALL_META, SPARK_FLUME_PROTOCOL
from protocol.transport import RpcClient
from tests.agent_helpers import channel, fill
from tests.vectors import bodies, load


def _sink(**kw: Any) -> SparkSink:
    sink = SparkSink("k1", "127.0.0.1", 0, **{"close_grace": 0.0, **kw})
    sink.channel = channel()
    return sink


def _client(sink: SparkSink) -> RpcClient:
    return RpcClient(SPARK_FLUME_PROTOCOL, "127.0.0.1", sink.port, request_timeout=5)


def _with_ack_proofs(recorded: bytes, outcomes: list[bytes]) -> bytes:
    """The recorded Java replies, with flumelet's ack proof in the call metadata of each
    void (ack/nack) reply instead of Java's empty map: the only bytes that may differ."""
    out, pos, proofs = b"", 0, iter(outcomes)
    while pos < len(recorded):
        serial, count = struct.unpack_from(">II", recorded, pos)
        pos += 8
        buffers = []
        for _ in range(count):
            (size,) = struct.unpack_from(">I", recorded, pos)
            buffers.append(recorded[pos + 4:pos + 4 + size])
            pos += 4 + size
        if buffers == [b"", b"\x00", b"\x00"]:  # no handshake, empty meta, OK flag, null
            buffers[1] = codec.encode(CALL_META, {ackproof.ACK_META_KEY: next(proofs)})
        out += encode_pack(serial, buffers)
    assert next(proofs, None) is None
    return out


def test_answers_the_recorded_poller_stream_byte_for_byte() -> None:
    cap = load("spark-poll-ack-nack")
    expected = _with_ack_proofs(cap.server_to_client, [
        ackproof.COMMITTED, ackproof.ROLLED_BACK, ackproof.COMMITTED])

    async def main() -> None:
        sink = _sink(sequence=(str(i) for i in itertools.count()))
        texts = bodies()
        tx = sink.channel.transaction()
        tx.begin()
        for i in range(5):
            tx.put(Event({"timestamp": "1700000000000"}, texts[i % 3]))
        tx.commit()
        tx.close()
        await sink.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
        got = b""
        try:
            writer.write(cap.client_to_server)
            while len(got) < len(expected):
                got += await asyncio.wait_for(reader.read(65536), 5)
        finally:
            writer.close()
            await sink.stop()
        assert got == expected
        assert sink.channel.size() == 0  # everything acked in the end

    asyncio.run(main())


def test_nack_and_timeout_redeliver_in_order() -> None:
    async def main() -> None:
        sink = _sink(timeout=0.3)
        sent = fill(sink.channel, 10)
        await sink.start()
        client = _client(sink)
        try:
            first = await client.call("getEventBatch", {"n": 4})
            assert [e["body"] for e in first["events"]] == [e.body for e in sent[:4]]
            await client.call("nack", {"sequenceNumber": first["sequenceNumber"]})
            again = await client.call("getEventBatch", {"n": 4})
            assert again["events"] == first["events"]
            assert again["sequenceNumber"] != first["sequenceNumber"]
            # No ack: the transaction times out and the events come back.
            deadline = time.monotonic() + 5
            while sink.outstanding and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            third = await client.call("getEventBatch", {"n": 10})
            assert [e["body"] for e in third["events"]] == [e.body for e in sent]
            await client.call("ack", {"sequenceNumber": third["sequenceNumber"]})
            # A late ack for an expired batch is ignored, as Spark does.
            assert await client.call("ack", {"sequenceNumber": again["sequenceNumber"]}) is None
        finally:
            await client.close()
            await sink.stop()
        assert sink.channel.size() == 0

    asyncio.run(main())


def test_two_pollers_never_share_an_open_batch() -> None:
    async def main() -> None:
        sink = _sink()
        fill(sink.channel, 6)
        await sink.start()
        a, b = _client(sink), _client(sink)
        try:
            ba = await a.call("getEventBatch", {"n": 3})
            bb = await b.call("getEventBatch", {"n": 3})
            bodies_a = {e["body"] for e in ba["events"]}
            bodies_b = {e["body"] for e in bb["events"]}
            assert len(bodies_a) == len(bodies_b) == 3 and not bodies_a & bodies_b
            await a.call("ack", {"sequenceNumber": ba["sequenceNumber"]})
            await b.call("ack", {"sequenceNumber": bb["sequenceNumber"]})
        finally:
            await a.close()
            await b.close()
            await sink.stop()
        assert sink.channel.size() == 0

    asyncio.run(main())


def test_vanished_poller_rolls_back() -> None:
    async def main() -> None:
        sink = _sink()
        sent = fill(sink.channel, 3)
        await sink.start()
        client = _client(sink)
        try:
            batch = await client.call("getEventBatch", {"n": 3})
            assert len(batch["events"]) == 3 and sink.channel.size() == 0
            await client.close()
            deadline = time.monotonic() + 5
            while sink.outstanding and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert [e.body for e in _peek(sink)] == [e.body for e in sent]
        finally:
            await sink.stop()

    asyncio.run(main())


def _peek(sink: SparkSink) -> list[Event]:
    return list(sink.channel.queue)


def test_waits_for_the_first_event_and_answers_partial_batches_at_once() -> None:
    async def main() -> None:
        sink = _sink(backoff_interval=5.0)  # only the channel's wake-up can be fast
        await sink.start()
        client = _client(sink)
        try:
            poll = asyncio.create_task(client.call("getEventBatch", {"n": 1000}))
            await asyncio.sleep(0.1)
            assert not poll.done()  # nothing in the channel: it waits
            start = time.monotonic()
            fill(sink.channel, 2)
            batch = await poll
            assert time.monotonic() - start < 1.0
            assert len(batch["events"]) == 2 and batch["errorMsg"] == ""
            await client.call("ack", {"sequenceNumber": batch["sequenceNumber"]})
        finally:
            await client.close()
            await sink.stop()

    asyncio.run(main())


def test_stopping_answers_waiting_pollers_with_an_error() -> None:
    async def main() -> None:
        sink = _sink()
        await sink.start()
        client = _client(sink)
        poll = asyncio.create_task(client.call("getEventBatch", {"n": 10}))
        await asyncio.sleep(0.1)
        stopper = asyncio.create_task(sink.stop())
        try:
            batch = await asyncio.wait_for(poll, 5)
            assert batch["errorMsg"] == "Spark sink has been stopped!"
            assert batch["sequenceNumber"] == "" and batch["events"] == []
        except ConnectionError:
            pass  # the server may close first; either way the poller is not left hanging
        await stopper
        await client.close()

    asyncio.run(main())


def test_poller_hanging_up_during_a_long_poll_releases_its_batch() -> None:
    """The server keeps reading while a getEventBatch waits, so it sees the hang-up."""

    async def main() -> None:
        sink = _sink()
        sent = fill(sink.channel, 2)
        await sink.start()
        client = _client(sink)
        try:
            batch = await client.call("getEventBatch", {"n": 2})
            assert len(batch["events"]) == 2
            blocked = asyncio.create_task(client.call("getEventBatch", {"n": 2}))
            await asyncio.sleep(0.1)  # the second poll now waits for events on the server
            await client.close()
            deadline = time.monotonic() + 5
            while sink.outstanding and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert sink.outstanding == 0
            assert [e.body for e in _peek(sink)] == [e.body for e in sent]
            with contextlib.suppress(ConnectionError):
                await blocked
        finally:
            await sink.stop()

    asyncio.run(main())


def test_polls_larger_than_the_transaction_capacity_get_smaller_batches() -> None:
    async def main() -> None:
        sink = SparkSink("k1", "127.0.0.1", 0)
        sink.channel = channel(capacity=1000, transaction_capacity=100)
        for start in (0, 100, 200):
            fill(sink.channel, 100 if start < 200 else 50, start)
        await sink.start()
        client = _client(sink)
        try:
            sizes = []
            for _ in range(3):
                batch = await client.call("getEventBatch", {"n": 1000})
                assert batch["errorMsg"] == ""
                sizes.append(len(batch["events"]))
                await client.call("ack", {"sequenceNumber": batch["sequenceNumber"]})
        finally:
            await client.close()
            await sink.stop()
        assert sizes == [100, 100, 50]

    asyncio.run(main())


def test_a_batch_acked_after_its_poller_hung_up_is_committed_within_the_grace() -> None:
    """Found in review: a consumer's graceful stop closes its poll connections before the
    last acks (sent on another connection) arrive; rolling back at once double-counted."""

    async def main() -> None:
        sink = _sink(close_grace=2.0)
        fill(sink.channel, 3)
        await sink.start()
        poller, acker = _client(sink), _client(sink)
        try:
            batch = await poller.call("getEventBatch", {"n": 3})
            await poller.close()
            await asyncio.sleep(0.1)
            assert sink.outstanding == 1  # not rolled back yet
            await acker.call("ack", {"sequenceNumber": batch["sequenceNumber"]})
            assert sink.outstanding == 0 and sink.channel.size() == 0
        finally:
            await acker.close()
            await sink.stop()

    asyncio.run(main())


def test_threads_bounds_the_open_transactions() -> None:
    """Found in review: slots used to be released as soon as a batch was handed out."""

    async def main() -> None:
        sink = _sink(threads=1)
        fill(sink.channel, 6)
        await sink.start()
        client, other = _client(sink), _client(sink)
        try:
            first = await client.call("getEventBatch", {"n": 2})
            second = asyncio.create_task(other.call("getEventBatch", {"n": 2}))
            await asyncio.sleep(0.2)
            assert not second.done() and sink.outstanding == 1
            await client.call("ack", {"sequenceNumber": first["sequenceNumber"]})
            batch = await asyncio.wait_for(second, 5)
            assert len(batch["events"]) == 2
            await other.call("ack", {"sequenceNumber": batch["sequenceNumber"]})
        finally:
            await client.close()
            await other.close()
            await sink.stop()

    asyncio.run(main())


async def _until(cond: Any, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_batches_of_several_vanished_pollers_come_back_in_their_original_order() -> None:
    """Issue 13: five pollers take two batches of 100 each and hang up, oldest first; each
    connection's grace ends in turn. Rolled back connection by connection, the newest
    batches would come back first."""

    async def main() -> None:
        sink = _sink(close_grace=0.05)
        sent = fill(sink.channel, 1000)
        await sink.start()
        pollers = [_client(sink) for _ in range(5)]
        try:
            for poller in pollers:
                for _ in range(2):
                    batch = await poller.call("getEventBatch", {"n": 100})
                    assert len(batch["events"]) == 100
            for poller in pollers:  # each close starts its own grace timer
                await poller.close()
                await asyncio.sleep(0.01)
            await _until(lambda: sink.outstanding == 0, "every batch rolled back")
            assert [e.body for e in _peek(sink)] == [e.body for e in sent]
        finally:
            await sink.stop()

    asyncio.run(main())


def test_an_older_batch_rolled_back_first_still_comes_back_first() -> None:
    """The older batch is nacked, part of it is served again, then the newer batch and the
    redelivered part are nacked: each time the channel holds them in the original order."""

    async def main() -> None:
        sink = _sink()
        sent = fill(sink.channel, 30)
        await sink.start()
        client = _client(sink)

        def queued() -> list[bytes]:
            return [e.body for e in _peek(sink)]

        try:
            older = await client.call("getEventBatch", {"n": 10})
            newer = await client.call("getEventBatch", {"n": 10})
            await client.call("nack", {"sequenceNumber": older["sequenceNumber"]})
            again = await client.call("getEventBatch", {"n": 4})  # part of the older batch
            assert queued() == [e.body for e in sent[4:10] + sent[20:]]
            await client.call("nack", {"sequenceNumber": newer["sequenceNumber"]})
            assert queued() == [e.body for e in sent[4:]]
            await client.call("nack", {"sequenceNumber": again["sequenceNumber"]})
            assert queued() == [e.body for e in sent]
        finally:
            await client.close()
            await sink.stop()

    asyncio.run(main())
