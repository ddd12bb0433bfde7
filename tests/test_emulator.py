"""The Plex emulator itself: notifications, CLI, auth, determinism, mutations."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp
import pytest
import requests

from tests.emulator import PlexEmulator, generate_library

pytestmark = pytest.mark.timeout(30)
TOKEN = "test-token"
ROOT = Path(__file__).resolve().parent.parent


def get(emu, path, token=TOKEN, **kw):
    headers = {"X-Plex-Token": token} if token else {}
    return requests.get(emu.url + path, headers=headers, timeout=5, **kw)


def test_generator_is_deterministic_and_exact():
    a, b = generate_library(777, seed=5), generate_library(777, seed=5)
    assert len(a.tracks) == 777
    assert a.expected_tracks() == b.expected_tracks()
    assert generate_library(777, seed=6).expected_tracks() != a.expected_tracks()


def test_kept_orders_and_the_updated_index_equal_a_fresh_sort():
    """The emulator keeps its listing order and updatedAt index through single-track changes
    instead of re-sorting (seconds at a million tracks): they must equal a fresh computation."""
    lib = generate_library(400, seed=3)
    assert lib.changed_tracks(0) == lib.track_order()
    keys = sorted(lib.tracks, key=int)
    albums = sorted(lib.albums, key=int)
    held = lib.track_order()
    lib.edit_track(keys[5], title="Edited", updated_at=2_000_000_000)
    lib.edit_track(keys[6], index=99)  # moves within its album
    lib.delete_track(keys[7])
    added = lib.add_track(title="Added", album_key=albums[3])
    lib.edit_track(keys[8], user_rating=4.0, updated_at=1_000)
    assert held is not lib.track_order() and len(held) == 400  # a held order is never changed
    fresh = sorted(lib.tracks, key=lib._track_key)
    assert lib.track_order() == fresh
    for since in (0, 1_000, 1_400_000_000, 1_500_000_000, 2_000_000_000, 2_000_000_001):
        assert lib.changed_tracks(since) == [k for k in fresh if lib.tracks[k].updated_at >= since]
    assert keys[7] not in lib.changed_tracks(0) and added in lib.changed_tracks(0)
    artist = lib.albums[albums[5]].artist_key
    lib.edit_album(albums[4], genres=["Drone"])
    lib.edit_artist(artist, title="Renamed")
    lib.add_track(title="New album", album_title="Brand new", artist="Nobody Yet")
    for since in (0, 1_400_000_000, lib.albums[albums[4]].updated_at):
        assert lib.changed_albums(since) == [k for k in lib.album_order() if lib.albums[k].updated_at >= since]
        assert lib.changed_artists(since) == [k for k in lib.artist_order() if lib.artists[k].updated_at >= since]
    assert albums[4] in lib.changed_albums(lib.albums[albums[4]].updated_at)
    assert artist in lib.changed_artists(lib.artists[artist].updated_at)
    lib.strict_since_filters = True
    assert lib.changed_tracks(2_000_000_000) == []


def test_albums_of_a_genre_come_from_an_index_that_follows_changes():
    """A genre's albums (the sync asks every genre's, page by page) come from an index built once
    per library state; it must equal filtering every album, also after album and track changes."""
    lib = generate_library(600, seed=4)

    def fresh(names):
        return [k for k in lib.album_order() if not set(names).isdisjoint(lib.albums[k].genres)]

    def check():
        for gid, name in lib.genres_in_use():
            assert lib.albums_of_genres({name}) == fresh({name})
        two = [name for _, name in lib.genres_in_use()[:2]]
        assert lib.albums_of_genres(set(two)) == fresh(two)
        assert lib.albums_of_genres({"No Such Genre"}) == []

    check()
    albums = sorted(lib.albums, key=int)
    lib.edit_album(albums[0], genres=["Drone", lib.albums[albums[1]].genres[0]])
    check()
    lib.add_track(title="New album", album_title="Brand new", artist="Nobody Yet", album_genres=["Drone"])
    check()
    lib.edit_album(albums[2], title="Renamed")  # moves in the album order
    check()
    lib.delete_track(next(iter(lib.album_tracks[albums[3]])))
    check()


def test_ratings_and_plays_move_no_updated_at_and_have_listings_of_their_own(plex_emulator):
    """As real servers do (tests/fixtures/plex/SOURCES.md): a rating sets userRating and
    lastRatedAt, a play viewCount and lastViewedAt; updatedAt stays, and no timeline entry is
    sent. "Rated since" and "played since" listings find them, from an index that follows them."""
    from lxml import etree
    emu, lib = plex_emulator, plex_emulator.library
    keys = sorted(lib.tracks, key=int)
    entries: list = []
    lib.listeners.append(entries.extend)
    stamps = {k: lib.tracks[k].updated_at for k in keys}
    assert lib.tracks_timed_since("last_rated_at", 0) == []  # built before the marks: it must follow them
    rated = emu.rate_track(keys[3], 6.0)
    emu.play_track(keys[4])
    played = emu.play_track(keys[4])
    emu.rate_track(keys[5], None)
    assert {k: lib.tracks[k].updated_at for k in keys} == stamps and entries == []

    def listed(field: str, since: int) -> dict[str, dict]:
        body = get(emu, f"/library/sections/3/all?type=10&track.{field}%3E%3E={since}").content
        return {t.get("ratingKey"): dict(t.attrib) for t in etree.fromstring(body)}

    rated_since = listed("lastRatedAt", rated)
    assert sorted(rated_since, key=int) == [keys[3], keys[5]]
    assert rated_since[keys[3]]["userRating"] == "6.0" and rated_since[keys[3]]["lastRatedAt"] == str(rated)
    assert "userRating" not in rated_since[keys[5]]
    played_since = listed("lastViewedAt", played)
    assert list(played_since) == [keys[4]] and played_since[keys[4]]["lastViewedAt"] == str(played)
    assert played_since[keys[4]]["viewCount"] == str(lib.tracks[keys[4]].view_count)
    assert listed("updatedAt", max(stamps.values()) + 1) == {}
    lib.rated_filter = False  # a server from before lastRatedAt
    assert get(emu, f"/library/sections/3/all?type=10&track.lastRatedAt%3E%3E={rated}").status_code == 400


def test_auth_and_content_type(plex_emulator):
    assert get(plex_emulator, "/", token=None).status_code == 401
    assert get(plex_emulator, "/", token="nope").status_code == 401
    r = get(plex_emulator, "/", token=None, params={"X-Plex-Token": TOKEN})
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/xml;charset=utf-8"
    assert 'machineIdentifier="' in r.text
    assert get(plex_emulator, "/identity", token=None).status_code == 200
    assert get(plex_emulator, "/library").status_code == 200
    assert get(plex_emulator, "/library/metadata/999999999").status_code == 404


def test_album_listing_truncates_genres_metadata_does_not(plex_emulator):
    from lxml import etree
    lib = plex_emulator.library
    key = next(k for k, a in lib.albums.items() if len(a.genres) >= 3)
    listing = etree.fromstring(get(plex_emulator, "/library/sections/3/all?type=9").content)
    el = next(d for d in listing if d.get("ratingKey") == key)
    assert len(el.findall("Genre")) == 2
    full = etree.fromstring(get(plex_emulator, f"/library/metadata/{key}").content)
    assert [g.get("tag") for g in full[0].findall("Genre")] == lib.albums[key].genres
    kids = etree.fromstring(get(plex_emulator, f"/library/metadata/{key}/children").content)
    assert sorted(t.get("ratingKey") for t in kids) == sorted(lib.album_tracks[key])
    assert all(t.get("year") is None and not t.findall("Genre") for t in kids)


def test_album_edit_bumps_album_not_tracks(plex_emulator):
    lib = plex_emulator.library
    key = next(iter(lib.albums))
    before = {rk: lib.tracks[rk].updated_at for rk in lib.album_tracks[key]}
    old = lib.albums[key].updated_at
    plex_emulator.set_album_genres(key, ["Jazz"])
    assert lib.albums[key].updated_at > old
    assert {rk: lib.tracks[rk].updated_at for rk in lib.album_tracks[key]} == before
    assert all(lib.expected_track(rk)["genres"] == ["Jazz"] for rk in before)


async def test_websocket_timeline_frames(plex_emulator):
    emu = plex_emulator
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await s.ws_connect(emu.url + "/:/websockets/notifications")
        async with s.ws_connect(emu.ws_url) as ws:
            album = next(iter(emu.library.albums))
            # mutations from another thread, like a test driving Plex while the daemon listens
            result = {}
            t = threading.Thread(target=lambda: result.update(
                rk=emu.add_track(title="Nüe Song", album_key=album)))
            t.start()
            t.join()
            frames = []
            while len([f for f in frames if f["type"] == "timeline"]) < 2:
                frames.append(json.loads((await ws.receive(timeout=5)).data)["NotificationContainer"])
            timeline = [e for f in frames if f["type"] == "timeline" for e in f["TimelineEntry"]]
            assert [(e["itemID"], e["type"], e["state"]) for e in timeline] == [
                (result["rk"], 10, 0), (result["rk"], 10, 5)]
            assert timeline[0]["sectionID"] == "3"
            assert timeline[0]["identifier"] == "com.plexapp.plugins.library"
            emu.delete_track(result["rk"])
            frame = json.loads((await ws.receive(timeout=5)).data)["NotificationContainer"]
            assert frame["TimelineEntry"][0]["state"] == 9
            emu.set_album_genres(album, ["Rock"])
            frame = json.loads((await ws.receive(timeout=5)).data)["NotificationContainer"]
            assert [(e["itemID"], e["type"], e["state"]) for e in frame["TimelineEntry"]] == [
                (album, 9, 5)]


def test_plexapi_alert_listener_and_drop(plex_emulator):
    from plexapi.server import PlexServer
    got: list[dict] = []
    arrived = threading.Event()

    def on_alert(data):
        if data.get("type") == "timeline":
            got.append(data)
            arrived.set()

    listener = PlexServer(plex_emulator.url, TOKEN, timeout=5).startAlertListener(on_alert)
    try:
        assert plex_emulator.wait_for_ws_clients(1, timeout=10)
        rk = next(iter(plex_emulator.library.tracks))
        plex_emulator.edit_track(rk, view_count=42)
        assert arrived.wait(10)
        assert got[0]["TimelineEntry"][0]["itemID"] == rk
        plex_emulator.drop_websockets()  # the listener does not reconnect: its thread ends
        listener.join(10)
        assert not listener.is_alive()
    finally:
        listener.stop()


def test_cli_prints_url_and_token_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--tracks", "300",
                             "--seed", "2", "--token", "cli-token"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        url, token = proc.stdout.readline().split()
        assert token == "cli-token" and url.startswith("http://127.0.0.1:")
        r = requests.get(url + "/library/sections/3/all?type=10&X-Plex-Container-Size=0",
                         headers={"X-Plex-Token": token}, timeout=5)
        assert 'totalSize="300"' in r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_emulator_restart_on_same_port():
    lib = generate_library(50, seed=1)
    with PlexEmulator(lib, token=TOKEN) as emu:
        port = emu.port
    with PlexEmulator(lib, token=TOKEN, port=port) as emu2:
        assert get(emu2, "/identity", token=None).status_code == 200


async def test_notification_helpers_follow_the_emulator(plex_emulator):
    from mediasaged.plex.frames import notifications_url, timeline_entries
    emu = plex_emulator
    url = notifications_url(emu.url, TOKEN)
    assert url == emu.ws_url
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        rk = next(iter(emu.library.tracks))
        emu.edit_track(rk, title="x")
        frame = (await ws.receive(timeout=5)).data
        entries = timeline_entries(frame, section_id="3")
        assert [(e["item_id"], e["type"], e["state"]) for e in entries] == [(rk, 10, 5)]
        assert entries[0]["updated_at"] == emu.library.tracks[rk].updated_at
    assert timeline_entries(frame, section_id="1") == []
    assert timeline_entries('{"NotificationContainer": {"type": "activity"}}') == []
    assert timeline_entries("not json") == []
