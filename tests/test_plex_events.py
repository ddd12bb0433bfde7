"""sync.plex_events: a change Plex notifies over its websocket starts an incremental sync."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.parse
from contextlib import contextmanager

import pytest

from tests.emulator.model import MUSIC_SECTION_ID
from tests.mirror import assert_mirror, cached_library, expected_library, full_track_listings, iso_to_unix
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
    assert full_track_listings(emu) == 0, "the notification named the deleted tracks: no listing at all"


@pytest.mark.parametrize("listings", ["answer", "fail"])
@pytest.mark.parametrize("what", ["tracks", "album"])
async def test_deletions_notified_without_their_kind_are_applied_by_targeted_fetch(
        daemon_factory, plex_emulator, what, listings):
    """Servers that report a deleted item with ``type`` -1 (its kind no longer said): Plex is
    asked whether the items are gone, the cache says what they were (a track, an album and its
    tracks), and they are deleted in place: no listing, so also while every listing fails."""
    emu = plex_emulator
    emu.library.deleted_entry_type = -1
    daemon = await following_daemon(daemon_factory, emu)
    emu.request_log.clear()
    if listings == "fail":
        emu.inject_fault("500", path_contains="/all")
    if what == "tracks":
        for key in sorted(expected_library(emu), key=int)[:2]:
            emu.delete_track(key)
    else:
        emu.delete_album(sorted(emu.library.albums, key=int)[0])

    job = await finished_event_job(daemon)

    emu.clear_faults()
    assert (job["state"], job["mode"]) == ("succeeded", "incremental"), job
    assert job["removed"] > 0 and not [p for p in emu.request_log if "/all" in p], job
    assert_mirror(await cached_library(daemon), expected_library(emu))


@pytest.mark.parametrize("item, words", [
    ("999999", "item 999999 Plex deleted is neither a track nor an album of the cache"),
    ("first track", "notified as deleted is still on Plex"),
])
async def test_a_deletion_without_its_kind_that_cannot_be_placed_falls_back_to_an_incremental_sync(
        daemon_factory, plex_emulator, item, words):
    """An item deleted with ``type`` -1 that is no cached track or album (an artist: we keep no
    artist keys), or that Plex still has: the job reads Plex's changes instead, and the album
    deleted meanwhile without a word is found."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    if item == "first track":
        item = sorted(expected_library(emu), key=int)[0]
    with unheard(emu):
        emu.delete_album(sorted(emu.library.albums, key=int)[-1])
    emu.send_notification({"type": "timeline", "size": 1, "TimelineEntry": [{
        "identifier": "com.plexapp.plugins.library", "sectionID": MUSIC_SECTION_ID, "itemID": item,
        "type": -1, "state": 9, "metadataState": "deleted"}]})

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"]) == ("succeeded", "incremental") and job["removed"] > 0, job
    assert words in daemon.log()
    assert_mirror(await cached_library(daemon), expected_library(emu))


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


async def test_an_answer_too_large_for_the_daemon_is_left_to_an_incremental_sync(daemon_factory, plex_emulator):
    """The daemon reads at most 8 MiB of one answer to a targeted fetch; past that, the sync worker
    reads Plex's changes page by page instead (and the cache still ends exact)."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    emu.inject_fault("rewrite", path_contains="/library/metadata/", times=1,
                     rewrite=lambda body: body.replace(b"</MediaContainer>", b" " * (8 << 20) + b"</MediaContainer>"))
    emu.edit_track(sorted(expected_library(emu), key=int)[3], title="Edited, and answered at length")

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 1), job
    assert changes_asked_since(emu), "the worker read Plex's changes"
    assert "is over 8 MiB" in daemon.log()
    assert_mirror(await cached_library(daemon), expected_library(emu))


def listings(emu) -> list[str]:
    return [p for p in emu.request_log if "/all" in p]


async def test_a_notified_edit_and_delete_are_applied_while_every_listing_fails(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    generation = (await daemon.call("library.status"))["generation"]
    emu.inject_fault("500", path_contains="/all", times=None)
    emu.request_log.clear()
    keys = sorted(expected_library(emu), key=int)
    emu.edit_track(keys[3], title="Edited while listings fail", user_rating=9.0)
    emu.delete_track(keys[4])

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"], job["removed"]) == ("succeeded", "incremental", 1, 1), job
    assert listings(emu) == [], "targeted fetches only"
    assert any("/library/metadata/" in p for p in emu.request_log)
    emu.clear_faults()
    assert_mirror(await cached_library(daemon), expected_library(emu))
    status = await daemon.call("library.status")
    assert status["generation"] == generation + 1 and status["track_count"] == len(keys) - 1


async def test_notified_album_and_artist_edits_refresh_their_tracks(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    emu.request_log.clear()
    lib = expected_library(emu)
    albums = sorted({t["album_rating_key"] for t in lib.values()}, key=int)
    emu.set_album_genres(albums[0], ["Krautrock", "Ambient", "Drone"])
    emu.edit_artist(sorted(emu.library.artists, key=int)[1], title="Renamed Artist")

    async def mirrored():
        return await cached_library(daemon) == expected_library(emu)
    await wait_until(mirrored, timeout=30, interval=0.2)
    assert listings(emu) == []
    jobs = await event_jobs(daemon)
    assert all(j["state"] == "succeeded" and j["mode"] == "incremental" for j in jobs), jobs


async def test_an_unclear_notification_falls_back_to_an_incremental_sync(daemon_factory, plex_emulator):
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    key = sorted(expected_library(emu), key=int)[0]
    emu.edit_track(key, title="Edited before the fetch fails")
    emu.inject_fault("500", path_contains="/library/metadata/", times=1)  # the targeted fetch fails once

    job = await finished_event_job(daemon)

    emu.clear_faults()
    assert (job["state"], job["updated"]) == ("succeeded", 1), job
    assert len([p for p in emu.request_log if "updatedAt" in p]) > 0, "the fallback read Plex's changes"
    assert_mirror(await cached_library(daemon), expected_library(emu))


@contextmanager
def unheard(emu):
    """Library changes Plex makes without notifying us (our socket was down, a message lost)."""
    listeners, emu.library.listeners = emu.library.listeners, []
    try:
        yield
    finally:
        emu.library.listeners = listeners


def changes_asked_since(emu) -> set[int]:
    """The times the "changed since" track listings asked for (``track.updatedAt>>=T``)."""
    asked = [urllib.parse.parse_qs(urllib.parse.urlsplit(p).query) for p in emu.request_log]
    return {int(v) for q in asked for v in q.get("track.updatedAt>>", [])}


async def test_changes_applied_from_notifications_alone_do_not_move_where_incremental_syncs_read_from(
        daemon_factory, plex_emulator):
    """A notified change set reads only what Plex named. The next incremental sync still reads
    every change since the start of the last sync that read them all, minus the overlap: an
    edit Plex did not notify is not left behind however long ago the notified one came."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    full = (await daemon.call("sync.status"))["started_at"]
    keys = sorted(expected_library(emu), key=int)
    with unheard(emu):
        emu.edit_track(keys[1], title="Edited while nobody listened")

    async def a_second_later():  # so that the notified job starts later than the full sync
        return int(time.time()) > iso_to_unix(full)
    await wait_until(a_second_later)
    emu.edit_track(keys[2], title="Edited and notified")
    notified = await finished_event_job(daemon)
    assert (notified["state"], notified["updated"]) == ("succeeded", 1), notified
    assert iso_to_unix(notified["started_at"]) > iso_to_unix(full)
    emu.request_log.clear()

    job = await daemon.sync(mode="incremental")

    assert (job["state"], job["updated"]) == ("succeeded", 1), job
    assert changes_asked_since(emu) == {iso_to_unix(full) - 3600}
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_after_a_failed_sync_a_notified_change_reads_every_change(daemon_factory, plex_emulator):
    """The named items alone would leave out what the failed sync did not apply: the notified
    job reads every change since the last sync that succeeded instead."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    keys = sorted(expected_library(emu), key=int)
    with unheard(emu):
        emu.edit_track(keys[1], title="Edited while nobody listened")
    emu.inject_fault("500", path_contains="/all", times=None)
    assert (await daemon.sync(mode="incremental"))["state"] == "failed"
    emu.clear_faults()

    emu.edit_track(keys[2], title="Edited and notified")
    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 2), job
    assert any("updatedAt" in p for p in emu.request_log), "Plex's changes were read"
    assert_mirror(await cached_library(daemon), expected_library(emu))
    assert (await daemon.call("library.status"))["error"] is None


async def test_what_plex_changed_while_the_socket_was_down_is_read_when_it_is_back(daemon_factory, plex_emulator):
    """Plex does not repeat what it notified while our socket was down: once it reconnects, the
    daemon reads every change since the last sync that read them all (trigger plex_event)."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    keys = sorted(expected_library(emu), key=int)
    with unheard(emu):
        await asyncio.to_thread(emu.drop_websockets)
        emu.edit_track(keys[1], title="Edited while the socket was down")

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 1), job
    assert_mirror(await cached_library(daemon), expected_library(emu))
    assert "reading what changed while they were not followed" in daemon.log()


@pytest.mark.parametrize("edit", ["plex.timeout changed", "plex_events turned on"])
async def test_what_plex_changed_before_a_reload_started_following_it_again_is_read(
        daemon_factory, plex_emulator, edit):
    """A reload that replaces the listener (Plex's settings changed), or turns notifications on,
    leaves a time nobody followed Plex: its first connection reads every change, as after a drop."""
    emu = plex_emulator
    on = edit == "plex_events turned on"
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": not on})
    assert (await daemon.sync())["state"] == "succeeded"
    if not on:
        await connected(emu)
    keys = sorted(expected_library(emu), key=int)
    with unheard(emu):
        emu.edit_track(keys[1], title="Edited while nobody followed Plex")
    text = daemon.config.read_text()
    old, new = ("plex_events: false", "plex_events: true") if on else ("timeout: 5", "timeout: 6")
    assert old in text
    daemon.config.write_text(text.replace(old, new))
    daemon.proc.send_signal(signal.SIGHUP)

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 1), job
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_the_startup_connection_starts_no_sync(daemon_factory, plex_emulator):
    """At startup ``sync.stale_after`` decides (off here): following Plex starts nothing by itself."""
    emu = plex_emulator
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True})
    assert (await daemon.sync())["state"] == "succeeded"
    await connected(emu)
    emu.request_log.clear()
    emu.edit_track(sorted(expected_library(emu), key=int)[1], title="Notified")  # (after the connection's news)

    job = await finished_event_job(daemon)

    assert (job["state"], job["updated"]) == ("succeeded", 1), job
    assert not changes_asked_since(emu), "the named item only: no catch-up"
    assert "reading what changed while they were not followed" not in daemon.log()


async def test_past_ten_thousand_notified_changes_the_sync_reads_every_change(daemon_factory, plex_emulator):
    """Plex scanning a large new folder notifies each item: past 10,000 entries they are not kept,
    and the sync reads Plex's changes instead of fetching each item."""
    emu = plex_emulator
    daemon = await following_daemon(daemon_factory, emu)
    keys = sorted(expected_library(emu), key=int)
    with unheard(emu):
        emu.edit_track(keys[1], title="Edited during the scan")
    entries = [{"identifier": "com.plexapp.plugins.library", "sectionID": MUSIC_SECTION_ID, "itemID": keys[i % len(keys)],
                "type": 10, "state": 5, "updatedAt": int(time.time())} for i in range(10_001)]
    emu.request_log.clear()
    emu.send_notification({"type": "timeline", "size": len(entries), "TimelineEntry": entries})

    job = await finished_event_job(daemon)

    assert (job["state"], job["mode"], job["updated"]) == ("succeeded", "incremental", 1), job
    assert changes_asked_since(emu), "Plex's changes were read"
    assert not any(p.startswith("/library/metadata/") and "," in p for p in emu.request_log), "no item fetched"
    assert "the next sync reads every change instead" in daemon.log()
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_a_token_plex_serves_the_library_but_not_its_notifications_is_not_taken_for_rejected(
        daemon_factory, plex_emulator_factory):
    """Plex refuses its notification websocket to a user the owner shared the server with (HTTP 401)
    and serves that user the library. The daemon syncs on with such a token and says why it does
    not follow Plex; before, it took the 401 for a rejected token: `library.status` said a sync
    was owed because "Plex rejected the token", and syncs waited for the interval."""
    emu = plex_emulator_factory(300)
    emu.shared_tokens.add("a-shared-users-token")
    daemon = await daemon_factory(plex_url=emu.url, token="a-shared-users-token",
                                  sync={"plex_events": True, "interval": "24h"})

    async def answered():  # the listener's first connection, at startup
        return "Plex notifications at" in daemon.log() and "(HTTP 401)" in daemon.log()
    await wait_until(answered)

    assert (await daemon.call("library.status"))["sync_owed"] is None
    assert "refuses them to this token" in daemon.log() and "rejected the token" not in daemon.log()
    job = await daemon.sync("auto")
    assert (job["state"], job["added"]) == ("succeeded", 300), job
