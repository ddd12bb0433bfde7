"""How the sync reads odd answers from real Plex servers (issue: trust no count, tolerate
what plexapi tolerates, never lose the cache to an odd answer).

The library is the real-response corpus (tests/fixtures/plex); the odd answers are real
ones, or real ones changed the way the cited bug reports show (a raw control character,
a missing totalSize, a proxy's HTML page). Expected tracks come from plexapi reading the
same server (tests/plex_oracle.py).
"""
from __future__ import annotations

import re

import pytest
from lxml import etree

from mediasaged.plex.body import diagnose
from mediasaged.plex.xml import strict_parser
from tests.emulator.fixtures import CORPUS_TOKEN as TOKEN
from tests.mirror import assert_mirror, cached_library, plexapi_library

PAGE = 5  # the corpus (21 tracks) in pages of 5


@pytest.fixture
async def synced(corpus, daemon_factory):
    """A daemon whose cache holds the corpus (one good full sync), and that cache."""
    daemon = await daemon_factory(plex_url=corpus.url, token=TOKEN, sync={"page_size": PAGE})
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    return daemon, await cached_library(daemon)


async def failed_sync_keeps_cache(daemon, before: dict, *words: str) -> dict:
    status = await daemon.call("library.status")
    job = await daemon.sync()
    assert job["state"] == "failed", job
    for word in words:
        assert word in job["error"], (word, job["error"])
    assert TOKEN not in job["error"] and TOKEN not in daemon.log()
    assert await cached_library(daemon) == before
    after = await daemon.call("library.status")
    assert (after["track_count"], after["generation"]) == (status["track_count"], status["generation"])
    assert after["error"] == job["error"]
    return job


def listing_page(body: bytes) -> bool:
    return b"<Track" in body


def without_total(body: bytes) -> bytes:
    return re.sub(rb'\stotalSize="\d+"', b"", body, count=1)


# ---- totalSize ---------------------------------------------------------------------------

async def test_pages_without_totalsize_are_read_to_the_last_short_page(corpus, synced):
    """Plex promises totalSize only with container start/size; pages without it mean "unknown"."""
    daemon, _ = synced
    expected = plexapi_library(corpus)
    corpus.inject_fault("rewrite", path_contains="type=10", times=None,
                        rewrite=lambda b: without_total(b) if listing_page(b) else b)
    corpus.library.delete_track("218551")  # so the resync has something to do
    del expected["218551"]
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert (job["removed"], job["skipped"]) == (1, {})
    assert_mirror(await cached_library(daemon), expected)


async def test_no_totalsize_anywhere_fails_and_never_empties_the_cache(corpus, synced):
    """The old bug: no totalSize read as 0 tracks, "+0 ~0 -18", an empty library published."""
    daemon, before = synced
    corpus.inject_fault("rewrite", path_contains="type=10", times=None, rewrite=without_total)
    await failed_sync_keeps_cache(daemon, before, "totalSize", "cannot be verified")


async def test_an_empty_listing_without_totalsize_fails_too(corpus, synced):
    daemon, before = synced
    corpus.inject_fault("rewrite", path_contains="type=10", times=None,
                        rewrite=lambda b: b'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer size="0"/>')
    await failed_sync_keeps_cache(daemon, before, "totalSize")


async def test_a_section_plex_says_is_empty_is_mirrored_empty(corpus, synced):
    daemon, before = synced
    for key in list(corpus.library.tracks):
        corpus.library.delete_track(key)
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert (job["added"], job["updated"], job["removed"]) == (0, 0, len(before))
    assert (await daemon.call("library.status"))["track_count"] == 0


async def test_totalsize_that_changes_mid_sync_fails_and_keeps_the_cache(corpus, synced):
    daemon, before = synced

    def grow(body: bytes) -> bytes:
        return re.sub(rb'totalSize="(\d+)"', lambda m: b'totalSize="%d"' % (int(m.group(1)) + 1), body, count=1)

    corpus.inject_fault("rewrite", page=2, times=None, rewrite=grow)
    n = len(before)
    job = await failed_sync_keeps_cache(daemon, before, "count changed", f"{n} before", f"{n + 1} on page 3")
    assert "page 3" in job["error"]


async def test_a_listing_shorter_than_plex_says_fails(corpus, synced):
    """Every page claims one track more than come: the listing does not add up."""
    daemon, before = synced
    n = len(before)
    corpus.inject_fault("rewrite", path_contains="type=10", times=None,
                        rewrite=lambda b: b.replace(b'totalSize="%d"' % n, b'totalSize="%d"' % (n + 1)))
    await failed_sync_keeps_cache(daemon, before, f"Plex reports {n + 1}", f"read {n} tracks")


# ---- what plexapi tolerates ----------------------------------------------------------------

async def test_a_raw_control_character_in_a_title_is_cleaned_as_plexapi_cleans_it(corpus, synced):
    """PlexTraktSync #2331 / python-plexapi #1450: a raw \\x04 fails a strict parser."""
    daemon, _ = synced
    corpus.inject_fault("rewrite", path_contains="/library", times=None,
                        rewrite=lambda b: b.replace(b'title="Dancing Queen"', b'title="Dancing\x04 Queen"'))
    expected = plexapi_library(corpus)  # plexapi over the same answers
    assert expected["218550"]["title"] == "Dancing Queen"
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert_mirror(await cached_library(daemon), expected)
    assert "XML-illegal control character" in daemon.log()


@pytest.mark.parametrize("again_at", [7, 17], ids=["next-page", "pages-apart"])
async def test_keyless_and_duplicate_items_are_skipped_counted_and_named(corpus, daemon_factory, again_at):
    lib = corpus.library
    lib.raw_xml["9914"] = re.sub(rb' ratingKey="9914"', b"", lib.raw_xml["9914"])
    order = list(lib.track_order())
    lib._order = order[:again_at] + [order[2]] + order[again_at:]  # Plex lists one track twice (totalSize +1)
    expected = plexapi_library(corpus)
    assert "9914" not in expected and len(expected) == len(lib.tracks) - 1
    daemon = await daemon_factory(plex_url=corpus.url, token=TOKEN, sync={"page_size": PAGE})
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert job["skipped"] == {"no_rating_key": 1, "duplicate_key": 1}
    assert (await daemon.call("sync.status", job_id=job["job_id"]))["skipped"] == job["skipped"]
    history = (await daemon.call("sync.history", limit=1))["jobs"][0]
    assert history["skipped"] == job["skipped"]
    assert_mirror(await cached_library(daemon), expected)
    log = daemon.log()
    assert "As the Time Passes By" in log and "without a ratingKey" in log
    if again_at < 2 * PAGE:  # the reader sees it (the page before had it); further on, the slot count does
        assert f"ratingKey {order[2]}" in log and "listed again" in log
    else:
        assert "more than once" in log
    assert TOKEN not in log


# ---- answers that are not Plex XML -----------------------------------------------------------

async def test_an_html_page_with_status_200_fails_naming_page_and_offset(corpus, synced):
    daemon, before = synced
    login = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>proxy login</body></html>"
    corpus.inject_fault("rewrite", page=1, times=None, content_type="text/html; charset=utf-8",
                        rewrite=lambda b: login)
    await failed_sync_keeps_cache(daemon, before, "HTML page", "page 2", "offset 5")


async def test_non_utf8_bytes_fail_naming_page_offset_and_byte(corpus, synced):
    daemon, before = synced

    def latin1(body: bytes) -> bytes:
        return body.replace("木小雅".encode(), "Äbba".encode("latin-1")).replace(
            "Télé".encode(), "Télé".encode("latin-1"))

    corpus.inject_fault("rewrite", path_contains="type=10", times=None,
                        rewrite=lambda b: latin1(b) if "木小雅".encode() in b else b)
    job = await failed_sync_keeps_cache(daemon, before, "not UTF-8", "offset", "byte 0xc4")
    assert re.search(r"page \d", job["error"]), job["error"]


async def test_a_truncated_page_fails_naming_page_and_offset(corpus, synced):
    daemon, before = synced
    corpus.inject_fault("truncate", page=2, times=None)
    await failed_sync_keeps_cache(daemon, before, "incomplete", "truncated", "page 3", "offset 10")


def cut_after(name: str, extra: int):
    """A rewrite that ends an answer holding ``name`` ``extra`` bytes after it (the rest unchanged)."""
    def cut(body: bytes) -> bytes:
        at = body.find(name.encode())
        return body if at < 0 else body[:at + len(name.encode()) + extra]
    return cut


@pytest.mark.parametrize("extra", [2, -1], ids=["in a value after non-ASCII text", "inside a character"])
async def test_a_page_cut_in_a_line_of_non_ascii_names_fails_as_truncated(corpus, synced, extra):
    """lxml counts an error's column in characters, a line of 木小雅 holds more bytes: such a cut
    read as "malformed XML" at a wrong byte; one inside a character as "not UTF-8"."""
    daemon, before = synced
    corpus.inject_fault("rewrite", path_contains="type=10", times=None, rewrite=cut_after("木小雅", extra))
    job = await failed_sync_keeps_cache(daemon, before, "incomplete", "truncated")
    assert re.search(r"page \d", job["error"]), job["error"]


def test_malformed_xml_after_non_ascii_text_names_its_byte():
    line = '<Track grandparentTitle="坂本龍一" originalTitle="Björk" ratingKey="2" ti<tle="x"/>'
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer size="1">\n' + line
            + "\n</MediaContainer>\n").encode()
    with pytest.raises(etree.XMLSyntaxError) as caught:
        etree.fromstring(body, strict_parser())
    assert diagnose(body, "text/xml;charset=utf-8", caught.value).startswith(
        f"malformed XML at byte {body.index(b'<tle')} ")


async def test_a_truncated_page_that_comes_right_on_retry_syncs_exactly(corpus, synced):
    daemon, _ = synced
    expected = plexapi_library(corpus)
    corpus.inject_fault("truncate", page=1, times=1)
    job = await daemon.sync()
    assert job["state"] == "succeeded", (job, daemon.log())
    assert_mirror(await cached_library(daemon), expected)


def test_the_characters_we_strip_are_exactly_plexapis():
    from plexapi.utils import cleanXMLString

    from mediasaged.plex.body import ILLEGAL_XML_CHARS
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert ILLEGAL_XML_CHARS.sub("", every) == cleanXMLString(every)
    assert len(every) - len(cleanXMLString(every)) > 60  # it does strip something
