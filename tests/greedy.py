"""Greedy clients for tests/test_limits.py, run as a separate process:

    python -m tests.greedy SOCKET CLIENTS REQUESTS LIMIT

Opens CLIENTS connections, writes REQUESTS ``tracks.query`` lines with
``limit: LIMIT`` on each at once, prints ``sent`` and then reads (and drops)
the answers until every one has come, then prints ``done``. Being a process of
its own, its reading never competes with the measuring test for one event loop.
"""

from __future__ import annotations

import asyncio
import json
import sys


async def client(path: str, requests: int, limit: int, sent: asyncio.Event, ready: list) -> None:
    reader, writer = await asyncio.open_unix_connection(path, limit=64 << 20)
    lines = b"".join(json.dumps({"jsonrpc": "2.0", "id": i, "method": "tracks.query",
                                 "params": {"limit": limit, "sort": "title"}}).encode() + b"\n"
                     for i in range(requests))
    writer.write(lines)
    await writer.drain()
    ready.append(1)
    await sent.wait()
    for _ in range(requests):
        if not await reader.readline():
            break
    writer.close()


async def main(path: str, clients: int, requests: int, limit: int) -> None:
    sent = asyncio.Event()
    ready: list = []
    tasks = [asyncio.create_task(client(path, requests, limit, sent, ready)) for _ in range(clients)]
    while len(ready) < clients:
        await asyncio.sleep(0.005)
    print("sent", flush=True)
    sent.set()
    await asyncio.gather(*tasks)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
