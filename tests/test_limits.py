"""Resource limits (#10 item 3): batch length, answer size, connections, fairness, cancellation, memory.

Every test runs the real daemon on a real Unix socket; memory is the daemon's
own VmRSS / VmHWM read from /proc, latency is measured on the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time

import pytest

from tests.support import ROOT, RpcConnection, raw_exchange, wait_until

MIB = 1 << 20


def rss(pid: int, field: str = "VmRSS") -> int:
    """A /proc/PID/status memory field in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


def query(ident, **params) -> dict:
    return {"jsonrpc": "2.0", "id": ident, "method": "tracks.query", "params": params}


async def synced(daemon_factory, emulator, **daemon_section):
    daemon = await daemon_factory(plex_url=emulator.url, token=emulator.token,
                                  sync={"page_size": 1000}, daemon={"log_level": "debug", **daemon_section})
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    return daemon


async def read_line(reader: asyncio.StreamReader, timeout: float = 30.0) -> dict:
    line = await asyncio.wait_for(reader.readline(), timeout)
    assert line, "the daemon closed the connection"
    return json.loads(line)


# --------------------------------------------------------------------------- batches and answer size


async def test_a_batch_over_the_limit_is_refused_whole(synced_daemon):
    batch = [query(i, limit=10000) for i in range(1000)]
    [answer] = await raw_exchange(synced_daemon.socket, json.dumps(batch).encode() + b"\n", 1)
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600
    assert "1000 requests" in answer["error"]["data"] and "100 (MAX_BATCH)" in answer["error"]["data"]
    at_limit = [{"jsonrpc": "2.0", "id": i, "method": "daemon.info"} for i in range(100)]
    [answers] = await raw_exchange(synced_daemon.socket, json.dumps(at_limit).encode() + b"\n", 1)
    assert sorted(a["id"] for a in answers) == list(range(100)) and all("result" in a for a in answers)


async def test_an_answer_over_max_response_is_an_error_naming_the_limit(daemon_factory, plex_emulator_factory):
    daemon = await synced(daemon_factory, plex_emulator_factory(3000), max_response_mib=1)
    [single] = await raw_exchange(daemon.socket, json.dumps(query("big", limit=10000)).encode() + b"\n", 1)
    assert single["id"] == "big"
    assert single["error"]["code"] == -32004 and single["error"]["message"] == "limit_exceeded"
    assert "1 MiB (daemon.max_response_mib)" in single["error"]["data"]
    # A batch: answers are kept while they fit; the rest of the batch is not run and each gets the error.
    batch = [query(i, limit=1000) for i in range(6)] + [{"jsonrpc": "2.0", "method": "sync.start"}]
    [answers] = await raw_exchange(daemon.socket, json.dumps(batch).encode() + b"\n", 1)
    assert [a["id"] for a in answers] == list(range(6))
    fitted = [a for a in answers if "result" in a]
    assert 1 <= len(fitted) < 6 and answers[:len(fitted)] == fitted
    assert all(a["error"]["code"] == -32004 for a in answers[len(fitted):])
    assert sum(len(json.dumps(a["result"], ensure_ascii=False).encode()) for a in fitted) <= MIB
    status = await daemon.call("library.status")
    assert status["is_syncing"] is False  # the notification after the cut was not run
    small = await daemon.call("tracks.query", limit=5)
    assert len(small["tracks"]) == 5


async def test_heavy_batches_keep_rss_within_the_documented_bound(daemon_factory, plex_emulator_factory):
    """#10: a 7.5 KB line of tracks.query limit:10000 calls took the daemon to 2.9 GB."""
    max_response_mib = int(os.environ.get("MEDIASAGE_TEST_MAX_RESPONSE_MIB", "8"))
    daemon = await synced(daemon_factory, plex_emulator_factory(10000), max_response_mib=max_response_mib)
    pid = daemon.proc.pid
    single = await daemon.call("tracks.query", limit=10000)
    assert len(single["tracks"]) == 10000
    base = rss(pid)
    # README "Limits": base + readers x (16 MiB of SQLite cache + 6 x the largest single answer)
    # + 2 x readers x max_response; 4 readers, answers of ~4 MB (10,000 tracks).
    bound = base + 4 * (16 * MIB + 6 * len(json.dumps(single))) + 2 * 4 * max_response_mib * MIB
    peak = 0
    done = asyncio.Event()

    async def watch_rss():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            assert peak <= bound, f"daemon RSS {peak / MIB:.0f} MiB over the bound {bound / MIB:.0f} MiB"
            await asyncio.sleep(0.01)

    async def heavy_batch(n):
        reader, writer = await asyncio.open_unix_connection(str(daemon.socket), limit=2 * max_response_mib * MIB)
        writer.write(json.dumps([query(i, limit=10000) for i in range(n)]).encode() + b"\n")
        try:
            return await read_line(reader, 60)
        finally:
            writer.close()

    watcher = asyncio.create_task(watch_rss())
    try:
        refused, *batches = await asyncio.gather(heavy_batch(1000), *(heavy_batch(100) for _ in range(4)))
    finally:
        done.set()
    await watcher
    assert refused["error"]["code"] == -32600
    for answers in batches:
        assert len(answers) == 100
        ok = [a for a in answers if "result" in a]
        assert 1 <= len(ok) <= max_response_mib  # each answer is ~4 MB
        assert all(a["error"]["code"] == -32004 for a in answers if "error" in a)
    hwm = rss(pid, "VmHWM")
    print(f"RSS base {base / MIB:.0f} MiB, peak sampled {peak / MIB:.0f} MiB, VmHWM {hwm / MIB:.0f} MiB, "
          f"bound {bound / MIB:.0f} MiB")
    assert hwm <= bound


# --------------------------------------------------------------------------- connections


async def test_connections_over_the_caps_get_a_refusal_line(daemon_factory):
    daemon = await daemon_factory(daemon={"max_connections": 6, "max_connections_per_uid": 4})
    held = [await asyncio.open_unix_connection(str(daemon.socket)) for _ in range(4)]
    for reader, writer in held:  # each is really served
        writer.write(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')
        assert "result" in await read_line(reader)
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    refusal = await read_line(reader)
    assert refusal["error"]["code"] == -32004 and refusal["id"] is None
    assert "daemon.max_connections_per_uid" in refusal["error"]["data"]
    assert await asyncio.wait_for(reader.read(), 10) == b""  # and closed
    writer.close()
    held[0][1].close()  # one goes: a new one is served again

    async def served():
        r, w = await asyncio.open_unix_connection(str(daemon.socket))
        w.write(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')
        answer = await read_line(r)
        w.close()
        return "result" in answer

    await wait_until(served, timeout=10)


async def test_a_refused_client_that_sent_its_request_at_once_reads_why_then_eof(daemon_factory):
    """A refused connection was closed with the client's request unread: the client then got
    ECONNRESET, and asyncio's StreamReader raises that before the line it already holds, so
    the refusal was lost (a test of ours failed so under load)."""
    daemon = await daemon_factory(daemon={"max_connections": 6, "max_connections_per_uid": 1})
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')
    assert "result" in await read_line(reader)

    def refused_client() -> tuple[bytes, str]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(daemon.socket))
            sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')  # before the daemon looks
            received = b""
            try:
                while chunk := sock.recv(4096):
                    received += chunk
            except OSError as exc:
                return received, exc.strerror
            return received, "EOF"

    for _ in range(5):
        received, end = await asyncio.to_thread(refused_client)
        assert end == "EOF", (received, end)
        assert json.loads(received)["error"]["code"] == -32004


async def test_idle_connections_up_to_the_fd_limit_leave_clients_and_the_sync_working(daemon_factory,
                                                                                        plex_emulator):
    """#10: 1,100 idle connections (fd limit 1024) made clients time out and a running sync fail."""
    daemon = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token, nofile=256,
                                  daemon={"max_connections_per_uid": 1000})
    assert "more than the file descriptor limit allows" in daemon.log()
    held, refused = [], 0
    try:
        for _ in range(300):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(10)  # an answer or a refusal comes at once, never a timeout
            sock.connect(str(daemon.socket))
            try:
                sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.info"}\n')
            except BrokenPipeError:
                pass  # refused and closed already: its line is waiting to be read
            answer = json.loads(sock.makefile("rb").readline())
            if "result" in answer:
                held.append(sock)
            else:
                assert answer["error"]["code"] == -32004, answer
                assert "daemon.max_connections" in answer["error"]["data"]
                refused += 1
                sock.close()
        assert 100 <= len(held) <= 256 - 64 and refused == 300 - len(held)
        held.pop().close()  # room for the client that runs the sync
        conn = await wait_until(lambda: _try_connect(daemon), timeout=20)
        job_id = (await conn.call("sync.start", mode="full"))["job_id"]

        async def finished():
            job = await conn.call("sync.status", job_id=job_id)
            return job if job["state"] != "running" else None

        job = await wait_until(finished, timeout=60, interval=0.05)
        await conn.close()
        assert job["state"] == "succeeded", (job, daemon.log()[-2000:])
        assert job["added"] == 1500
        # A reload with the connections open keeps the cap (they are not counted as other descriptors).
        daemon.proc.send_signal(signal.SIGHUP)
        await wait_until(lambda: _log_has(daemon, "reloaded config"), timeout=10)
        conn = await wait_until(lambda: _try_connect(daemon), timeout=10)
        await conn.close()
    finally:
        for sock in held:
            sock.close()


async def _try_connect(daemon):
    """A served connection, or None when refused (the refusal line and EOF may come before the request)."""
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket), limit=16 * MIB)
    try:
        writer.write(b'{"jsonrpc":"2.0","id":0,"method":"daemon.info"}\n')
        answer = json.loads(await asyncio.wait_for(reader.readline(), 10) or b"{}")
    except ConnectionError:
        answer = {}
    if "result" not in answer:
        writer.close()
        return None
    return RpcConnection(reader, writer)


# --------------------------------------------------------------------------- fairness and cancellation


async def test_a_bystander_is_not_starved_by_greedy_clients(daemon_factory, plex_emulator_factory):
    """#10: 20 clients x 64 large queries made another client's library.status wait over 120 s.

    The machine is shared (2 cores, other suites running), so the p99 of a window
    of 200 calls is judged up to three times; starvation fails every window.
    """
    daemon = await synced(daemon_factory, plex_emulator_factory(3000))
    greedy = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.greedy", str(daemon.socket), "20", "64", "10000",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    windows = []
    try:
        assert await asyncio.wait_for(greedy.stdout.readline(), 30) == b"sent\n"
        conn = await daemon.connect()
        for _ in range(3):
            latencies = []
            for _ in range(200):
                t0 = time.perf_counter()
                await conn.call("library.status")
                latencies.append(time.perf_counter() - t0)
            latencies.sort()
            windows.append((latencies[197], latencies[100], latencies[-1]))  # p99, p50, max
            if windows[-1][0] < 0.050:
                break
        t0 = time.perf_counter()
        heavy = await conn.call("tracks.query", limit=10000)
        heavy_latency = time.perf_counter() - t0
        still_busy = greedy.returncode is None
    finally:
        if greedy.returncode is None:
            greedy.send_signal(signal.SIGKILL)
        await greedy.wait()
    for p99, p50, worst in windows:
        print(f"library.status under load: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
              f"max {worst * 1000:.1f} ms")
    print(f"a bystander's large query under load: {heavy_latency:.2f} s")
    assert still_busy, "the greedy clients finished before the measurement did: the test measured nothing"
    assert len(heavy["tracks"]) == 3000
    assert min(p99 for p99, _, _ in windows) < 0.050
    assert max(worst for _, _, worst in windows) < 1.0
    # The greedy connections are gone: what they still had queued is cancelled, not run.
    await wait_until(lambda: _log_has(daemon, "cancelled"), timeout=10)
    t0 = time.perf_counter()
    await conn.call("tracks.query", limit=10000)
    assert time.perf_counter() - t0 < 5 * max(heavy_latency, 0.2)
    await conn.close()


async def _log_has(daemon, needle: str) -> bool:
    return needle in daemon.log()


async def test_requests_of_a_closed_connection_are_cancelled(daemon_factory, plex_emulator_factory):
    daemon = await synced(daemon_factory, plex_emulator_factory(3000))
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(b"".join(json.dumps(query(i, limit=10000)).encode() + b"\n" for i in range(64)))
    await writer.drain()
    writer.close()
    line = await wait_until(lambda: _cancel_line(daemon), timeout=20)
    cancelled = int(line.split("cancelled ")[1].split()[0])
    assert cancelled >= 12, line  # 16 were read (MAX_IN_FLIGHT); at most those done were not cancelled


async def _cancel_line(daemon):
    return next((l for l in daemon.log().splitlines() if "cancelled " in l and "closed connection" in l), None)


async def test_a_half_closed_connection_still_gets_its_answers(synced_daemon):
    reader, writer = await asyncio.open_unix_connection(str(synced_daemon.socket), limit=16 * MIB)
    writer.write(b"".join(json.dumps(query(i, limit=500)).encode() + b"\n" for i in range(10)))
    writer.write_eof()
    answers = [json.loads(line) for line in (await asyncio.wait_for(reader.read(), 30)).splitlines()]
    assert sorted(a["id"] for a in answers) == list(range(10))
    assert all(len(a["result"]["tracks"]) == 500 for a in answers)
    writer.close()


def test_the_unit_raises_the_descriptor_limit():
    unit = (ROOT / "systemd" / "mediasaged.service").read_text()
    assert any(line.startswith("LimitNOFILE=") for line in unit.splitlines())
