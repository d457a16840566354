"""netcat and netcatudp sources on loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from agent.registry import BuildContext
from agent.sources.netcat import NetcatSource, NetcatUdpSource
from tests.agent_helpers import channel, component, processor
from tests.source_helpers import take, until


def _tcp(**settings: Any) -> tuple[NetcatSource, Any]:
    src: NetcatSource = component("source", "netcat", {"bind": "127.0.0.1", "port": 0,
                                                       **settings}, BuildContext())
    ch = channel()
    src.channel_processor = processor(ch)
    return src, ch




def test_lines_become_events_and_each_is_acked() -> None:
    async def main() -> None:
        src, ch = _tcp()
        await src.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", src.port)
            writer.write(b"hello\nworld\r\n")
            await writer.drain()
            assert await reader.readexactly(6) == b"OK\nOK\n"
            writer.write(b"last without newline")
            writer.write_eof()
            assert await reader.read() == b"OK\n"
            writer.close()
        finally:
            await src.stop()
        assert [e.body for e in take(ch)] == [b"hello", b"world\r", b"last without newline"]
        assert src.counter.counters["EventAcceptedCount"] == 3

    asyncio.run(main())


def test_over_long_line_fails_and_closes_after_earlier_lines() -> None:
    async def main() -> None:
        src, ch = _tcp(**{"max-line-length": 8, "ack-every-event": False})
        await src.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", src.port)
            writer.write(b"short\n" + b"x" * 20 + b"\nnever\n")
            await writer.drain()
            reply = await reader.read()  # the source closes the connection
            writer.close()
        finally:
            await src.stop()
        assert reply == b"FAILED: Event exceeds the maximum length (8 chars, including newline)\n"
        assert [e.body for e in take(ch)] == [b"short"]

    asyncio.run(main())


def test_full_channel_answers_failed_per_line_and_keeps_serving() -> None:
    async def main() -> None:
        src, _ = _tcp()
        small = channel(capacity=2, transaction_capacity=2)
        src.channel_processor = processor(small)
        await src.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", src.port)
            writer.write(b"a\nb\nc\n")
            await writer.drain()
            replies = [await reader.readline() for _ in range(3)]
            assert all(r.startswith(b"FAILED: ") for r in replies), replies
            writer.write(b"d\n")
            await writer.drain()
            assert await reader.readline() == b"OK\n"
            writer.close()
        finally:
            await src.stop()
        assert [e.body for e in take(small)] == [b"d"]
        assert src.counter.counters["ChannelWriteFail"] == 1

    asyncio.run(main())


def test_undecodable_input_closes_only_that_connection() -> None:
    async def main() -> None:
        src, ch = _tcp()
        await src.start()
        try:
            bad_r, bad_w = await asyncio.open_connection("127.0.0.1", src.port)
            bad_w.write(b"\xff\xfe\n")
            await bad_w.drain()
            assert await bad_r.read() == b""
            bad_w.close()
            r, w = await asyncio.open_connection("127.0.0.1", src.port)
            w.write(b"fine\n")
            await w.drain()
            assert await r.readline() == b"OK\n"
            w.close()
        finally:
            await src.stop()
        assert [e.body for e in take(ch)] == [b"fine"]
        assert src.counter.counters["EventReadFail"] == 1

    asyncio.run(main())


def test_stop_closes_open_connections() -> None:
    async def main() -> None:
        src, _ = _tcp()
        await src.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", src.port)
        writer.write(b"x\n")
        await reader.readline()
        await asyncio.wait_for(src.stop(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

    asyncio.run(main())


def test_udp_each_line_is_an_event_with_remote_address() -> None:
    async def main() -> None:
        src: NetcatUdpSource = component("source", "netcatudp", {
            "bind": "127.0.0.1", "port": 0, "remoteAddressHeader": "peer"}, BuildContext())
        ch = channel()
        src.channel_processor = processor(ch)
        await src.start()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                sock.sendto(b"one\ntwo\n", ("127.0.0.1", src.port))
                sock.sendto(b"three", ("127.0.0.1", src.port))
                me = sock.getsockname()
                await until(lambda: ch.size() == 3)
        finally:
            await src.stop()
        events = take(ch)
        assert [e.body for e in events] == [b"one", b"two", b"three"]
        assert {e.headers["peer"] for e in events} == {f"/{me[0]}:{me[1]}"}

    asyncio.run(main())


def test_udp_burst_while_the_loop_is_busy_is_not_dropped() -> None:
    """3,000 datagrams (about 600 KB of kernel buffer) arrive while the loop is busy: the
    raised receive buffer holds them all (the kernel's default holds a few hundred), and the
    source reads them in bursts once the loop is free."""
    async def main() -> None:
        src: NetcatUdpSource = component("source", "netcatudp", {
            "bind": "127.0.0.1", "port": 0}, BuildContext())
        ch = channel(capacity=10_000, transaction_capacity=100)
        src.channel_processor = processor(ch)
        await src.start()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for i in range(3000):  # the loop is not running meanwhile: nothing is read
                    sock.sendto(b"datagram %04d " % i + b"x" * 80, ("127.0.0.1", src.port))
            await until(lambda: ch.size() == 3000)
        finally:
            await src.stop()
        assert [e.body[:13] for e in take(ch)] == [b"datagram %04d" % i for i in range(3000)]

    asyncio.run(main())
