"""The Python client API (``from mediasagectl import Client, AsyncClient``) against the real daemon."""

from __future__ import annotations

import asyncio
import time

import pytest

from mediasagectl import (AsyncClient, CallTimeout, Client, DaemonError, Event, InvalidParams,
                          MethodNotFound, NotSynced, Unreachable)
from mediasagectl.errors import LimitExceeded, PermissionDenied, PlexUnreachable, daemon_error


def test_error_codes_map_to_types():
    for code, cls in ((-32001, NotSynced), (-32002, PlexUnreachable), (-32003, PermissionDenied),
                      (-32004, LimitExceeded), (-32601, MethodNotFound), (-32602, InvalidParams)):
        error = daemon_error(code, "m", {"x": 1})
        assert type(error) is cls and isinstance(error, DaemonError)
        assert (error.code, error.message, error.data) == (code, "m", {"x": 1})
    assert type(daemon_error(-32099, "other")) is DaemonError


async def test_sync_client_calls_errors_and_events(plex_daemon):
    def use() -> tuple:
        with Client(str(plex_daemon.socket), timeout=20) as ms:
            info = ms.call("daemon.info")
            with pytest.raises(NotSynced) as not_synced:
                ms.call("tracks.query", limit=1)
            with pytest.raises(InvalidParams) as bad:
                ms.call("tracks.query", {"limit": "many"})
            with pytest.raises(MethodNotFound):
                ms.call("no.such.method")
            assert sorted(ms.subscribe("sync.started", "sync.finished")) == ["sync.finished", "sync.started"]
            job_id = ms.call("sync.start", mode="full")["job_id"]
            seen = []
            for event in ms.events(timeout=60):
                assert isinstance(event, Event)
                seen.append(event)
                if event.method == "sync.finished":
                    break
            page = ms.call("tracks.query", limit=2, sort="title")
            assert ms.next_event(timeout=0.05) is None
            return info, not_synced.value, bad.value, job_id, seen, page

    info, not_synced, bad, job_id, seen, page = await asyncio.to_thread(use)
    assert info["pid"] == plex_daemon.proc.pid
    assert not_synced.code == -32001 and bad.code == -32602 and "limit" in bad.message
    assert [e.method for e in seen] == ["sync.started", "sync.finished"]
    assert seen[-1].params["job_id"] == job_id and seen[-1].params["state"] == "succeeded"
    assert page["total"] == 1500 and len(page["tracks"]) == 2


async def test_async_client_concurrent_calls_and_events(plex_daemon):
    async with AsyncClient(str(plex_daemon.socket), timeout=20) as ms:
        status, info = await asyncio.gather(ms.call("library.status"), ms.call("daemon.info"))
        assert status["synced_at"] is None and info["pid"] == plex_daemon.proc.pid
        with pytest.raises(NotSynced):
            await ms.call("library.stats")
        await ms.subscribe("sync.finished", "library.changed")
        job = await ms.call("sync.start", {"mode": "full"})
        names = []
        async for event in ms.events(timeout=60):
            names.append(event.method)
            if event.method == "sync.finished":
                assert event.params["job_id"] == job["job_id"]
                break
        assert "sync.finished" in names
        stats = await ms.call("library.stats")
        assert stats["track_count"] == 1500


async def test_a_refusal_over_the_connection_cap_is_a_limit_exceeded_error(daemon_factory):
    """The daemon's -32004 line (id null) to a connection over its caps reaches both clients
    as the typed error, naming the limit, not as a closed connection."""
    daemon = await daemon_factory(daemon={"max_connections": 2, "max_connections_per_uid": 1})
    async with AsyncClient(socket=str(daemon.socket)) as held:
        assert "version" in await held.call("daemon.info")

        def over_the_cap() -> LimitExceeded:
            with Client(socket=str(daemon.socket), timeout=10) as ms, pytest.raises(LimitExceeded) as caught:
                ms.call("daemon.info")
            return caught.value

        refused = await asyncio.to_thread(over_the_cap)
        assert refused.code == -32004 and "daemon.max_connections_per_uid" in str(refused.data)
        async with AsyncClient(socket=str(daemon.socket), timeout=10) as late:
            with pytest.raises(LimitExceeded) as caught:
                await late.call("daemon.info")
        assert "daemon.max_connections_per_uid" in str(caught.value.data)


async def test_unreachable_and_timeouts(sdir):
    with pytest.raises(Unreachable) as missing:
        Client(str(sdir / "none.sock")).call("daemon.info")
    assert missing.value.reason == "missing"
    with pytest.raises(Unreachable):
        async with AsyncClient(str(sdir / "none.sock")) as ms:
            await ms.call("daemon.info")
    # a listener that never answers: the call times out. It keeps its streams: since
    # Python 3.13 a StreamWriter that is garbage-collected closes its connection.
    streams = []
    server = await asyncio.start_unix_server(lambda r, w: streams.append((r, w)), path=str(sdir / "mute.sock"))
    try:
        async with AsyncClient(str(sdir / "mute.sock"), timeout=0.3) as ms:
            t0 = time.monotonic()
            with pytest.raises(CallTimeout):
                await ms.call("daemon.info")
            assert time.monotonic() - t0 < 5

        def blocking():
            with Client(str(sdir / "mute.sock"), timeout=0.3) as ms:
                ms.call("daemon.info")

        with pytest.raises(CallTimeout):
            await asyncio.to_thread(blocking)
    finally:
        for _, writer in streams:
            writer.close()
        server.close()


async def test_a_daemon_that_goes_away_fails_pending_calls_and_event_reads(daemon):
    async with AsyncClient(str(daemon.socket), timeout=20) as ms:
        await ms.call("daemon.info")
        waiting = asyncio.ensure_future(ms.next_event())
        await daemon.stop()
        with pytest.raises(Unreachable) as closed:
            await asyncio.wait_for(waiting, 20)
        assert closed.value.reason == "closed"
