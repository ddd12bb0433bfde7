"""Track reads of a Plex music section: the count, whole or filtered track listings page by page,
and the check of a whole listing against Plex's counts.

A mixin of `PlexLibrary` (client.py): it calls ``self._fetch``, ``self._page_headers``
and ``self.section_id``, and keeps the last listing's accounting in ``self.ledger``
(`ledger.KeyLedger`) and, once a page is yielded, the offset after it in ``self.page_end``.
"""
from __future__ import annotations

import logging
import math
from typing import Iterator

from lxml import etree

from .attrs import to_int
from .errors import PlexHTTPError
from .fetchers import Prefetch, raw
from .ledger import KeyLedger, ShrinkWatch
from .xml import TrackPageParser, container_total

log = logging.getLogger("mediasaged.plex")


class TrackReads:
    """Track listings of one section (mixed into PlexLibrary)."""

    # Track listings ask Plex to leave out what we never read (see `_listing_params`).
    # Not Genre: a track's own Genre tags are its genres (CONTRACT), and real listings carry some.
    SLIM_ELEMENTS = "Media,Mood,Image"
    SLIM_FIELDS = ("summary,thumb,art,parentThumb,grandparentThumb,grandparentArt,guid,parentGuid,"
                   "grandparentGuid,key,parentKey,grandparentKey,grandparentRatingKey,librarySectionTitle,"
                   "librarySectionID,librarySectionKey,musicAnalysisVersion")
    # Tracks a page of a filtered listing ("changed since", an artist's): a server renders each
    # page's tracks in turn, and concurrent pages on several threads, so a change set of 1,000
    # tracks in pages of 250 (the first alone, for the total; then ``concurrent_pages`` at a
    # time) waits for ~2 pages' rendering instead of one page of 1,000 (docs/PERFORMANCE.md).
    FILTERED_PAGE = 250
    # what a "changed since" listing of each of `rows.CHANGE_FIELDS` holds (in messages)
    _CHANGE_NOUNS = {"updatedAt": "changed tracks", "lastViewedAt": "tracks played since",
                     "lastRatedAt": "tracks rated since"}

    def track_count(self) -> int | None:
        """Plex's count of tracks in the section (``totalSize``), or None when it gives none:
        unknown is never read as 0 (a listing without totalSize must not empty the cache)."""
        root = self._fetch(f"/library/sections/{self.section_id}/all",
                           params={"type": "10"}, headers=self._page_headers(0, 0),
                           what="the track count")
        self._last_total = to_int(root.get("totalSize"))
        return self._last_total

    def _listing_params(self, params: dict) -> dict:
        """``params`` plus, unless this server refused them, what Plex may leave out of a track listing.

        Plex honours ``excludeElements`` / ``excludeFields`` on listings (its own
        clients send them); we read only the <Track> attributes in plex/xml.py, so
        dropping <Media>/<Part> and unread attributes only shrinks the page. A
        server that ignores them sends the full page, which parses the same; one
        that answers HTTP 400 gets the plain request from then on.
        """
        if not self._slim:
            return params
        return {**params, "excludeElements": self.SLIM_ELEMENTS, "excludeFields": self.SLIM_FIELDS}

    def iter_track_pages(self, page_size: int, *, changed_since: int | None = None, field: str = "updatedAt",
                         artist_key: str | None = None, start: int = 0) -> Iterator[list[dict]]:
        """Yield lists of track rows, ``page_size`` tracks per request.

        Advances by the number of tracks actually received (a short page never skips
        tracks). Stops when Plex's ``totalSize`` is reached or, where Plex gives none
        (unknown, never 0), at a short or empty page. Every item goes through a
        `KeyLedger` (``self.ledger``): items without a ratingKey are skipped, a key the
        previous page already yielded is dropped (the library may shift while we page;
        a row seen again further on replaces the first in the slot anyway); both are
        counted. ``changed_since`` (unix seconds) adds Plex's ``track.updatedAt>>=``
        filter (``field``: another of `rows.CHANGE_FIELDS`), ``artist_key`` its ``artist.id=``
        filter (their pages: at most ``FILTERED_PAGE`` tracks). Once the listing's total is known (a whole one's before it, a filtered one's
        from its first page), it is fetched ``concurrent_pages`` requests ahead while pages are
        parsed. After a whole
        listing, `verify_listing` checks it against Plex's counts. ``start`` skips that many
        tracks of the listing (a full sync resuming); when a page is yielded,
        ``page_end`` is the offset after it. A filtered listing whose total shrinks from
        one page to the next is read again from its start (`ledger.ShrinkWatch`)."""
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        path = f"/library/sections/{self.section_id}/all"
        params = {"type": "10"}
        noun = "tracks"
        if changed_since is not None:
            params[f"track.{field}>>"] = str(int(changed_since))
            noun = self._CHANGE_NOUNS[field]
        if artist_key is not None:
            params["artist.id"] = artist_key
            noun = f"tracks of artist {artist_key}"
        whole = changed_since is None and artist_key is None
        total = self._last_total if whole else None
        if not whole:
            page_size = min(page_size, self.FILTERED_PAGE)
        self.ledger = ledger = KeyLedger()
        if whole:
            ledger.note_total("before the listing", total)
        parse_page = TrackPageParser()
        start = max(0, int(start))
        ahead: Prefetch | None = None
        shrinking = None if whole else ShrinkWatch(noun)  # a whole listing's counts are checked instead
        dropped_slim = False  # this listing turned the slim parameters off

        def what(at: int) -> str:
            page_no = at // page_size + 1
            of = f" of {max(page_no, math.ceil(total / page_size))}" if total else ""
            return f"page {page_no}{of} ({noun} {at}\u2013{at + page_size - 1}, offset {at})"

        try:
            while total is None or start < total:
                query = self._listing_params(params)
                try:
                    body: bytes | None = None  # None: the page comes in sequence, with retries
                    if self.concurrent_pages > 1:
                        if total:  # (a filtered listing's total: from its first page)
                            if ahead is None or ahead.params != query:
                                if ahead is not None:
                                    ahead.close()
                                ahead = Prefetch(self, path, query, page_size, self.concurrent_pages)
                            body = ahead.take(start, total, what)
                        else:  # a filtered listing's first page: the total comes with it
                            body = self._fetch(path, params=query, what=what(start), parse=raw,
                                               headers=self._page_headers(start, page_size))
                            hint = container_total(body)
                            if hint is not None and hint > start + page_size:
                                # the next pages are asked for while this one is parsed
                                if ahead is not None:
                                    ahead.close()
                                ahead = Prefetch(self, path, query, page_size, self.concurrent_pages)
                                ahead.keep(start + page_size, hint, what)
                        try:
                            container, rows = parse_page(body)
                        except (etree.XMLSyntaxError, ValueError):  # fetched again
                            body = None
                    if body is None:
                        container, rows = self._fetch(path, params=query, what=what(start), parse=parse_page,
                                                      headers=self._page_headers(start, page_size))
                except PlexHTTPError as exc:
                    if exc.status != 400:
                        raise
                    if query is params:
                        if dropped_slim:  # refused without them too: they were not the cause
                            self._slim = True
                        raise
                    log.info("Plex refused the slim listing parameters (HTTP 400); asking for whole pages")
                    self._slim, dropped_slim = False, True
                    continue
                page_total = to_int(container.get("totalSize"))
                if whole:
                    ledger.note_total(f"on page {start // page_size + 1}", page_total)
                elif shrinking.moved(page_total):  # read again (the rows yielded come again; callers keep one per key)
                    if ahead is not None:  # its pages may be from before the change
                        ahead.close()
                        ahead = None
                    start, total = 0, None
                    self.ledger = ledger = KeyLedger()
                    continue
                if page_total is not None:
                    total = page_total
                elif total is None and len(rows) < page_size:
                    total = start + len(rows)  # unknown total: a short page is the last one
                if not rows:
                    break
                fresh = ledger.admit(rows, what(start))
                log.debug("page %s: %d rows", start // page_size + 1, len(rows))
                self.page_end = start + len(rows)
                if fresh:
                    yield fresh
                start += len(rows)
        finally:
            if ahead is not None:
                ahead.close()

    def iter_changed_pages(self, page_size: int, since: int, field: str) -> Iterator[list[dict]]:
        """`iter_track_pages` of the tracks whose ``field`` (one of `rows.CHANGE_FIELDS`) is at or after
        ``since``. A server that refuses the played or rated filter (HTTP 400: lastRatedAt on one
        from before about 2021) lists none, and the log says what that leaves out; a refused
        updatedAt filter fails the sync, as any listing does."""
        try:
            yield from self.iter_track_pages(page_size, changed_since=since, field=field)
        except PlexHTTPError as exc:
            if exc.status != 400 or field == "updatedAt":
                raise
            log.warning("Plex refused to list the %s the last sync (HTTP 400 to the %s filter): where no "
                        "updatedAt moved with them, the next full sync reads them", self._CHANGE_NOUNS[field], field)

    def verify_listing(self) -> int:
        """After a whole listing: ask Plex for its count again and check the listing against
        every count Plex gave (before, on each page, now). Returns the verified total;
        raises PlexCountMismatch (the sync fails, the cache stays as it was)."""
        ledger = self.ledger
        ledger.note_total("after the listing", self.track_count())
        return ledger.verify()
