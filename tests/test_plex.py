"""The plex package (client, xml, retry) against the Plex emulator: real plexapi, real HTTP, no mocks."""
from __future__ import annotations

import email.utils
import re
import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests

from mediasaged.plex.client import PlexLibrary
from mediasaged.plex.errors import (PlexBadResponse, PlexError, PlexHTTPError, PlexUnauthorized, PlexUnreachable,
                                    SectionNotFound)
from mediasaged.plex.ledger import ShrinkWatch
from mediasaged.plex.redact import safe_url
from mediasaged.plex.retry import Backoff, retry_after
from mediasaged.plex.xml import TrackPageParser

pytestmark = pytest.mark.timeout(30)
TOKEN = "test-token"


def connect(emu, **kw) -> PlexLibrary:
    kw.setdefault("timeout", 5)
    kw.setdefault("backoff", 0.01)
    return PlexLibrary.connect(emu.url, emu.token, kw.pop("library", "Music"), **kw)


def all_rows(p: PlexLibrary, page_size: int = 200, **kw) -> list[dict]:
    return [r for page in p.iter_track_pages(page_size, **kw) for r in page]


def with_genres(p: PlexLibrary, rows: list[dict]) -> dict[str, dict]:
    genres = p.album_genres()
    return {r["rating_key"]: {**r, "genres": genres.get(r["album_rating_key"], [])} for r in rows}


def assert_token_free(exc: BaseException, token: str = TOKEN) -> None:
    for text in (str(exc), repr(exc), " ".join(map(str, exc.args))):
        assert token not in text


def expect_error(cls, fn, token: str = TOKEN) -> PlexError:
    with pytest.raises(cls) as ei:
        fn()
    assert_token_free(ei.value, token)
    return ei.value


# ---- connect and section lookup ------------------------------------------------------------

def test_connect_reads_identity_and_section(plex_emulator):
    with connect(plex_emulator, library="  mUsIc ") as p:
        lib = plex_emulator.library
        assert p.server_id == lib.machine_identifier
        assert p.server_name == lib.friendly_name
        assert p.section_id == "3" and p.section_title == "Music"
        assert p.track_count() == 1500


def test_missing_section_lists_existing_ones(plex_emulator):
    e = expect_error(SectionNotFound, lambda: connect(plex_emulator, library="Musik"))
    assert "'Musik'" in str(e) and "'Music' (music)" in str(e) and "'Movies' (movie)" in str(e)
    e = expect_error(SectionNotFound, lambda: connect(plex_emulator, library="movies"))
    assert "not a music section" in str(e)


def test_bad_token_is_unauthorized_without_token(plex_emulator):
    secret = "wrong-secret-token-123"
    e = expect_error(PlexUnauthorized, lambda: PlexLibrary.connect(
        plex_emulator.url, secret, "Music", timeout=5), token=secret)
    assert "401" in str(e) and plex_emulator.url in str(e)


def test_missing_token_says_so(plex_emulator):
    e = expect_error(PlexUnauthorized, lambda: PlexLibrary.connect(
        plex_emulator.url, "", "Music", timeout=5))
    assert "none is configured" in str(e)


def test_unreachable_names_the_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    e = expect_error(PlexUnreachable, lambda: PlexLibrary.connect(url, TOKEN, "Music", timeout=2))
    assert url in str(e) and "refused" in str(e)


@pytest.mark.parametrize("bypass", [False, True])
def test_the_proxy_variables_are_honoured_on_every_connection(plex_emulator, monkeypatch, bypass):
    """The session reads the environment once (plex/transport.py, ``plex_session``; the urllib3 pool of
    the requests after connecting takes its settings), not for each request as requests does: ``http_proxy``
    must still take the requests there, and ``no_proxy`` must still exempt Plex's host."""
    with socket.socket() as s:  # a proxy nobody runs
        s.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("http_proxy", proxy)
    monkeypatch.setenv("no_proxy", "127.0.0.1" if bypass else "")
    if not bypass:
        e = expect_error(PlexUnreachable, lambda: connect(plex_emulator, retries=0))
        assert "refused" in str(e)
        return
    with connect(plex_emulator, concurrent_pages=3) as p:
        p.COUNT_BATCH = 10
        keys = sorted(plex_emulator.library.tracks, key=int)[:40]
        assert sorted(p.tracks_present(keys), key=int) == keys
        monkeypatch.setenv("no_proxy", "")  # read once: later requests keep what the session read
        assert p.track_count() == len(plex_emulator.library.tracks)


def test_https_to_a_plain_http_server(plex_emulator):
    url = plex_emulator.url.replace("http://", "https://")
    e = expect_error(PlexUnreachable, lambda: PlexLibrary.connect(
        url, TOKEN, "Music", timeout=2, retries=0, verify_ssl=False))
    assert url in str(e) and "TLS" in str(e)


def test_not_a_url():
    expect_error(PlexError, lambda: PlexLibrary.connect("localhost:32400", TOKEN, "Music", timeout=1))


def test_server_identity_change_is_visible(plex_emulator):
    plex_emulator.set_machine_identifier("new-machine-id")
    with connect(plex_emulator) as p:
        assert p.server_id == "new-machine-id"


# ---- full paging equals ground truth -------------------------------------------------------

@pytest.mark.parametrize("page_size", [200, 337, 5000])
def test_full_paging_equals_ground_truth(plex_emulator, page_size):
    expected = plex_emulator.library.expected_tracks()
    with connect(plex_emulator) as p:
        rows = all_rows(p, page_size)
        assert len(rows) == len(expected) == 1500
        got = with_genres(p, rows)
    assert set(got) == set(expected)
    for rk, exp in expected.items():
        assert got[rk] == exp, rk
    assert set(rows[0]) == set(expected[rows[0]["rating_key"]]) - {"genres"}


def test_library_has_the_hard_cases(plex_emulator):
    exp = plex_emulator.library.expected_tracks().values()
    assert any(len(t["genres"]) >= 3 for t in exp)            # more than listings show
    assert any(t["genres"] == [] for t in exp)
    assert any(t["year"] is None for t in exp)
    assert any(t["user_rating"] is None for t in exp)
    assert any(t["user_rating"] is not None and t["user_rating"] % 2 == 1 for t in exp)
    assert any(t["artist"] != t["album_artist"] for t in exp)  # compilations / feat.
    assert any((t["disc_number"] or 0) >= 2 for t in exp)
    assert any(t["view_count"] == 0 for t in exp) and any(t["view_count"] > 0 for t in exp)
    albums = {t["album"] for t in exp}
    for pattern in (r"\(Live\)$", r"^Live at ", r"Unplugged", r" in Concert$", r"^Bootleg ",
                    r"^\d{4}-\d\d-\d\d Concert$", r"^Live \d\d\.\d\d\.\d{4}$"):
        assert any(re.search(pattern, a) for a in albums), pattern


def test_non_ascii_intact(plex_emulator):
    with connect(plex_emulator) as p:
        rows = all_rows(p, 500)
        genres = p.album_genres()
    artists = {r["album_artist"] for r in rows}
    assert {"Björk", "坂本龍一", "Sigur Rós", "Beyoncé"} <= artists
    all_genres = {g for gs in genres.values() for g in gs}
    assert any(not g.isascii() for g in all_genres)


@pytest.mark.parametrize("strategy", ["auto", "genre_filter", "listing", "metadata", "per_album"])
def test_album_genre_strategies_agree(plex_emulator, strategy):
    want = {k: v for k, v in plex_emulator.library.expected_album_genres().items() if v}
    assert any(len(v) > 2 for v in want.values())
    with connect(plex_emulator) as p:
        assert p.album_genres(strategy=strategy) == want


def test_short_pages_skip_nothing(plex_emulator):
    plex_emulator.inject_fault("short", page=2, times=None)
    with connect(plex_emulator) as p:
        rows = all_rows(p, 200)
    assert sorted(r["rating_key"] for r in rows) == sorted(plex_emulator.library.tracks)


@pytest.mark.parametrize("concurrent", [1, 3])
def test_concurrent_pages_with_short_and_failing_pages_skip_nothing(plex_emulator, concurrent):
    plex_emulator.inject_fault("short", page=2, times=None)
    plex_emulator.inject_fault("500", page=4, times=1)
    with connect(plex_emulator, concurrent_pages=concurrent, retries=2) as p:
        p.track_count()
        rows = all_rows(p, 200)
    assert sorted(r["rating_key"] for r in rows) == sorted(plex_emulator.library.tracks)


@pytest.mark.parametrize("concurrent", [1, 3])
def test_album_pages_and_album_tracks_come_concurrently_in_order(plex_emulator, concurrent):
    """Album listings and /children requests follow sync.concurrent_pages as track pages do:
    nothing skipped (a short page, a failing one) and answers in the order asked."""
    lib = plex_emulator.library
    faults = [plex_emulator.inject_fault("short", page=2, libtype=9, times=None),
              plex_emulator.inject_fault("500", page=4, libtype=9, times=1),
              plex_emulator.inject_fault("500", path_contains="/children", times=1)]
    albums = sorted(lib.albums, key=int)[:12]
    lib.listing_leaf_counts = True  # the counts come from the listing's pages (servers of about 2012)
    with connect(plex_emulator, concurrent_pages=concurrent, retries=2) as p:
        p.GENRE_PAGE = 20
        counts = p.album_leaf_counts()
        tracks = list(p.tracks_of_albums(albums))
        genres = p.genres_of_albums(albums)
    assert counts == {k: len(v) for k, v in lib.album_tracks.items()}
    assert [k for k, _ in tracks] == albums
    assert all(sorted(r["rating_key"] for r in rows) == sorted(lib.album_tracks[k]) for k, rows in tracks)
    assert genres == {k: lib.expected_album_genres()[k] for k in albums}
    assert all(f.fired for f in faults)


@pytest.mark.parametrize("counts_listed", [False, True])  # a current server; one of about 2012
def test_album_track_counts_come_from_the_listing_else_from_the_albums_metadata(plex_emulator, counts_listed):
    """Current servers list albums without ``leafCount``; the metadata of the albums the caller
    knows has it (batched requests), and the listing is not read past its first album."""
    lib = plex_emulator.library
    lib.listing_leaf_counts = counts_listed
    known = sorted(lib.albums, key=int)[:-5] + ["999999"]  # the caller misses five, knows one Plex lacks
    plex_emulator.request_log.clear()
    with connect(plex_emulator, concurrent_pages=2) as p:
        p.GENRE_PAGE = 50
        counts = p.album_leaf_counts(known)
    every = {k: len(v) for k, v in lib.album_tracks.items()}
    assert counts == (every if counts_listed else {**{k: every[k] for k in known[:-1]}, "999999": 0})
    asked = [q for q in plex_emulator.request_log if q.startswith("/library/metadata/")]
    listing = [q for q in plex_emulator.request_log if "type=9" in q]
    assert len(asked) == (0 if counts_listed else -(-len(known) // p.COUNT_BATCH))
    assert len(listing) == (1 + -(-len(lib.albums) // 50) if counts_listed else 1)


def test_an_album_gone_before_its_count_is_asked_has_no_tracks(plex_emulator):
    lib = plex_emulator.library
    gone = sorted(lib.albums, key=int)[7]
    plex_emulator.inject_fault("rewrite", path_contains="/library/metadata/", times=None, rewrite=lambda body: re.sub(
        rb'<Directory ratingKey="' + gone.encode() + rb'".*?</Directory>\n?', b"", body, flags=re.DOTALL))
    with connect(plex_emulator) as p:
        counts = p.album_leaf_counts(lib.albums)
    assert counts == {k: 0 if k == gone else len(v) for k, v in lib.album_tracks.items()}


def test_albums_without_a_track_count_anywhere_give_no_counts(plex_emulator):
    plex_emulator.inject_fault("rewrite", path_contains="/library/metadata/", times=None,
                               rewrite=lambda body: re.sub(rb' leafCount="\d+"', b"", body, count=1))
    with connect(plex_emulator) as p:
        assert p.album_leaf_counts(plex_emulator.library.albums) is None


@pytest.mark.parametrize("concurrent", [1, 2])
def test_which_tracks_still_exist_comes_from_batched_metadata(plex_emulator, concurrent):
    """``COUNT_BATCH`` keys a request (100 here); keys Plex lacks are left out, and a batch of which
    none exists is a 404 (PLEX_API.md), which says: none of them."""
    lib = plex_emulator.library
    keys = sorted(lib.tracks, key=int)[:250]
    albums = {k: lib.tracks[k].album_key for k in keys}
    for k in keys[100:200] + keys[7:9]:  # the second batch wholly, two of the first
        plex_emulator.delete_track(k)
    plex_emulator.request_log.clear()
    with connect(plex_emulator, concurrent_pages=concurrent) as p:
        p.COUNT_BATCH = 100
        present = p.tracks_present(keys)
    assert present == {k: albums[k] for k in keys if k in lib.tracks}
    assert len([q for q in plex_emulator.request_log if q.startswith("/library/metadata/")]) == 3


def test_listings_are_slim_and_a_server_refusing_that_is_asked_plainly(plex_emulator):
    with connect(plex_emulator, concurrent_pages=2) as p:
        p.track_count()
        plex_emulator.request_log.clear()
        slim = all_rows(p, 500)
    pages = [q for q in plex_emulator.request_log if "type=10" in q]
    assert pages and all("excludeElements=Media" in q and "excludeFields=" in q for q in pages)
    refusal = plex_emulator.inject_fault("400", path_contains="excludeElements", times=None)
    with connect(plex_emulator, concurrent_pages=2) as p:
        p.track_count()
        plex_emulator.request_log.clear()
        plain = all_rows(p, 500)
    assert plain == slim
    pages = [q for q in plex_emulator.request_log if "type=10" in q]
    assert len([q for q in pages if "exclude" not in q]) == 3
    # Refused once per slim request already asked for (the page wanted and the two kept in
    # flight after it; their answers may come after the plain listing began), never again:
    # it does not go back to slim pages.
    assert 1 <= refusal.fired <= 3, refusal.fired


def test_pages_are_explicit_container_requests(plex_emulator):
    with connect(plex_emulator) as p:
        p.track_count()
        plex_emulator.request_log.clear()
        all_rows(p, 400)
    pages = [q for q in plex_emulator.request_log if "type=10" in q]
    assert len(pages) == 4  # 0, 400, 800, 1200 — no trailing empty request


# ---- faults and retries --------------------------------------------------------------------

def test_500_on_middle_page_exhausts_retries(plex_emulator):
    fault = plex_emulator.inject_fault("500", page=3, times=None)
    with connect(plex_emulator, retries=2) as p:
        p.track_count()
        e = expect_error(PlexHTTPError, lambda: all_rows(p, 200))
    assert e.status == 500
    assert "HTTP 500" in str(e) and "page 4 of 8" in str(e) and "600\u2013799" in str(e)
    assert fault.fired == 3


def fault_timeout(kind: str) -> float:
    """Short only where the fault is a slow answer (3 s): a loaded machine may take longer than
    half a second over a healthy page, and that timeout would use up a retry."""
    return 1.0 if kind == "slow" else 10.0


@pytest.mark.parametrize("kind", ["500", "503", "drop", "truncate", "cut", "slow"])
def test_transient_fault_is_retried(plex_emulator, kind):
    plex_emulator.slow_seconds = 3
    fault = plex_emulator.inject_fault(kind, page=2, times=1)
    with connect(plex_emulator, timeout=fault_timeout(kind), retries=2) as p:
        rows = all_rows(p, 300)
    assert fault.fired == 1
    assert {r["rating_key"] for r in rows} == set(plex_emulator.library.tracks)


@pytest.mark.parametrize("kind,cls,words", [
    ("drop", PlexUnreachable, ("closed", "reset")),
    ("cut", PlexUnreachable, ("dropped",)),
    ("slow", PlexUnreachable, ("timed out",)),
    ("truncate", PlexBadResponse, ("incomplete",)),
])
def test_persistent_fault_raises_after_retries(plex_emulator, kind, cls, words):
    plex_emulator.slow_seconds = 3
    fault = plex_emulator.inject_fault(kind, page=1, times=None)
    with connect(plex_emulator, timeout=fault_timeout(kind), retries=1) as p:
        p.track_count()
        e = expect_error(cls, lambda: all_rows(p, 500))
    assert any(w in str(e) for w in words) and "page 2 of 3" in str(e)
    assert fault.fired == 2


def test_401_mid_sync_is_unauthorized(plex_emulator):
    plex_emulator.inject_fault("401", page=1, times=1)
    with connect(plex_emulator) as p:
        e = expect_error(PlexUnauthorized, lambda: all_rows(p, 500))
    assert "401" in str(e)


def test_connect_retries_a_transient_500(plex_emulator):
    fault = plex_emulator.inject_fault("500", path_contains="/library/sections", times=1)
    with connect(plex_emulator) as p:
        assert p.section_id == "3"
    assert fault.fired == 1


def test_token_never_in_messages_even_in_url(plex_emulator):
    url = f"{plex_emulator.url}/?X-Plex-Token={TOKEN}"
    plex_emulator.inject_fault("500", page=0, times=None)
    with PlexLibrary.connect(url, TOKEN, "Music", timeout=5, backoff=0.01) as p:
        expect_error(PlexHTTPError, lambda: all_rows(p, 500))
    assert TOKEN not in safe_url(url)


# ---- changes since a time -------------------------------------------------------------------

def test_updated_since_sees_track_edits_not_album_edits(plex_emulator):
    lib = plex_emulator.library
    since = max(t.updated_at for t in lib.tracks.values()) + 1
    rk = next(iter(lib.tracks))
    album = lib.tracks[rk].album_key
    plex_emulator.edit_track(rk, user_rating=9.0)
    plex_emulator.set_album_genres(album, ["Zydeco", "Ambient", "rock", "Blues"])
    with connect(plex_emulator) as p:
        changed = all_rows(p, 100, changed_since=since)
        assert [r["rating_key"] for r in changed] == [rk]
        assert changed[0]["user_rating"] == 9.0
        assert p.album_genres()[album] == ["Ambient", "Blues", "rock", "Zydeco"]


@pytest.mark.parametrize("concurrent", [1, 3])
def test_a_changed_since_listing_comes_in_pages_of_its_own_size_and_skips_nothing(plex_emulator, concurrent):
    """Filtered listings go FILTERED_PAGE tracks a page whatever sync.page_size is; read in
    sequence or concurrent_pages at a time (once the first page gives the total), a short page
    and a failing one skip nothing."""
    lib = plex_emulator.library
    since = max(t.updated_at for t in lib.tracks.values()) + 1
    edited = sorted(lib.tracks, key=int)[:700]
    for rk in edited:
        plex_emulator.edit_track(rk, user_rating=7.0)
    faults = [plex_emulator.inject_fault("short", page=1, times=None),  # pages counted from 0
              plex_emulator.inject_fault("500", page=2, times=1)]
    plex_emulator.page_log.clear()
    with connect(plex_emulator, concurrent_pages=concurrent, retries=2) as p:
        changed = all_rows(p, 1000, changed_since=since)
    assert sorted(r["rating_key"] for r in changed) == sorted(edited)
    sizes = {size for path, _, size in plex_emulator.page_log if "updatedAt" in path}
    assert sizes == {PlexLibrary.FILTERED_PAGE}
    assert all(f.fired for f in faults)


@pytest.mark.parametrize("fault", ["truncate", "cut", "500"])
def test_a_changed_since_listings_first_page_that_fails_once_is_read_again(plex_emulator, fault):
    """With pages in flight, a filtered listing's next pages are asked for as soon as the first
    page's bytes tell its total, before that page is parsed. A first page that is cut, does not
    parse or fails is fetched again; every change comes once."""
    lib = plex_emulator.library
    since = max(t.updated_at for t in lib.tracks.values()) + 1
    edited = sorted(lib.tracks, key=int)[:700]
    for rk in edited:
        plex_emulator.edit_track(rk, user_rating=7.0)
    broken = plex_emulator.inject_fault(fault, path_contains="updatedAt", page=0, times=1)
    plex_emulator.page_log.clear()
    with connect(plex_emulator, concurrent_pages=3, retries=2) as p:
        changed = all_rows(p, 1000, changed_since=since)
    assert sorted(r["rating_key"] for r in changed) == sorted(edited)
    assert broken.fired == 1
    starts = sorted(start for path, start, _ in plex_emulator.page_log if "updatedAt" in path)
    assert starts == [0, 0, 250, 500] or starts == [0, 0, 250, 250, 500, 500], starts


def _changes_with_deletions(plex_emulator, deletions: int | None):
    """700 tracks edited; while page 1 (from 0) of a "changed since" listing is served, Plex
    deletes a changed track of page 0 (``deletions`` times; None: every time). Returns
    (since, the edited keys, the keys deleted so far)."""
    lib = plex_emulator.library
    since = max(t.updated_at for t in lib.tracks.values()) + 1
    edited = sorted(lib.tracks, key=int)[:700]
    for rk in edited:
        plex_emulator.edit_track(rk, user_rating=7.0)
    first_page: list[str] = []
    deleted: list[str] = []

    def note(body: bytes) -> bytes:
        first_page[:] = [k.decode() for k in re.findall(rb'\sratingKey="(\d+)"', body)]
        return body

    def delete_one(body: bytes) -> bytes:  # after page 1 is rendered: the pages after it move
        key = next(k for k in first_page if k in lib.tracks)
        lib.delete_track(key)
        deleted.append(key)
        return body

    plex_emulator.inject_fault("rewrite", path_contains="updatedAt", page=0, times=None, rewrite=note)
    plex_emulator.inject_fault("rewrite", path_contains="updatedAt", page=1, times=deletions, rewrite=delete_one)
    return since, edited, deleted


@pytest.mark.parametrize("concurrent", [1, 3])
def test_a_track_deleted_while_the_changes_are_read_hides_no_other_change(plex_emulator, concurrent):
    """A changed track deleted before the page being read moves every later one back by one:
    the track at the next page's start would fall between the pages. The listing's total shrank,
    so it is read again, and every changed track Plex still has comes. (In sequence the
    deletion always lands between pages 1 and 2; concurrently it may come before page 2 is
    rendered, or after.)"""
    since, edited, deleted = _changes_with_deletions(plex_emulator, 1)
    plex_emulator.page_log.clear()
    with connect(plex_emulator, concurrent_pages=concurrent) as p:
        changed = {r["rating_key"] for r in all_rows(p, 1000, changed_since=since)}
    assert len(deleted) == 1
    assert set(edited) - set(deleted) <= changed
    if concurrent == 1:
        starts = [start for path, start, _ in plex_emulator.page_log if "updatedAt" in path]
        assert starts == [0, 250, 500, 0, 250, 500]


def test_changes_that_keep_shrinking_while_read_fail_the_listing(plex_emulator):
    since, _, deleted = _changes_with_deletions(plex_emulator, None)
    with connect(plex_emulator, concurrent_pages=1) as p:
        err = expect_error(PlexError, lambda: all_rows(p, 1000, changed_since=since))
    assert "kept changing" in str(err) and len(deleted) == ShrinkWatch.REREADS + 1


@pytest.mark.parametrize("concurrent", [1, 3])
def test_an_album_deleted_while_the_albums_are_listed_hides_no_other_album(plex_emulator, concurrent):
    """An album listing (here the track counts of an old server's, 20 a page) shrinks while read:
    an album of page 0 is deleted once page 1 is rendered. The listing is read again, each album
    comes once, and every album Plex still has is there with its count."""
    lib = plex_emulator.library
    lib.listing_leaf_counts = True
    first_page: list[str] = []
    deleted: list[str] = []

    def note(body: bytes) -> bytes:
        first_page[:] = [k.decode() for k in re.findall(rb'<Directory ratingKey="(\d+)"', body)]
        return body

    def delete_one(body: bytes) -> bytes:
        deleted.append(first_page[0])
        lib.delete_album(first_page[0])
        return body

    plex_emulator.inject_fault("rewrite", page=0, libtype=9, times=None, rewrite=note)
    plex_emulator.inject_fault("rewrite", page=1, libtype=9, times=1, rewrite=delete_one)
    with connect(plex_emulator, concurrent_pages=concurrent) as p:
        p.GENRE_PAGE = 20
        counts = p.album_leaf_counts()
    assert deleted and deleted[0] not in lib.albums
    assert {k: n for k, n in counts.items() if k not in deleted} == {k: len(v) for k, v in lib.album_tracks.items()}


def test_plexapi_updated_filters(plex_emulator):
    from plexapi.server import PlexServer
    lib = plex_emulator.library
    since = max([t.updated_at for t in lib.tracks.values()]
                + [a.updated_at for a in lib.albums.values()]) + 1
    track_key = next(iter(lib.tracks))
    album_key = lib.tracks[track_key].album_key
    plex_emulator.edit_track(track_key, title="Renamed")
    plex_emulator.edit_album(album_key, year=1999)
    section = PlexServer(plex_emulator.url, TOKEN, timeout=5).library.section("Music")
    when = datetime.fromtimestamp(since, timezone.utc)
    tracks = section.search(libtype="track", filters={"updatedAt>>": when})
    albums = section.search(libtype="album", filters={"updatedAt>>": when})
    assert [t.ratingKey for t in tracks] == [int(track_key)] and tracks[0].title == "Renamed"
    assert [a.ratingKey for a in albums] == [int(album_key)] and albums[0].year == 1999
    q = [q for q in plex_emulator.request_log if "updatedAt" in q]
    assert any("track.updatedAt%3E%3E=" in x or "track.updatedAt>>=" in x for x in q)


def test_section_content_changed_at_moves_on_mutation(plex_emulator):
    from lxml import etree

    def content_changed_at(section_id: str) -> int:
        r = requests.get(f"{plex_emulator.url}/library/sections", headers={"X-Plex-Token": TOKEN}, timeout=5)
        return int(next(d for d in etree.fromstring(r.content).iter("Directory")
                        if d.get("key") == section_id).get("contentChangedAt"))

    with connect(plex_emulator) as p:
        before = content_changed_at(p.section_id)
        plex_emulator.delete_track(next(iter(plex_emulator.library.tracks)))
        assert content_changed_at(p.section_id) > before
        assert p.track_count() == 1499


# ---- plexapi itself against the emulator ----------------------------------------------------

def test_plexapi_paging_and_counts(plex_emulator):
    from plexapi.server import PlexServer
    plex = PlexServer(plex_emulator.url, TOKEN, timeout=5)
    section = plex.library.section("Music")
    assert section.totalViewSize(libtype="track") == 1500
    order = plex_emulator.library.track_order()
    page = section.search(libtype="track", container_start=300, container_size=50, maxresults=50)
    assert [str(t.ratingKey) for t in page] == order[300:350]
    bjork = next(t for t in section.search(libtype="track", maxresults=1500, container_size=500)
                 if t.grandparentTitle == "Björk")
    assert bjork.grandparentTitle == "Björk"
    album = plex.fetchItem(int(bjork.parentRatingKey))
    assert [g.tag for g in album.genres] == plex_emulator.library.albums[album.ratingKey.__str__()].genres


@pytest.mark.parametrize("via", ["headers", "query"])
def test_container_params_headers_or_query(plex_emulator, via):
    url = f"{plex_emulator.url}/library/sections/3/all?type=10"
    params = {"X-Plex-Container-Start": "10", "X-Plex-Container-Size": "5"}
    headers = {"X-Plex-Token": TOKEN}
    if via == "headers":
        headers.update(params)
    else:
        url += "&" + "&".join(f"{k}={v}" for k, v in params.items())
    r = requests.get(url, headers=headers, timeout=5)
    assert r.headers["Content-Type"] == "text/xml;charset=utf-8"
    from lxml import etree
    root = etree.fromstring(r.content)
    assert (root.get("size"), root.get("totalSize"), root.get("offset")) == ("5", "1500", "10")
    assert [t.get("ratingKey") for t in root] == plex_emulator.library.track_order()[10:15]


def test_row_parsing_tolerates_odd_numbers():
    container, (a, b) = TrackPageParser()(
        '<MediaContainer size="2"><Track ratingKey="1" title="A" grandparentTitle="G" '
        'index="3.0" duration="abc" parentYear="1999" userRating="7"/>'
        '<Track ratingKey="2" year="2001" parentYear="1999"/></MediaContainer>'.encode())
    assert container["size"] == "2"
    assert (a["track_number"], a["duration_ms"], a["year"], a["user_rating"]) == (3, None, 1999, 7.0)
    assert (a["artist"], a["album_artist"], a["album"], a["view_count"]) == ("G", "G", "", 0)
    assert (b["title"], b["artist"], b["year"], b["album_rating_key"]) == ("", "", 2001, None)


# ---- backoff: one helper, Retry-After, the injected sleep ------------------------------------

@pytest.mark.parametrize("kind,retry_after,waited", [
    ("429", "2", 2.0), ("503", "3", 3.0), ("429", "600", 60.0), ("500", "5", 0.01), ("429", "soon", 0.01)])
def test_retry_after_of_429_and_503_is_honoured(plex_emulator, kind, retry_after, waited):
    """A 429/503's Retry-After (capped at 60 s) decides the wait; other answers use our own backoff."""
    slept: list[float] = []
    fault = plex_emulator.inject_fault(kind, page=1, times=1, retry_after=retry_after)
    with connect(plex_emulator, retries=2, sleep=slept.append) as p:
        rows = all_rows(p, 500)
    assert fault.fired == 1 and len(rows) == 1500
    assert slept == [waited]


def test_retry_after_as_an_http_date(plex_emulator):
    slept: list[float] = []
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    plex_emulator.inject_fault("503", page=0, times=1, retry_after=when)
    with connect(plex_emulator, sleep=slept.append) as p:
        all_rows(p, 500)
    assert len(slept) == 1 and 25 <= slept[0] <= 30


def test_connect_waits_with_the_injected_sleep(plex_emulator):
    """Connecting retries with the same helper and sleep as every request (it used time.sleep)."""
    slept: list[float] = []
    plex_emulator.inject_fault("500", path_contains="/library/sections", times=2)
    with connect(plex_emulator, retries=2, backoff=0.5, sleep=slept.append) as p:
        assert p.section_id == "3"
    assert slept == [0.5, 1.0]


def test_backoff_doubles_to_its_cap_and_never_overflows():
    b = Backoff(1.0, 60.0)
    assert [b.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.delay(5000) == 60 and b.delay(0, asked=10) == 10 and b.delay(3, asked=1) == 8
    assert b.delay(0, asked=float("inf")) == 1 and b.delay(0, asked=1e9) == 60
    assert retry_after(429, {"retry-after": " 7 "}) == 7 and retry_after(200, {"Retry-After": "7"}) is None
    assert retry_after(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after(503, {}) is None and retry_after(503, {"Retry-After": "-1"}) is None


def test_notification_listener_waits_what_a_503_handshake_asks(plex_emulator, caplog):
    """The websocket's reconnect loop uses the same backoff rule: Retry-After on a 503 handshake."""
    import logging
    import time

    from mediasaged.plex.events import NotificationListener

    plex_emulator.inject_fault("503", path_contains="/:/websockets/notifications", times=1, retry_after="7")
    listener = NotificationListener(plex_emulator.url, TOKEN, verify_ssl=True, timeout=5, on_change=lambda d: None)
    with caplog.at_level(logging.WARNING, logger="mediasaged.plex.events"):
        listener.start()
        deadline = time.monotonic() + 10
        while "reconnecting in" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        listener.stop()  # ends the wait at once: the backoff sleeps on the stop event
        listener.join()
    assert "HTTP 503; reconnecting in 7 s" in caplog.text
    assert TOKEN not in caplog.text


def test_notification_listener_reopens_a_socket_that_went_silent(plex_emulator, caplog):
    """Plex's host lost power, a NAT forgot the connection: nothing arrives and nothing says so.
    A ping that gets no answer finds it, and the socket is opened again."""
    import logging
    import threading
    import time

    from mediasaged.plex.events import NotificationListener
    from tests.netfaults import MutingProxy

    connected = threading.Semaphore(0)
    with MutingProxy(plex_emulator.host, plex_emulator.port) as proxy:
        listener = NotificationListener(proxy.url, TOKEN, verify_ssl=True, timeout=5, on_change=lambda d: None,
                                        on_connect=connected.release, ping_after=0.2, pong_within=0.5)
        with caplog.at_level(logging.WARNING, logger="mediasaged.plex.events"):
            listener.start()
            try:
                assert connected.acquire(timeout=10)
                deadline = time.monotonic() + 10  # quiet, but alive: pings answered keep it open
                while proxy.answers < 3 and time.monotonic() < deadline:  # the handshake's and two pongs
                    time.sleep(0.02)
                assert proxy.answers >= 3 and listener.connections == 1 and "ping" not in caplog.text
                proxy.mute()
                assert connected.acquire(timeout=10), "the silent socket was not given up"
            finally:
                listener.stop()
                listener.join()
    assert listener.connections == 2
    assert "no answer to a ping within 0.5 s; reconnecting in 1 s" in caplog.text


def test_notification_listener_gives_up_a_message_too_large(plex_emulator, caplog):
    """A frame's length is Plex's to say: past the bound the socket is dropped and reopened, and
    the message is not kept (a wrong length must not fill the daemon's memory)."""
    import logging
    import threading
    import time

    from mediasaged.plex.events import NotificationListener
    from tests.emulator.model import MUSIC_SECTION_ID

    connected, changes = threading.Semaphore(0), []
    listener = NotificationListener(plex_emulator.url, TOKEN, verify_ssl=True, timeout=5,
                                    on_change=changes.append, section_id=lambda: MUSIC_SECTION_ID,
                                    on_connect=connected.release, max_message=100_000)
    entry = {"identifier": "com.plexapp.plugins.library", "sectionID": MUSIC_SECTION_ID, "itemID": "1",
             "type": 10, "state": 5}
    with caplog.at_level(logging.WARNING, logger="mediasaged.plex.events"):
        listener.start()
        try:
            assert connected.acquire(timeout=10)
            plex_emulator.send_notification({"type": "timeline", "size": 1, "TimelineEntry": [entry],
                                             "padding": "x" * 100_000})
            assert connected.acquire(timeout=10), "the socket was not reopened"
            plex_emulator.send_notification({"type": "timeline", "size": 1, "TimelineEntry": [entry]})
            deadline = time.monotonic() + 10
            while not changes and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            listener.stop()
            listener.join()
    assert "a message of over 100,000 bytes; reconnecting in 1 s" in caplog.text
    assert len(changes) == 1, "the message within the bound, only"


def test_each_thread_parses_with_a_parser_of_its_own(plex_emulator):
    """The sync's reader parses album genres on a thread while its main thread parses track
    pages. One lxml parser shared by both corrupted the reader's heap now and then: of 2,700
    forked readers doing that against the emulator, 5 aborted ("munmap_chunk(): invalid
    pointer" and the like) and 2 read a track without its ratingKey; of 3,000 with a parser per
    thread, none. Whole MediaContainers parse with the current thread's parser."""
    import threading

    with connect(plex_emulator, concurrent_pages=3) as p:
        mine = p._strict_parser()
        assert p._strict_parser() is mine
        theirs: list = []
        t = threading.Thread(target=lambda: theirs.append((p._strict_parser(), p.album_genres())))
        t.start()
        rows = all_rows(p)
        t.join()
        assert theirs[0][0] is not mine
        assert len(rows) == len(plex_emulator.library.tracks) and len(theirs[0][1]) > 0
