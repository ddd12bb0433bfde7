"""Full sync against the Plex emulator: exact mirror, never half-written, progress."""

from __future__ import annotations

import signal

import pytest

from tests.mirror import assert_mirror, cached_library, expected_library
from tests.support import DaemonProcess, start_stalled_sync


async def test_full_sync_mirrors_every_field(synced_daemon, plex_emulator):
    expected = expected_library(plex_emulator)
    assert any(len(t["genres"]) >= 3 for t in expected.values()), "library lacks 3+-genre albums"
    assert any(t["is_live"] for t in expected.values()) and any(not t["genres"] for t in expected.values())
    assert_mirror(await cached_library(synced_daemon), expected)
    status = await synced_daemon.call("library.status")
    assert status["track_count"] == len(expected)
    assert status["generation"] == 1 and status["error"] is None and status["stale"] is False
    assert status["plex_server_id"] == plex_emulator.library.machine_identifier
    assert status["plex_reachable"] is True


async def test_resync_after_changes_is_exact_with_right_counts(synced_daemon, plex_emulator):
    emu = plex_emulator
    before = expected_library(emu)
    keys = sorted(before, key=int)
    some_album = before[keys[10]]["album_rating_key"]
    emu.add_track(title="Brand New Song", album_key=some_album)
    emu.add_track(title="Jóga (Live at Royal Opera)", album_title="Homogenic Live", artist="Björk",
                  album_year=1998, album_genres=["Electronic", "Art Pop", "Trip Hop", "Experimental"])
    for key in keys[100:103]:
        emu.delete_track(key)
    emu.edit_track(keys[200], title="Renamed Track", user_rating=7.0)
    emu.edit_track(keys[300], view_count=42)
    genre_album = before[keys[500]]["album_rating_key"]
    emu.set_album_genres(genre_album, ["Rock", "Shoegaze", "Dream Pop"])

    after = expected_library(emu)
    updated = sum(1 for k in before.keys() & after.keys() if before[k] != after[k])
    job = await synced_daemon.sync()
    assert job["state"] == "succeeded", job
    assert (job["added"], job["removed"], job["updated"]) == (2, 3, updated)
    assert_mirror(await cached_library(synced_daemon), after)
    status = await synced_daemon.call("library.status")
    assert status["generation"] == 2


async def test_unchanged_resync_keeps_generation(synced_daemon):
    job = await synced_daemon.sync()
    assert (job["added"], job["updated"], job["removed"]) == (0, 0, 0)
    assert (await synced_daemon.call("library.status"))["generation"] == 1


@pytest.mark.parametrize("kind, words", [
    ("500", "500"),
    ("drop", "connection"),
    ("truncate", "XML"),
    ("401", "token"),
    ("slow", "timed out"),
])
async def test_fault_mid_sync_fails_clearly_and_keeps_the_cache(daemon_factory, plex_emulator, kind, words):
    daemon = await daemon_factory(plex_url=plex_emulator.url, plex={"timeout": 1}, sync={"retries": 1})
    assert (await daemon.sync())["state"] == "succeeded"
    before = await cached_library(daemon)
    plex_emulator.slow_seconds = 3.0
    pages = -(-len(before) // 200)
    plex_emulator.inject_fault(kind, page=pages // 2, times=10)
    job = await daemon.sync()
    assert job["state"] == "failed"
    assert words.lower() in job["error"].lower(), job["error"]
    status = await daemon.call("library.status")
    assert status["error"] == job["error"]
    assert status["generation"] == 1
    assert await cached_library(daemon) == before
    plex_emulator.clear_faults()
    assert (await daemon.sync())["state"] == "succeeded"
    assert (await daemon.call("library.status"))["error"] is None
    assert "test-token" not in daemon.log()


async def test_a_fault_that_clears_within_retries_is_survived(plex_daemon, plex_emulator):
    plex_emulator.inject_fault("500", page=2, times=1)
    job = await plex_daemon.sync()
    assert job["state"] == "succeeded", job
    assert_mirror(await cached_library(plex_daemon), expected_library(plex_emulator))


async def test_readers_see_only_complete_snapshots(synced_daemon, plex_emulator):
    old = len(plex_emulator.library.tracks)
    for i in range(300):
        plex_emulator.add_track(title=f"Extra {i}", album_title=f"Extra Album {i // 10}", artist="Extra Artist")
    new = len(plex_emulator.library.tracks)
    start = await synced_daemon.call("sync.start", mode="full")
    seen = set()
    conn = await synced_daemon.connect()
    try:
        while True:
            seen.add((await conn.call("tracks.query", limit=0))["total"])
            seen.add((await conn.call("library.status"))["track_count"])
            if (await conn.call("sync.status", job_id=start["job_id"]))["state"] != "running":
                break
    finally:
        await conn.close()
    seen.add((await synced_daemon.call("tracks.query", limit=0))["total"])
    assert seen <= {old, new} and new in seen, seen


async def test_cancel_mid_sync_keeps_the_cache(synced_daemon, plex_emulator):
    before = await cached_library(synced_daemon)
    start = await start_stalled_sync(synced_daemon, plex_emulator)
    again = await synced_daemon.call("sync.start")
    assert again == {"started": False, "job_id": start["job_id"]}
    assert await synced_daemon.call("sync.cancel") == {"cancelled": True, "job_id": start["job_id"]}
    job = await synced_daemon.call("sync.status", job_id=start["job_id"])
    assert job["state"] == "cancelled"
    assert await cached_library(synced_daemon) == before
    assert (await synced_daemon.call("sync.cancel"))["cancelled"] is False


async def test_killed_daemon_mid_sync_loses_nothing(synced_daemon, plex_emulator):
    before = await cached_library(synced_daemon)
    start = await start_stalled_sync(synced_daemon, plex_emulator)
    synced_daemon.proc.kill()
    await synced_daemon.wait_exit()
    restarted = DaemonProcess(synced_daemon.dir, synced_daemon.config)
    try:
        await restarted.start()
        assert await cached_library(restarted) == before
        job = await restarted.call("sync.status", job_id=start["job_id"])
        assert job["state"] == "failed" and "interrupted" in job["error"]
    finally:
        await restarted.stop()
        await restarted.close()


@pytest.mark.parametrize("mode", ["full", "incremental"])
async def test_server_change_replaces_the_library(daemon_factory, plex_emulator_factory, mode):
    first = plex_emulator_factory(600, seed=1)
    daemon = await daemon_factory(plex_url=first.url)
    assert (await daemon.sync())["state"] == "succeeded"
    port = first.port
    first.stop()
    second = plex_emulator_factory(400, seed=2, port=port)
    second.set_machine_identifier("another-server-0000000000000000000000002")
    job = await daemon.sync(mode=mode)
    assert (job["state"], job["mode"]) == ("succeeded", "full"), job  # another server: never incremental
    assert_mirror(await cached_library(daemon), expected_library(second))
    status = await daemon.call("library.status")
    assert status["plex_server_id"] == "another-server-0000000000000000000000002"
    assert (await daemon.call("daemon.info"))["plex"]["server_id"] == status["plex_server_id"]


async def test_progress_is_pushed_monotonic_and_complete(plex_daemon, plex_emulator):
    conn = await plex_daemon.connect()
    try:
        await conn.call("events.subscribe", events=["sync.started", "sync.progress", "sync.finished"])
        start = await conn.call("sync.start", mode="full")
        started = await conn.next_notification("sync.started")
        assert started["params"]["job_id"] == start["job_id"]
        progress = []
        while True:
            msg = await conn.next_notification()
            if msg["method"] == "sync.finished":
                finished = msg["params"]
                break
            progress.append(msg["params"])
    finally:
        await conn.close()
    size = len(plex_emulator.library.tracks)
    assert finished["state"] == "succeeded"
    assert finished["current"] == finished["total"] == size
    counts = [p["current"] for p in progress]
    assert counts == sorted(counts)
    assert any(p["total"] == size and p["phase"] == "tracks" for p in progress)
    history = await plex_daemon.call("sync.history")
    assert history["jobs"][0]["job_id"] == start["job_id"]
    assert history["jobs"][0]["added"] == size


async def test_bad_token_fails_without_leaking_it(daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, token="SECRET-wrong-token-123")
    job = await daemon.sync()
    assert job["state"] == "failed"
    answers = [job, await daemon.call("library.status"), await daemon.call("sync.history"),
               await daemon.call("daemon.info")]
    assert "SECRET-wrong-token-123" not in repr(answers) + daemon.log()
    assert "token" in job["error"].lower()


async def test_unreachable_plex_is_reported(daemon):
    job = await daemon.sync()
    assert job["state"] == "failed"
    assert "127.0.0.1:9" in job["error"]
    assert (await daemon.call("library.status"))["plex_reachable"] is False


async def test_sigterm_during_sync_cancels_and_exits_0(synced_daemon, plex_emulator):
    plex_emulator.slow_seconds = 3.0
    plex_emulator.inject_fault("slow", page=2, times=1)
    await synced_daemon.call("sync.start", mode="full")
    assert await synced_daemon.stop(signal.SIGTERM) == 0
    assert not synced_daemon.socket.exists()
