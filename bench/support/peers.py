"""The other end of a benchmark, run as its own process (``python -m bench.support.peers``).

    tcp HOST PORT FILE ACKS      send FILE's bytes over one connection; read ACKS "OK" lines
    udp HOST PORT FILE           send each line of FILE as a datagram
    post URL FILE CONCURRENCY    POST each line of FILE (a JSON array) with keep-alive
    lines-server ACK             count lines on TCP connections, answer OK per line if ACK
    http-server                  answer every request 200 and count them

A sender prints the seconds it spent; a server prints its port, then serves until killed.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time


def tcp(host: str, port: int, path: str, acks: int) -> None:
    data = open(path, "rb").read()  # noqa: SIM115
    sock = socket.create_connection((host, port))
    got = 0

    def read_acks() -> None:
        nonlocal got
        while got < acks:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return
            got += chunk.count(b"\n")

    reader = threading.Thread(target=read_acks)
    reader.start()
    start = time.perf_counter()
    sock.sendall(data)
    if not acks:
        sock.shutdown(socket.SHUT_WR)
    reader.join()
    print(f"{time.perf_counter() - start:.3f}", flush=True)
    sock.close()


def udp(host: str, port: int, path: str) -> None:
    lines = open(path, "rb").read().splitlines()  # noqa: SIM115
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.perf_counter()
    for i, line in enumerate(lines):
        sock.sendto(line, (host, port))
        if i % 200 == 199:
            time.sleep(0.001)  # loopback drops datagrams a busy receiver cannot take
    print(f"{time.perf_counter() - start:.3f}", flush=True)


async def post(url: str, path: str, concurrency: int) -> None:
    import aiohttp

    bodies = open(path, "rb").read().splitlines()  # noqa: SIM115
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                async with session.post(url, data=body) as resp:
                    await resp.read()
                    if resp.status == 200:
                        break
                await asyncio.sleep(0.01)  # 503: the channel is full, send it again

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    print(f"{time.perf_counter() - start:.3f}", flush=True)


async def lines_server(ack: bool) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1 << 16):
            n = data.count(b"\n")
            if ack and n:
                writer.write(b"OK\n" * n)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def http_server() -> None:
    from aiohttp import web

    async def handle(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(status=200)

    runner = web.ServerRunner(web.Server(handle, access_log=None))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "tcp":
        tcp(args[0], int(args[1]), args[2], int(args[3]))
    elif kind == "udp":
        udp(args[0], int(args[1]), args[2])
    elif kind == "post":
        asyncio.run(post(args[0], args[1], int(args[2])))
    elif kind == "lines-server":
        asyncio.run(lines_server(args[0] == "1"))
    elif kind == "http-server":
        asyncio.run(http_server())
    else:
        raise SystemExit(f"unknown peer {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
