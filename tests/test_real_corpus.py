"""The sync against REAL Plex answers (tests/fixtures/plex), with plexapi as the oracle.

The emulator serves the captured elements as they are (tests/emulator/corpus.py); the
expected tracks come from plexapi reading the same server over HTTP (tests/plex_oracle.py),
never from the emulator's model or generator.
"""
from __future__ import annotations

import asyncio

from tests.emulator.fixtures import CORPUS_TOKEN as TOKEN
from tests.emulator.model import MUSIC_SECTION_ID
from tests.mirror import assert_mirror, cached_library, plexapi_library
from tests.test_plex_events import finished_event_job


def test_plexapi_reads_the_corpus_over_http(corpus):
    """plexapi builds every captured track from the emulator's answers."""
    tracks = plexapi_library(corpus)
    assert set(tracks) == set(corpus.library.tracks)
    assert tracks["3609"]["artist"] == "木小雅" and tracks["3609"]["user_rating"] == 10.0
    assert tracks["684925"]["genres"] == ["Hip-Hop"]  # the track's own Genre
    assert tracks["23890"]["disc_number"] is None  # no parentIndex in the capture


def test_corpus_is_real_and_varied(corpus):
    """The corpus holds the shapes the issue names (so the comparison below means something)."""
    lib = corpus.library
    raw = {k: v.decode() for k, v in lib.raw_xml.items() if k in lib.tracks}
    assert len(raw) >= 12
    assert any("parentYear" not in x for x in raw.values()), "no track without parentYear"
    assert any("originalTitle" in x for x in raw.values())
    assert any("updatedAt" not in x for x in raw.values()), "no track without updatedAt"
    assert any("<Mood" in x for x in raw.values()) and any("<Stream" in x for x in raw.values())
    assert any('userRating="10"' in x for x in raw.values())
    assert any(not x.isascii() for x in raw.values())


async def test_full_sync_of_real_answers_equals_plexapi(corpus, daemon_factory):
    expected = plexapi_library(corpus)
    daemon = await daemon_factory(plex_url=corpus.url, token=TOKEN,
                                  sync={"page_size": 5})
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert job["skipped"] == {}
    assert_mirror(await cached_library(daemon), expected)
    years = {k: t["year"] for k, t in expected.items()}
    assert years["3741"] == 2006 and years["158"] == 2013  # no parentYear: the album's year


async def test_notified_items_of_real_answers_are_read_as_the_full_sync_reads_them(corpus, daemon_factory):
    """The daemon reads notified items with its own small parser (plex/items.py, no lxml), not
    the sync worker's. Every captured track notified as edited: each fetched again from
    ``/library/metadata/{keys}`` must come out as the full sync wrote it (nothing updated), and
    the cache must still be what plexapi reads."""
    expected = plexapi_library(corpus)
    daemon = await daemon_factory(plex_url=corpus.url, token=TOKEN, sync={"page_size": 5, "plex_events": True})
    assert (await daemon.sync())["state"] == "succeeded"
    assert await asyncio.to_thread(corpus.wait_for_ws_clients, 1, 20)
    corpus.request_log.clear()
    keys = sorted(corpus.library.tracks)
    corpus.send_notification({"type": "timeline", "size": len(keys), "TimelineEntry": [
        {"identifier": "com.plexapp.plugins.library", "sectionID": MUSIC_SECTION_ID, "itemID": key,
         "type": 10, "state": 5} for key in keys]})

    job = await finished_event_job(daemon)

    assert (job["state"], job["added"], job["updated"], job["removed"]) == ("succeeded", 0, 0, 0), (job, daemon.log())
    assert not [p for p in corpus.request_log if "/all" in p], "read item by item, not by a fallback"
    assert_mirror(await cached_library(daemon), expected)
