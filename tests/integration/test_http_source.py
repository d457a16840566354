"""The http source with a real HTTP client on loopback: Flume's status codes, both handlers,
HTTPS with PEM material."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp

from agent.registry import BuildContext
from agent.sources.http_source import HttpSource
from tests.agent_helpers import channel, component, processor
from tests.source_helpers import take
from tests.tls import make_cert


def _source(ch: Any, **settings: Any) -> HttpSource:
    src: HttpSource = component("source", "http", {"bind": "127.0.0.1", "port": 0,
                                                   **settings}, BuildContext())
    src.channel_processor = processor(ch)
    return src


async def _post(url: str, data: bytes, **kwargs: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data,
                                                                **kwargs) as resp:
        return resp.status, await resp.text()


def test_json_post_is_one_transaction_with_flume_status_codes() -> None:
    async def main() -> None:
        ch = channel(capacity=3, transaction_capacity=3)
        src = _source(ch)
        await src.start()
        url = f"http://127.0.0.1:{src.port}/any/path"
        try:
            ok = await _post(url, b'[{"headers": {"h": "1"}, "body": "a"}, {"body": "b"}]')
            bad = await _post(url, b'{"not": "an array"}')
            full = await _post(url, b'[{"body": "c"}, {"body": "d"}]')  # 2 + 2 > capacity 3
            async with aiohttp.ClientSession() as session:
                async with session.get(url, data=b'[{"body": "via GET"}]') as resp:
                    get_status = resp.status
                async with session.put(url, data=b"[]") as resp:
                    put_status = resp.status
        finally:
            await src.stop()
        assert ok == (200, "")
        assert bad[0] == 400 and "Bad request from client." in bad[1]
        assert full[0] == 503 and "Channel might be full" in full[1]
        assert (get_status, put_status) == (200, 405)
        events = take(ch)
        assert [(e.headers, e.body) for e in events] == [({"h": "1"}, b"a"), ({}, b"b"),
                                                        ({}, b"via GET")]
        c = src.counter.counters
        assert (c["EventAcceptedCount"], c["EventReadFail"], c["ChannelWriteFail"]) == (3, 1, 1)

    asyncio.run(main())


def test_blob_handler_and_its_size_limit() -> None:
    async def main() -> None:
        ch = channel()
        src = _source(ch, handler="org.apache.flume.sink.solr.morphline.BlobHandler",
                      **{"handler.maxBlobLength": 8})
        await src.start()
        url = f"http://127.0.0.1:{src.port}/?source=test"
        try:
            ok = await _post(url, b"\x00\x01blob", headers={"Content-Type": "application/x"})
            big = await _post(url, b"123456789")
        finally:
            await src.stop()
        assert ok[0] == 200 and big[0] == 413
        (event,) = take(ch)
        assert event.body == b"\x00\x01blob"
        assert event.headers == {"Content-Type": "application/x", "source": "test"}

    asyncio.run(main())


def test_json_request_past_the_call_limits_is_refused_and_nothing_of_it_kept() -> None:
    async def main() -> None:
        ch = channel()
        src = _source(ch, **{"max-events-per-call": "2", "max-call-bytes": "100000"})
        await src.start()
        url = f"http://127.0.0.1:{src.port}/"
        try:
            many = await _post(url, b'[{"body": "a"}, {"body": "b"}, {"body": "c"}]')
            huge = await _post(url, b'[{"body": "' + b"x" * 200_000 + b'"}]')
            ok = await _post(url, b'[{"body": "d"}, {"body": "e"}]')
        finally:
            await src.stop()
        assert many[0] == 413 and huge[0] == 413 and ok[0] == 200
        assert [e.body for e in take(ch)] == [b"d", b"e"]

    asyncio.run(main())


def test_https_with_pem_keystore_and_flume_deprecated_keys(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    pem = tmp_path / "keystore.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())

    async def main() -> None:
        ch = channel()
        src = _source(ch, enableSSL=True, keystore=str(pem))
        await src.start()
        try:
            ctx = ssl.create_default_context(cafile=str(cert))
            status, _ = await _post(f"https://localhost:{src.port}/",
                                    b'[{"body": "secret"}]', ssl=ctx)
        finally:
            await src.stop()
        assert status == 200
        assert [e.body for e in take(ch)] == [b"secret"]

    asyncio.run(main())
