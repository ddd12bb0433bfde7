"""Incremental sync: only what changed since the last sync is read, and the cache still equals Plex."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from contextlib import closing

import pytest
import yaml

from tests.mirror import assert_mirror, cached_library, expected_library, full_track_listings, iso_to_unix
from tests.support import DaemonProcess, wait_until


async def incremental(daemon) -> dict:
    job = await daemon.sync(mode="incremental")
    assert job["state"] == "succeeded", (job, daemon.log())
    return job


async def test_edits_additions_and_album_edits_are_read_as_changes_only(synced_daemon, plex_emulator):
    emu = plex_emulator
    before = expected_library(emu)
    keys = sorted(before, key=int)
    emu.add_track(title="Brand New Song", album_key=before[keys[10]]["album_rating_key"])
    emu.edit_track(keys[200], title="Renamed Track", user_rating=7.0)
    emu.edit_track(keys[300], view_count=42)
    emu.set_album_genres(before[keys[500]]["album_rating_key"], ["Rock", "Shoegaze", "Dream Pop"])
    emu.edit_album(before[keys[700]]["album_rating_key"], year=1977)  # the tracks' updatedAt stays
    after = expected_library(emu)
    updated = sum(1 for k in before if before[k] != after[k])
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert job["mode"] == "incremental"
    assert (job["added"], job["removed"], job["updated"]) == (1, 0, updated)
    assert_mirror(await cached_library(synced_daemon), after)
    assert full_track_listings(emu) == 1, "only the track count, no full paging"
    assert (await synced_daemon.call("library.status"))["generation"] == 2


async def test_ratings_and_plays_which_move_no_updated_at_are_read(synced_daemon, plex_emulator):
    """On a real server a rating moves only userRating and lastRatedAt, a play only viewCount and
    lastViewedAt (tests/fixtures/plex/SOURCES.md): an incremental sync that read "updated since"
    alone never saw them, and the daemon's check called the library unchanged."""
    emu = plex_emulator
    before = expected_library(emu)
    keys = sorted(before, key=int)
    stamps = {k: emu.library.tracks[k].updated_at for k in keys[:3]}
    emu.rate_track(keys[0], 3.0 if before[keys[0]]["user_rating"] != 3.0 else 4.0)
    emu.play_track(keys[1])
    emu.play_track(keys[1])
    emu.rate_track(keys[2], 9.0)
    emu.play_track(keys[2])
    assert {k: emu.library.tracks[k].updated_at for k in keys[:3]} == stamps, "as Plex: no updatedAt moved"
    after = expected_library(emu)
    assert sum(1 for k in before if before[k] != after[k]) == 3
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert (job["added"], job["updated"], job["removed"]) == (0, 3, 0), job
    assert_mirror(await cached_library(synced_daemon), after)
    assert full_track_listings(emu) == 1, "only the track count, no full paging"


async def test_a_server_older_than_last_rated_at_still_syncs_what_it_can(synced_daemon, plex_emulator):
    """A server that answers the lastRatedAt filter with HTTP 400: the edits and plays are read, the
    log says ratings wait for the full sync, and the 400 does not turn the slim listings off."""
    emu = plex_emulator
    emu.library.rated_filter = False
    keys = sorted(expected_library(emu), key=int)
    emu.edit_track(keys[5], title="Edited on an old server")
    emu.play_track(keys[6])
    artist_of = lambda k: emu.library.albums[emu.library.tracks[k].album_key].artist_key  # noqa: E731
    artist = artist_of(keys[-1])
    assert artist not in (artist_of(keys[5]), artist_of(keys[6]))
    emu.edit_artist(artist, title="Renamed on an old server")  # its tracks: a track listing after the 400
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert job["updated"] >= 3, job
    assert "refused to list the tracks rated since the last sync" in synced_daemon.log()
    refused = [p for p in emu.request_log if "lastRatedAt" in p and "Container-Size=0" not in p]  # the worker's
    assert len(refused) == 2 and "excludeElements" in refused[0] and "excludeElements" not in refused[1], refused
    later = [p for p in emu.request_log if "type=10" in p and "artist.id=" in p]
    assert later and all("excludeElements" in p for p in later), list(emu.request_log)


async def test_a_refused_played_since_listing_leaves_the_rest_of_the_sync_standing(synced_daemon, plex_emulator):
    """No server is known to refuse the lastViewedAt filter; if one does (HTTP 400), the edits are
    still read and applied, and the log says plays wait for the full sync."""
    emu = plex_emulator
    keys = sorted(expected_library(emu), key=int)
    emu.edit_track(keys[9], title="Edited while plays can't be listed")
    emu.inject_fault("400", path_contains="lastViewedAt", times=None)

    job = await incremental(synced_daemon)

    assert job["updated"] == 1, job
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert "refused to list the tracks played since the last sync" in synced_daemon.log()


async def test_the_genres_of_a_change_set_are_read_in_one_batched_pass(synced_daemon, plex_emulator):
    """The albums' genres that changed tracks inherit are asked once for the whole change set
    (250 albums a request), not once per page of the "changed since" listing."""
    emu = plex_emulator
    before = expected_library(emu)
    # albums with a year: their tracks' listing has parentYear, so no album year is fetched either
    albums = sorted({row["album_rating_key"] for row in before.values()
                     if emu.library.albums[row["album_rating_key"]].year is not None}, key=int)[:40]
    edited = [k for k, row in before.items() if row["album_rating_key"] in albums]
    assert len(edited) > 250, "the changes span more than one listing page"
    for key in edited:
        emu.edit_track(key, user_rating=9.0)
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert job["updated"] == len(edited)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    metadata = [p for p in emu.request_log if p.startswith("/library/metadata/") and "/children" not in p]
    assert len(metadata) == 1, metadata


async def test_the_years_of_albums_without_one_come_with_their_genres(synced_daemon, plex_emulator):
    """A track of an album without a year has no year in a listing (no ``parentYear``), the form
    older servers write for every track; its album's year is read where its genres are, in the
    change set's one batched pass, not asked again."""
    emu = plex_emulator
    before = expected_library(emu)
    album = next(a for a in sorted(emu.library.albums, key=int) if emu.library.albums[a].year is None
                 and any(row["album_rating_key"] == a for row in before.values()))
    edited = [k for k, row in before.items() if row["album_rating_key"] == album]
    for key in edited:
        emu.edit_track(key, title=f"Edited {key}")
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert job["updated"] == len(edited)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    asked = [p for p in emu.request_log if p.startswith("/library/metadata/") and album in p.split("?")[0]
             .removeprefix("/library/metadata/").split(",")]
    assert len(asked) == 1, asked


async def test_an_artist_rename_reaches_all_its_tracks(synced_daemon, plex_emulator):
    emu = plex_emulator
    before = expected_library(emu)
    artist = emu.library.albums[before[sorted(before, key=int)[0]]["album_rating_key"]].artist_key
    emu.edit_artist(artist, title="Björk Guðmundsdóttir")  # the tracks' and albums' updatedAt stay
    after = expected_library(emu)
    renamed = sum(1 for k in before if before[k] != after[k])
    assert renamed > 0

    job = await incremental(synced_daemon)

    assert (job["added"], job["removed"], job["updated"]) == (0, 0, renamed)
    assert_mirror(await cached_library(synced_daemon), after)


async def test_deleted_tracks_are_found_by_their_count(synced_daemon, plex_emulator):
    emu = plex_emulator
    keys = sorted(expected_library(emu), key=int)
    for key in keys[100:103]:
        emu.delete_track(key)
    emu.add_track(title="Jóga (Live at Royal Opera)", album_title="Homogenic Live", artist="Björk",
                  album_year=1998, album_genres=["Electronic", "Art Pop", "Trip Hop", "Experimental"])

    job = await incremental(synced_daemon)

    assert (job["added"], job["removed"], job["updated"]) == (1, 3, 0)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))


async def test_an_addition_plex_did_not_report_is_found_by_the_count(synced_daemon, plex_emulator):
    """A new track whose updatedAt lies before the window (Plex's clock far behind ours)."""
    emu = plex_emulator
    keys = sorted(expected_library(emu), key=int)
    old = emu.add_track(title="Backdated", album_key=expected_library(emu)[keys[6]]["album_rating_key"])
    emu.edit_track(old, updated_at=1_000_000_000)  # 2001: outside any window

    job = await incremental(synced_daemon)

    assert (job["added"], job["removed"], job["updated"]) == (1, 0, 0)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))


async def test_an_unreported_addition_in_a_new_album_is_found_by_the_key_listing(synced_daemon, plex_emulator):
    """A back-dated track of an album the cache does not know, with a deletion that cancels it in
    the count: a current server's album counts cover the albums the cache knows, so the counts
    still disagree afterwards and every track key is listed."""
    emu = plex_emulator
    keys = sorted(expected_library(emu), key=int)
    clock, emu.library.clock = emu.library.clock, lambda: 1_000_000_000  # Plex's clock in 2001
    emu.add_track(title="Backdated", album_title="An Album Nobody Reported", artist="Björk")
    emu.library.clock = clock
    emu.delete_track(keys[9])
    emu.delete_track(keys[10])

    job = await incremental(synced_daemon)

    assert (job["added"], job["removed"], job["updated"]) == (1, 2, 0)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert "reconciled with Plex's track list" in synced_daemon.log()


async def test_a_track_plex_lists_is_never_deleted_by_the_album_or_key_listing(synced_daemon, plex_emulator):
    """Whatever took a track for deleted (a deletion notified for a track Plex has again, back
    from its trash; an album an album listing missed): once Plex lists it in its album, in the
    whole key listing, or in the batched lookup of the suspects, it stays. The steps, run by the
    worker's own code against the synced cache and the emulator (the daemon idle)."""
    from mediasaged.plex.client import PlexLibrary
    from mediasaged.store import InPlaceWriter
    from mediasaged.sync.increment import ChangeSet, find_deletions, list_albums, list_every_key

    emu = plex_emulator
    lib = expected_library(emu)
    album = lib[min(lib, key=int)]["album_rating_key"]
    in_album = sorted(k for k, t in lib.items() if t["album_rating_key"] == album)
    elsewhere = sorted((k for k, t in lib.items() if t["album_rating_key"] != album), key=int)
    emu.delete_track(elsewhere[0])  # really gone
    with closing(sqlite3.connect(f"file:{synced_daemon.db}?mode=ro", uri=True)) as db:
        slot, generation = db.execute("SELECT live_slot, generation FROM sync_state").fetchone()
    with InPlaceWriter(synced_daemon.db, slot, generation) as writer:
        with PlexLibrary.connect(emu.url, emu.token, "Music", timeout=5) as plex:
            changes = ChangeSet(plex, lambda rows: rows, {})
            changes.delete([in_album[0]])
            list_albums(plex, writer.live, changes, [album], {album: len(in_album)})
            assert changes.deleted == set()

            changes.delete([in_album[0], elsewhere[1]])
            list_every_key(plex, {"page_size": 1000}, writer.live, changes)
            assert changes.deleted == {elsewhere[0]}

            # the batched lookup of the suspects is evidence too: no album needs listing then
            changes = ChangeSet(plex, lambda rows: rows, {})
            changes.delete(in_album[:2])  # two, so the count check does not cancel them against the real one
            emu.request_log.clear()
            assert find_deletions(plex, writer.live, len(lib), changes)
            assert changes.deleted == {elsewhere[0]}
            assert not [p for p in emu.request_log if "/children" in p]


def live_slot(daemon) -> str:
    with closing(sqlite3.connect(f"file:{daemon.db}?mode=ro", uri=True)) as db:
        return db.execute("SELECT live_slot FROM sync_state").fetchone()[0]


async def test_nothing_changed_keeps_the_snapshot_and_generation(synced_daemon, plex_emulator):
    before = await synced_daemon.call("library.status")
    slot = live_slot(synced_daemon)
    plex_emulator.request_log.clear()
    job = await incremental(synced_daemon)
    assert "/library" not in plex_emulator.request_log, "the counts told it: no worker connected"
    assert len(plex_emulator.request_log) <= 8, list(plex_emulator.request_log)
    assert (job["added"], job["updated"], job["removed"]) == (0, 0, 0)
    after = await synced_daemon.call("library.status")
    assert after["generation"] == before["generation"] == 1
    assert after["synced_at"] >= before["synced_at"] and after["stale"] is False
    assert live_slot(synced_daemon) == slot, "nothing to change: no new snapshot was built"
    assert_mirror(await cached_library(synced_daemon), expected_library(plex_emulator))


async def test_after_the_clock_went_back_an_incremental_sync_reads_every_track(synced_daemon, plex_emulator):
    """The last complete sync's start lies in the future: our clock went back since (one ahead at
    boot, corrected later) by an amount nothing tells, so no "changed since" time is right."""
    emu = plex_emulator
    await synced_daemon.stop()
    with closing(sqlite3.connect(synced_daemon.db)) as db, db:  # the recorded start moved as the clock's step would
        db.execute("UPDATE sync_state SET changes_through = changes_through + 7200")
    daemon = DaemonProcess(synced_daemon.dir, synced_daemon.config)
    try:
        await daemon.start()
        emu.edit_track(sorted(expected_library(emu), key=int)[0], title="Edited after the clock's step")

        job = await daemon.sync(mode="incremental")

        assert (job["state"], job["mode"]) == ("succeeded", "full"), job
        assert "the clock went back since" in daemon.log()
        assert_mirror(await cached_library(daemon), expected_library(emu))
    finally:
        await daemon.close()


async def test_auto_is_full_on_an_empty_cache_then_incremental(plex_daemon, plex_emulator):
    first = await plex_daemon.sync(mode="auto")
    assert (first["state"], first["mode"]) == ("succeeded", "full")
    plex_emulator.edit_track(sorted(expected_library(plex_emulator), key=int)[0], title="Changed")
    second = await plex_daemon.sync(mode="auto")
    assert (second["state"], second["mode"], second["updated"]) == ("succeeded", "incremental", 1)
    history = await plex_daemon.call("sync.history")
    assert [j["mode"] for j in history["jobs"]] == ["incremental", "full"]


async def test_incremental_on_an_empty_cache_runs_full(plex_daemon, plex_emulator):
    job = await plex_daemon.sync(mode="incremental")
    assert (job["state"], job["mode"]) == ("succeeded", "full")
    assert_mirror(await cached_library(plex_daemon), expected_library(plex_emulator))


async def test_a_failing_incremental_sync_keeps_the_cache(synced_daemon, plex_emulator):
    emu = plex_emulator
    before = await cached_library(synced_daemon)
    emu.set_album_genres(sorted(emu.library.albums)[0], ["Noise"])
    emu.inject_fault("500", path_contains="/children", times=10)

    job = await synced_daemon.sync(mode="incremental")

    assert job["state"] == "failed" and "500" in job["error"], job
    assert await cached_library(synced_daemon) == before
    emu.clear_faults()
    assert (await incremental(synced_daemon))["updated"] > 0


async def test_changed_live_rule_makes_the_next_sync_full(synced_daemon, plex_emulator):
    track = next(t for t in expected_library(plex_emulator).values() if not t["is_live"])
    word = re.findall(r"\w+", track["title"])[0]
    config = yaml.safe_load(synced_daemon.config.read_text())
    config["sync"]["live_keywords"] = ["live", word]
    synced_daemon.config.write_text(yaml.safe_dump(config, allow_unicode=True))
    synced_daemon.proc.send_signal(signal.SIGHUP)

    async def reloaded():
        return "reloaded config" in synced_daemon.log()
    await wait_until(reloaded)

    job = await synced_daemon.sync(mode="auto")

    assert (job["state"], job["mode"]) == ("succeeded", "full"), job
    got = await synced_daemon.call("tracks.get", rating_keys=[track["rating_key"]])
    assert got["tracks"][0]["is_live"] is True
    assert (await synced_daemon.sync(mode="auto"))["mode"] == "incremental"  # same rule again


async def test_scheduled_syncs_are_full(daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token, sync={"interval": "1s"})

    async def two_scheduled():
        jobs = [j for j in (await daemon.call("sync.history"))["jobs"] if j["trigger"] == "schedule"]
        return jobs if len(jobs) >= 2 and jobs[0]["state"] != "running" else None
    jobs = await wait_until(two_scheduled, timeout=40, interval=0.2)

    assert {(j["mode"], j["state"]) for j in jobs} == {("full", "succeeded")}


async def test_incremental_syncs_do_not_put_the_scheduled_full_sync_off(daemon_factory, plex_emulator):
    """The schedule counts from the last full sync: it is the safety net for what incremental
    syncs cannot see, so a library whose changes keep them busy still gets it."""
    daemon = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token, sync={"interval": "1h"})
    full = await daemon.sync()
    assert (full["state"], full["mode"]) == ("succeeded", "full"), full

    async def a_second_later():
        return int(time.time()) > iso_to_unix(full["started_at"])
    await wait_until(a_second_later)
    plex_emulator.edit_track(sorted(expected_library(plex_emulator), key=int)[0], title="Edited later")
    incremental = await daemon.sync(mode="incremental")
    assert (incremental["state"], incremental["updated"]) == ("succeeded", 1), incremental

    status = await daemon.call("library.status")
    assert iso_to_unix(status["next_sync_at"]) == iso_to_unix(full["started_at"]) + 3600, (status, full)


def album_counts_from(emu, server: str) -> None:
    """Serve album listings as a current server does (track counts only in each album's metadata)
    or as one of about 2012 did (counts in the listing too)."""
    emu.library.listing_leaf_counts = server == "2012"


def albums_asked(emu) -> set[str]:
    """The albums whose metadata was asked (batched ``/library/metadata/k1,k2,...``)."""
    keys = {k for p in emu.request_log if p.startswith("/library/metadata/") and "/children" not in p
            for k in p.split("?")[0].rsplit("/", 1)[1].split(",")}
    return keys & set(emu.library.albums)


@pytest.mark.parametrize("server", ["current", "2012"])
async def test_whole_album_and_artist_deletions_are_found_by_album_counts(synced_daemon, plex_emulator, server):
    emu = plex_emulator
    album_counts_from(emu, server)
    lib = expected_library(emu)
    by_album: dict[str, list[str]] = {}
    for key, t in lib.items():
        by_album.setdefault(t["album_rating_key"], []).append(key)
    albums = sorted(by_album, key=int)
    for key in by_album[albums[3]]:  # a whole album
        emu.delete_track(key)
    artist = emu.library.albums[albums[10]].artist_key
    for album in albums:  # a whole artist
        if emu.library.albums[album].artist_key == artist and album != albums[3]:
            for key in by_album[album]:
                emu.delete_track(key)
    emu.delete_track(by_album[albums[20]][0])
    emu.add_track(title="A New One", album_key=albums[30])
    emu.edit_track(by_album[albums[40]][0], title="Edited too")
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert (job["added"], job["updated"]) == (1, 1)
    assert job["removed"] == len(lib) + 1 - len(expected_library(emu))
    assert full_track_listings(emu) == 1, "only the track count: no full paging"
    children = [p for p in emu.request_log if p.endswith("/children") or "/children?" in p]
    assert children == [], "whether their cached tracks still exist decides (batched metadata): no album listed"
    # the albums' counts: from the listing (2012), else from the metadata of every album the cache knows
    if server == "2012":
        assert len(albums_asked(emu)) <= 2, "only the changed tracks' albums, for their genres"
    else:
        assert albums_asked(emu) == set(emu.library.albums)


async def test_an_addition_plex_does_not_report_is_found_by_its_albums_listing(synced_daemon, plex_emulator):
    """A track added with an updatedAt far before the window (a clock behind ours) is no "change":
    the album counts find its album, where every cached track still exists, so that album's
    own listing (/children) decides; no other album is listed."""
    emu = plex_emulator
    keys = sorted(expected_library(emu), key=int)
    album = expected_library(emu)[keys[5]]["album_rating_key"]
    hidden = emu.add_track(title="Back-dated", album_key=album)
    emu.edit_track(hidden, updated_at=1_000_000)
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert (job["added"], job["updated"], job["removed"]) == (1, 0, 0)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert full_track_listings(emu) == 2, "the track count (the daemon's check, the worker's): no paging"
    children = [p for p in emu.request_log if p.endswith("/children") or "/children?" in p]
    assert children == [f"/library/metadata/{album}/children"], children


@pytest.mark.parametrize("server", ["current", "2012"])
async def test_deletions_that_cancel_additions_in_the_count(synced_daemon, plex_emulator, server):
    emu = plex_emulator
    album_counts_from(emu, server)
    keys = sorted(expected_library(emu), key=int)
    album = expected_library(emu)[keys[50]]["album_rating_key"]
    emu.delete_track(keys[60])
    emu.delete_track(keys[61])
    emu.add_track(title="In", album_key=album)
    emu.add_track(title="Also in", album_key=album)
    emu.request_log.clear()

    job = await incremental(synced_daemon)

    assert (job["added"], job["removed"]) == (2, 2)
    assert_mirror(await cached_library(synced_daemon), expected_library(emu))
    assert full_track_listings(emu) == 1


async def test_a_polling_reader_sees_only_whole_generations(synced_daemon, plex_emulator):
    emu = plex_emulator
    daemon = synced_daemon
    totals: dict[int, set[int]] = {}
    mismatches: list = []
    stop = asyncio.Event()

    async def poll():
        while not stop.is_set():
            got = await daemon.call("tracks.query", limit=0)
            totals.setdefault(got["generation"], set()).add(got["total"])
            stats = await daemon.call("library.stats")
            status = await daemon.call("library.status")
            if stats["generation"] == status["generation"] and stats["track_count"] != status["track_count"]:
                mismatches.append((stats, status))
    poller = asyncio.create_task(poll())
    keys = sorted(expected_library(emu), key=int)
    expected_totals = {len(keys)}
    for round_ in range(3):
        for k in keys[100 + 10 * round_: 103 + 10 * round_]:
            emu.delete_track(k)
        for i in range(5):
            emu.add_track(title=f"Round {round_} song {i}", album_key=expected_library(emu)[keys[0]]["album_rating_key"])
        emu.edit_track(keys[round_], title=f"Edit {round_}")
        await incremental(daemon)
        expected_totals.add(len(expected_library(emu)))
    stop.set()
    await poller
    assert all(len(v) == 1 for v in totals.values()), totals
    assert {t for v in totals.values() for t in v} <= expected_totals
    assert not mismatches
    assert_mirror(await cached_library(daemon), expected_library(emu))
