"""syslogtcp, multiport_syslogtcp and syslogudp sources on loopback sockets."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from agent.registry import BuildContext
from agent.sources.syslog import MultiportSyslogTcpSource, SyslogTcpSource, SyslogUdpSource
from agent.sources.syslog_parse import INCOMPLETE, INVALID, STATUS
from tests.agent_helpers import channel, component, processor
from tests.source_helpers import take, until
from tests.tls import make_cert

RFC5424 = b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n"
RFC3164 = b"<13>Oct 11 22:14:15 mymachine su: 'su root' failed\n"






def _build(cls: Any, type_: str, ch: Any, **settings: Any) -> Any:
    src = component("source", type_, {"host": "127.0.0.1", **settings}, BuildContext())
    assert isinstance(src, cls)
    src.channel_processor = processor(ch)
    return src


def test_syslogtcp_parses_both_rfcs_adds_client_headers_and_cuts_long_lines() -> None:
    async def main() -> None:
        ch = channel()
        src = _build(SyslogTcpSource, "syslogtcp", ch, port=0, eventSize=40,
                     clientIPHeader="client_ip", clientHostnameHeader="client_name")
        await src.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", src.port)
            writer.write(b"<13>1 - host1 short\n<13>1 - host2 " + b"x" * 40 + b"\nno priority")
            writer.write_eof()  # the last message has no newline: delivered at close
            await writer.drain()
            await until(lambda: ch.size() == 4)
            writer.close()
        finally:
            await src.stop()
        events = take(ch)
        assert [e.headers.get("host") for e in events] == ["host1", "host2", None, None]
        assert events[0].body == b"short"
        assert events[1].headers[STATUS] == INCOMPLETE  # cut at eventSize, parsed anyway
        assert events[1].body == b"x" * (40 - len(b"<13>1 - host2 "))
        assert events[2].headers[STATUS] == INVALID  # the rest of the cut line
        assert events[3].headers[STATUS] == INVALID and events[3].body == b"no priority"
        assert all(e.headers["client_ip"] == "127.0.0.1" for e in events)
        assert all(e.headers["client_name"] for e in events)

    asyncio.run(main())


def test_syslogtcp_holds_events_while_channel_is_full_then_delivers_them() -> None:
    async def main() -> None:
        ch = channel(capacity=2, transaction_capacity=2)
        src = _build(SyslogTcpSource, "syslogtcp", ch, port=0)
        await src.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", src.port)
            writer.write(b"<13>1 - h a\n<13>1 - h b\n")
            await writer.drain()
            await until(lambda: ch.size() == 2)
            writer.write(b"<13>1 - h c\n")
            await writer.drain()
            await until(lambda: src.counter.counters["ChannelWriteFail"] >= 1)
            got = [e.body for e in take(ch)]  # room again: the held event goes in
            await until(lambda: ch.size() == 1)
            got += [e.body for e in take(ch)]
            writer.close()
        finally:
            await src.stop()
        assert got == [b"a", b"b", b"c"]

    asyncio.run(main())


def test_syslogtcp_over_tls(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    pem = tmp_path / "keystore.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())

    async def main() -> None:
        import ssl

        ch = channel()
        src = _build(SyslogTcpSource, "syslogtcp", ch, port=0, ssl=True, keystore=str(pem))
        await src.start()
        try:
            ctx = ssl.create_default_context(cafile=str(cert))
            _, writer = await asyncio.open_connection("localhost", src.port, ssl=ctx)
            writer.write(RFC5424)
            await writer.drain()
            await until(lambda: ch.size() == 1)
            writer.close()
        finally:
            await src.stop()
        assert take(ch)[0].headers["host"] == "mymachine.example.com"

    asyncio.run(main())


def test_multiport_listens_on_every_port_with_port_header_and_charset() -> None:
    async def main() -> None:
        ch = channel()
        src = _build(MultiportSyslogTcpSource, "multiport_syslogtcp", ch, ports="0 0",
                     portHeader="port", batchSize=2)
        await src.start()
        first, second = src.ports
        src.port_charsets[second] = "latin-1"
        try:
            for port, payload in ((first, RFC5424 + RFC3164 + b"garbage\n"),
                                  (second, "<13>1 - h café\n".encode("latin-1"))):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(payload)
                await writer.drain()
                writer.close()
            await until(lambda: ch.size() == 4)
        finally:
            await src.stop()
        events = take(ch)
        assert [e.headers["port"] for e in events] == [str(first)] * 3 + [str(second)]
        assert events[0].headers["Facility"] == "4" and events[0].headers["Version"] == "1"
        assert events[0].body == b"su - ID47 - 'su root' failed"
        assert events[1].headers["host"] == "mymachine"
        assert events[2].headers == {STATUS: INVALID, "port": str(first)}
        assert events[3].body == "café".encode("latin-1")
        assert src.counter.counters["EventReadFail"] == 1
        assert src.counter.counters["AppendBatchAcceptedCount"] == 3  # batchSize 2: 2 + 1, 1

    asyncio.run(main())


def test_syslogudp_one_datagram_one_event() -> None:
    async def main() -> None:
        ch = channel()
        src = _build(SyslogUdpSource, "syslogudp", ch, port=0, clientIPHeader="ip",
                     keepFields="all")
        await src.start()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(RFC3164, ("127.0.0.1", src.port))
                sock.sendto(b"<13>1 - h multi\nline", ("127.0.0.1", src.port))
                sock.sendto(b"", ("127.0.0.1", src.port))  # ignored
                await until(lambda: ch.size() == 2)
        finally:
            await src.stop()
        events = take(ch)
        assert events[0].body == RFC3164[:-1]  # keepFields=all: the whole message
        assert events[0].headers["host"] == "mymachine" and events[0].headers["ip"] == "127.0.0.1"
        assert events[1].body == b"<13>1 - h multi\nline"

    asyncio.run(main())
