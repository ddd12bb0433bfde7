"""sync.plex_events: a change Plex notifies over its websocket starts an incremental sync."""

from __future__ import annotations

import asyncio
import signal

from tests.mirror import assert_mirror, cached_library, expected_library, full_track_listings
from tests.support import wait_until


async def following_daemon(daemon_factory, emu):
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True})
    job = await daemon.sync()
    assert job["state"] == "succeeded", job
    await connected(emu)
    return daemon


async def connected(emu, clients: int = 1) -> None:
    assert await asyncio.to_thread(emu.wait_for_ws_clients, clients, 20), "the daemon did not connect"


async def event_jobs(daemon) -> list[dict]:
    jobs = (await daemon.call("sync.history"))["jobs"]
    return [j for j in jobs if j["trigger"] == "plex_event"]


async def finished_event_job(daemon) -> dict:
    async def done():
        jobs = await event_jobs(daemon)
        return jobs[0] if jobs and jobs[0]["state"] != "running" else None
    return await wait_until(done, timeout=30, interval=0.1)


async def test_a_burst_of_changes_gives_one_incremental_sync(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    keys = sorted(expected_library(emu), key=int)
    for key in keys[:5]:
        emu.edit_track(key, title=f"Edited {key}")

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 5), job
    assert len(await event_jobs(daemon)) == 1
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_notified_deletions_are_applied_without_listing_every_track(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    emu.request_log.clear()
    for key in sorted(expected_library(emu), key=int)[:2]:
        emu.delete_track(key)

    job = await finished_event_job(daemon)

    assert (job["state"], job["removed"]) == ("succeeded", 2), job
    assert_mirror(await cached_library(daemon), expected_library(emu))
    assert full_track_listings(emu) == 1, "only the track count: the notification named the deleted tracks"


async def test_it_reconnects_when_plex_drops_the_socket(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    await asyncio.to_thread(emu.drop_websockets)
    await connected(emu)
    emu.set_album_genres(sorted(emu.library.albums)[0], ["Krautrock"])

    job = await finished_event_job(daemon)

    assert job["state"] == "succeeded" and job["updated"] > 0, job
    assert_mirror(await cached_library(daemon), expected_library(emu))
    assert emu.token not in daemon.log()


async def test_off_means_no_socket(daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token,
                                  sync={"plex_events": False})
    assert (await daemon.sync())["state"] == "succeeded"
    assert plex_emulator.ws_client_count == 0


async def test_sighup_turns_following_on_and_off(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": False})
    text = daemon.config.read_text()
    assert "plex_events: false" in text
    daemon.config.write_text(text.replace("plex_events: false", "plex_events: true"))
    daemon.proc.send_signal(signal.SIGHUP)
    await connected(emu)

    daemon.config.write_text(text)
    daemon.proc.send_signal(signal.SIGHUP)

    async def closed():
        return emu.ws_client_count == 0
    await wait_until(closed)


async def test_a_rejected_token_is_logged_briefly_and_never_shown(daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, token="wrong-secret-token",
                                  sync={"plex_events": True})

    async def logged():
        return "Plex rejected the token (HTTP 401)" in daemon.log()
    await wait_until(logged)
    assert "wrong-secret-token" not in daemon.log()
    assert "<html>" not in daemon.log()
