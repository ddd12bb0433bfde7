"""Album reads of a Plex music section: full genre lists, years, changed albums and artists, track counts
(and which tracks still exist, for the deletion check).

A mixin of `PlexLibrary` (client.py): it calls ``self._fetch`` and ``self._page_headers``,
and keeps the years the last `genres_of_albums` read (``self._years_read``). Album listings
truncate ``Genre`` at about two tags; the full list is in ``/library/metadata/{album}`` or
behind the genre filter (PLEX_API.md).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

from .attrs import to_int
from .fetchers import Prefetch
from .genremap import GenreMap, GenreMapBuilder
from .ledger import ShrinkWatch
from .retry import Retryable
from .xml import NumberScan, TrackPageParser


class AlbumReads:
    """Album-level answers of one section (mixed into PlexLibrary)."""

    GENRE_PAGE = 1000      # albums per page for genre listings
    METADATA_BATCH = 100   # album keys per /library/metadata/k1,k2,... request
    # keys per request where only a number or two of each item is read (albums' track counts, which
    # tracks still exist): fewer requests (10,000 albums' counts 140 ms instead of 250 ms with 100),
    # and the URL stays within ~2,000 characters for keys of up to 7 digits
    COUNT_BATCH = 250

    def album_genres(self, *, strategy: str = "auto") -> GenreMap:
        """Album ratingKey -> its FULL genre list, sorted case-insensitively (a compact read-only
        mapping, genremap.py: the sync reader holds it for the whole listing).

        Albums without any genre are absent (use ``.get(key, [])``).
        Strategies: "genre_filter" = 1 request for the genre list + one (paged) listing per
        genre via ``album.genre=<key>``; "listing" = paged album listing, then batched
        ``/library/metadata/k1,k2,...`` only for albums whose listing shows 2 genres (listings
        truncate at 2); "metadata" = batched /library/metadata for every album; "auto" picks
        genre_filter unless the section has more genres than the listing strategy's
        request estimate."""
        if strategy == "per_album":  # measurement baseline only: one request per album
            keys = [k for k, _ in self._iter_album_listing()]
            return GenreMap.of(self._genres_from_metadata(keys, batch=1))
        if strategy == "metadata":
            return GenreMap.of(self._genres_from_metadata([k for k, _ in self._iter_album_listing()]))
        if strategy == "listing":
            return GenreMap.of(self._genres_by_listing())
        choices = self._genre_choices()
        if strategy == "auto":
            albums = self._album_count()
            listing_cost = math.ceil(albums / self.GENRE_PAGE) + \
                math.ceil(albums / self.METADATA_BATCH) // 2
            if len(choices) + 1 > max(1, listing_cost):
                return GenreMap.of(self._genres_by_listing())
        elif strategy != "genre_filter":
            raise ValueError(f"unknown strategy {strategy!r}")
        found = GenreMapBuilder()
        for key, title in choices:
            for el in self._album_pages({"type": "9", "album.genre": key}, f"the albums of genre {title!r}"):
                rk = el.get("ratingKey")
                if rk:
                    found.add(rk, title)
        return found.build()

    # ---- changes since a time (incremental sync) ------------------------------------------
    def changed_album_keys(self, since: int) -> list[str]:
        """Albums whose ``updatedAt`` is at or after ``since`` (an album edit does not touch its tracks)."""
        pages = self._album_pages({"type": "9", "album.updatedAt>>": str(int(since))}, "changed albums")
        return [rk for rk in (el.get("ratingKey") for el in pages) if rk]

    def changed_artist_keys(self, since: int) -> list[str]:
        """Artists whose ``updatedAt`` is at or after ``since`` (a rename need not touch their tracks)."""
        pages = self._album_pages({"type": "8", "artist.updatedAt>>": str(int(since))}, "changed artists")
        return [rk for rk in (el.get("ratingKey") for el in pages) if rk]

    def album_leaf_counts(self, known: Iterable[str] = ()) -> dict[str, int] | None:
        """Album ratingKey -> its track count (``leafCount``); None when Plex gives none for an album
        (the caller can't use the counts then).

        Servers of about 2012 put ``leafCount`` in the album listing; current ones only in an
        album's own metadata (real answers of 2019-2024 have none in listings, tests/fixtures/
        plex/SOURCES.md). The listing's first album tells which (a one-album page). With counts
        there, the whole listing gives every album and its count. Without, the albums ``known``
        to the caller (the cache's, and those of the changes) are asked in batches of
        ``/library/metadata/k1,k2,...`` (``COUNT_BATCH`` a request, ``concurrent_pages`` at a
        time): the listing would only add the albums whose every track the changes missed, which
        the caller's count check finds anyway. An album left out of such an answer is gone, and
        its tracks with it (PLEX_API.md). Only ``ratingKey`` and ``leafCount`` are read
        (`xml.NumberScan`: the bytes scanned, no parse of the albums' other attributes and tags)."""
        parse = NumberScan("Directory", ("ratingKey", "leafCount"))
        _, first = self._fetch(f"/library/sections/{self.section_id}/all", params={"type": "9"},
                               headers=self._page_headers(0, 1), what="the first album's track count", parse=parse)
        counts: dict[str, int | None] = {}
        if first and first[0][1] is not None:
            for rk, n in self._album_pages({"type": "9"}, "album track counts", parse):
                if rk:
                    counts[rk] = to_int(n)
        else:
            counts = dict.fromkeys(k for k in known if k)
        uncounted = [rk for rk, n in counts.items() if n is None]
        batches = _batches(uncounted, self.COUNT_BATCH, "album track counts")
        for asked, (_, items) in zip(_chunks(uncounted, self.COUNT_BATCH),
                                     self._fetch_each(batches, parse, not_found=({}, []))):
            answered = {rk: to_int(n) for rk, n in items if rk in counts}
            counts.update({rk: answered.get(rk, 0) for rk in asked})  # left out: gone
        if any(n is None for n in counts.values()):
            return None
        return counts  # type: ignore[return-value]  # no None left

    def tracks_present(self, keys: list[str]) -> dict[str, str | None]:
        """Which of ``keys`` (track ratingKeys) Plex still has -> each one's album key, from batched
        ``/library/metadata/k1,k2,...`` (PLEX_API.md: keys that don't exist are left out, 404 only
        when none does; ``COUNT_BATCH`` keys a request), ``concurrent_pages`` at a time; the two
        numbers scanned from the bytes (`xml.NumberScan`)."""
        out: dict[str, str | None] = {}
        parse = NumberScan("Track", ("ratingKey", "parentRatingKey"))
        for _, items in self._fetch_each(_batches(keys, self.COUNT_BATCH, "tracks", "tracks"), parse,
                                         not_found=({}, [])):
            out.update((rk, album) for rk, album in items if rk)
        return out

    def tracks_of_albums(self, album_keys: list[str]) -> Iterator[tuple[str, list[dict]]]:
        """(album key, its track rows) for each of ``album_keys``, in order, ``concurrent_pages``
        ``/library/metadata/{key}/children`` requests in flight."""
        answers = self._fetch_each([(f"/library/metadata/{key}/children", f"the tracks of album {key}")
                                    for key in album_keys], TrackPageParser())
        for key, (_, rows) in zip(album_keys, answers):
            yield key, rows

    def genres_of_albums(self, keys: list[str]) -> dict[str, list[str]]:
        """Album ratingKey -> its full genre list (empty lists included) for ``keys`` (the albums of an
        incremental sync's changed tracks: ``COUNT_BATCH`` a request, ~1,000 albums in 4 requests).
        Their years come in the same answers: `album_years` asks Plex only for other albums after it
        (tracks of an album without a year have none in a listing either)."""
        self._years_read = {}
        return self._genres_from_metadata(keys, self.COUNT_BATCH, keep_empty=True, years=self._years_read)

    def _genre_choices(self) -> list[tuple[str, str]]:
        root = self._fetch(f"/library/sections/{self.section_id}/genre", params={"type": "9"},
                           what="the genre list")
        return [(d.get("key"), d.get("title") or "") for d in root.iterchildren("Directory")
                if d.get("key")]

    def _album_count(self) -> int:
        root = self._fetch(f"/library/sections/{self.section_id}/all", params={"type": "9"},
                           headers=self._page_headers(0, 0), what="the album count")
        return to_int(root.get("totalSize")) or 0

    def _album_pages(self, params: dict, what: str, parse: Callable | None = None) -> Iterator:
        """Every <Directory> (album, or artist) of a listing, page by page (advancing by what arrived);
        with ``parse`` (an `xml.NumberScan` whose first name is ``ratingKey``), what it gives of each.

        Once the first page told the total, the next pages come ``concurrent_pages`` at
        a time, as a track listing's do (`fetchers.Prefetch`). A listing whose total shrinks
        from one page to the next is read again from its start (`ledger.ShrinkWatch`); each
        ratingKey is yielded once."""
        path = f"/library/sections/{self.section_id}/all"
        start, total, ahead = 0, None, None
        shrinking = ShrinkWatch(what)
        seen: set[str] = set()

        def label(at: int) -> str:
            return f"{what} ({at}\u2013{at + self.GENRE_PAGE - 1})"

        try:
            while True:
                if ahead is not None:
                    try:
                        root = self._parse(ahead.take(start, total, label), None, parse, label(start))
                    except Retryable:
                        root = None
                if ahead is None or root is None:
                    root = self._fetch(path, params=params, headers=self._page_headers(start, self.GENRE_PAGE),
                                       what=label(start), parse=parse)
                container, items = (root, root.iterchildren("Directory")) if parse is None else root
                total = to_int(container.get("totalSize"))
                if shrinking.moved(total):
                    if ahead is not None:  # its pages may be from before the change
                        ahead.close()
                        ahead = None
                    start = 0
                    continue
                n = 0
                for el in items:
                    n += 1
                    key = el.get("ratingKey") if parse is None else el[0]
                    if key is None or key not in seen:
                        seen.add(key)
                        yield el
                start += n
                if n == 0 or total is None or start >= total:
                    return
                if ahead is None and self.concurrent_pages > 1:
                    ahead = Prefetch(self, path, params, self.GENRE_PAGE, self.concurrent_pages)
        finally:
            if ahead is not None:
                ahead.close()

    def _iter_album_listing(self) -> Iterator[tuple[str, list[str]]]:
        for el in self._album_pages({"type": "9"}, "albums"):
            rk = el.get("ratingKey")
            if rk:
                yield rk, [g.get("tag") or "" for g in el.iterchildren("Genre")]

    def _genres_by_listing(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        maybe_more: list[str] = []
        for rk, genres in self._iter_album_listing():
            if genres:
                out[rk] = sorted(genres, key=str.casefold)
            if len(genres) >= 2:  # listings show at most 2: fetch the full list
                maybe_more.append(rk)
        full = self._genres_from_metadata(maybe_more, keep_empty=True)
        out.update(full)
        return {k: v for k, v in out.items() if v}

    def _genres_from_metadata(self, keys: list[str], batch: int | None = None, *, keep_empty: bool = False,
                              years: dict[str, int | None] | None = None) -> dict[str, list[str]]:
        """Album ratingKey -> its full genre list, from batched metadata; ``years``, if given, gets
        each album's ``year`` (None: it has none)."""
        batch = batch or self.METADATA_BATCH
        out: dict[str, list[str]] = {}
        for root in self._fetch_each(_batches(keys, batch, "album metadata")):
            for el in root.iterchildren("Directory"):
                genres = [g.get("tag") or "" for g in el.iterchildren("Genre")]
                if genres or keep_empty:
                    out[el.get("ratingKey")] = sorted(genres, key=str.casefold)
                if years is not None:
                    years[el.get("ratingKey")] = to_int(el.get("year"))
        return out

    def album_years(self, keys: list[str]) -> dict[str, int]:
        """Album ratingKey -> its ``year`` (albums without one are absent), from batched
        ``/library/metadata/k1,k2,...``: the fallback for track listings without
        ``parentYear`` (servers of 2014-2017). Albums whose metadata `genres_of_albums` read last are
        answered from it."""
        read = self._years_read
        out: dict[str, int] = {k: read[k] for k in keys if read.get(k) is not None}  # type: ignore[misc]
        keys = [k for k in keys if k not in read]
        for root in self._fetch_each(_batches(keys, self.METADATA_BATCH, "album years")):
            for el in root.iterchildren("Directory"):
                year = to_int(el.get("year"))
                if year is not None and el.get("ratingKey"):
                    out[el.get("ratingKey")] = year
        return out


def _chunks(keys: list[str], batch: int) -> list[list[str]]:
    return [keys[i:i + batch] for i in range(0, len(keys), batch)]


def _batches(keys: list[str], batch: int, what: str, noun: str = "albums") -> list[tuple[str, str]]:
    """Batched ``/library/metadata/k1,k2,...`` requests for ``keys``: (path, what) pairs."""
    return [(f"/library/metadata/{','.join(c)}", f"{what} ({len(c)} {noun})") for c in _chunks(keys, batch)]
