"""Plex's attributes of a <Track> -> a track row: the one place that maps them to Track fields.

A row's ``track_genres`` holds the track's own ``<Genre>`` tags (real servers send them
in some answers); the sync prefers them to its album's genres (CONTRACT's Track table).
Year is the track's ``year``, else ``parentYear``; the album's year, for servers whose
listings carry neither (2014-2017), is filled in by the sync (``year`` None here).

Standard library only: the sync worker's lxml reader (`xml.py`) and the daemon's
targeted fetch of notified items (`items.py`) both use it.
"""
from __future__ import annotations

from .attrs import to_float, to_int

GENRES_KEY = " genres"  # where a <Track>'s own <Genre> tags go in its attribute dict (no attribute has a space)

# The attributes whose ``track.<name>>>=`` filters together list every track whose row changed
# since a time. A metadata edit moves updatedAt; a play moves only viewCount and lastViewedAt, a
# rating only userRating and lastRatedAt: real answers hold tracks played or rated weeks after
# their updatedAt (tests/fixtures/plex/SOURCES.md). lastRatedAt is in our captures from 2024
# on, not before: an older server may refuse its filter (HTTP 400, `TrackReads.iter_changed_pages`).
CHANGE_FIELDS = ("updatedAt", "lastViewedAt", "lastRatedAt")


def track_row(a: dict, i=int, f=float) -> dict:
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
        return track_row(a, to_int, to_float)
    if own:
        row["track_genres"] = own
    return row
