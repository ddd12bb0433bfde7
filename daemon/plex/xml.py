"""Plex listing XML -> plain track rows (the hot loop of a sync), with lxml, no plexapi.

`_track_row` is the one place that maps Plex's attributes to Track fields. A row's
``track_genres`` holds the track's own ``<Genre>`` tags (real servers send them in some
answers); the sync prefers them to its album's genres (CONTRACT's Track table).
Year is the track's ``year``, else ``parentYear``; the album's year, for servers whose
listings carry neither (2014-2017), is filled in by the sync (``year`` None here)."""
from __future__ import annotations

from lxml import etree

from .attrs import to_float, to_int


# ---- XML -> rows -------------------------------------------------------------------------

def _track_row(a: dict, i=int, f=float) -> dict:
    """One track row from a <Track> element's attributes (a plain dict).

    The hot loop of a sync: plain ``int``/``float`` first; a row with a
    malformed number ("8.5" where an int belongs, garbage) is redone with the
    tolerant converters, which turn what they cannot read into None."""
    g = a.get
    gp = g("grandparentTitle") or ""
    own = g(GENRES_KEY)
    year = g("year") or g("parentYear")
    dur, idx, disc, vc = g("duration"), g("index"), g("parentIndex"), g("viewCount")
    lv, added, upd, ur = g("lastViewedAt"), g("addedAt"), g("updatedAt"), g("userRating")
    try:
        row = {
            "rating_key": g("ratingKey") or "",
            "title": g("title") or "",
            "artist": g("originalTitle") or gp,
            "album_artist": gp,
            "album": g("parentTitle") or "",
            "album_rating_key": g("parentRatingKey") or None,
            "duration_ms": i(dur) if dur else None,
            "year": i(year) if year else None,
            "user_rating": f(ur) if ur else None,
            "track_number": i(idx) if idx else None,
            "disc_number": i(disc) if disc else None,
            "view_count": (i(vc) if vc else 0) or 0,
            "last_viewed_at": i(lv) if lv else None,
            "added_at": i(added) if added else None,
            "updated_at": i(upd) if upd else None,
        }
    except ValueError:
        return _track_row(a, to_int, to_float)
    if own:
        row["track_genres"] = own
    return row


GENRES_KEY = " genres"  # where a <Track>'s own <Genre> tags go in its attribute dict (no attribute has a space)


class _TrackPageTarget:
    """lxml parser target: keeps the MediaContainer's and every <Track>'s attributes.

    Parsing with a target builds no tree: libxml2 hands each start tag's
    attributes over as a dict, which is the cheapest way to get them into
    Python (a sync spends most of its CPU here). Media/Part children are skipped; a
    track's own <Genre> children are kept (in its dict under `GENRES_KEY`). No ``end``
    callback (it would double the Python calls per element): in a track listing a
    <Genre> can only belong to the <Track> opened last.
    """

    def __init__(self) -> None:
        self.container: dict | None = None
        self.tracks: list[dict] = []

    def start(self, tag: str, attrib: dict) -> None:
        if tag == "Track":
            self.tracks.append(attrib)
        elif tag == "Genre" and self.tracks:
            self.tracks[-1].setdefault(GENRES_KEY, []).append(attrib.get("tag") or "")
        elif tag == "MediaContainer" and self.container is None:
            self.container = attrib

    def close(self) -> tuple[dict | None, list[dict]]:
        result = (self.container, self.tracks)
        self.container, self.tracks = None, []
        return result


class TrackPageParser:
    """Parses track listing pages into rows, reusing one lxml parser.

    One parser for all pages matters: a fresh libxml2 parser per page left
    ~60 MB of fragmented heap behind after 100 pages. Not thread-safe: one per pager.
    """

    def __init__(self) -> None:
        # resolve_entities stays at lxml's default ("internal": no external entities):
        # with False, a target parser would pass character references like &#38; through.
        self._target = _TrackPageTarget()
        self._parser = etree.XMLParser(target=self._target, no_network=True, huge_tree=True)

    def __call__(self, body: bytes) -> tuple[dict, list[dict]]:
        """(MediaContainer attributes, track rows) of one page.

        Raises ``etree.XMLSyntaxError`` for truncated or malformed XML and
        ``ValueError`` when the document is not a MediaContainer."""
        try:
            container, tracks = etree.fromstring(body, self._parser)
        except etree.XMLSyntaxError:
            self._target.close()  # drop what the broken page left behind
            raise
        if container is None:
            raise ValueError("not a MediaContainer")
        return container, [_track_row(a) for a in tracks]


def strict_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                           collect_ids=False, recover=False)
