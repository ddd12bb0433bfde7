"""The sync against REAL Plex answers (tests/fixtures/plex), with plexapi as the oracle.

The emulator serves the captured elements as they are (tests/emulator/corpus.py); the
expected tracks come from plexapi reading the same server over HTTP (tests/plex_oracle.py),
never from the emulator's model or generator.
"""
from __future__ import annotations

from tests.emulator.fixtures import CORPUS_TOKEN as TOKEN
from tests.mirror import assert_mirror, cached_library, plexapi_library


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
