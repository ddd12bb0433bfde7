"""What plexapi reads from a Plex server, as CONTRACT Track objects: the oracle for sync tests.

Nothing here reads the emulator's model or generator: it asks a server over HTTP with
plexapi (``PlexServer``), fetches every track's and album's full metadata
(``fetchItem``), and applies CONTRACT §3's Track table:

- year: the track's ``year``, else its ``parentYear``, else the album's ``year`` from the
  album listing;
- genres: the track's own ``Genre`` tags where it has any, else its album's full list
  (``/library/metadata/{album}``);
- artist: ``originalTitle`` if set, else ``grandparentTitle``.
"""
from __future__ import annotations

import os

os.environ.setdefault("PLEXAPI_PLEXAPI_AUTORELOAD", "0")  # full metadata is fetched explicitly


def _epoch(dt) -> int | None:
    return None if dt is None else int(dt.timestamp())


def _int_attr(el, name: str) -> int | None:
    value = el.attrib.get(name) if el is not None else None
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def plexapi_tracks(url: str, token: str, library: str = "Music") -> dict[str, dict]:
    """rating_key -> CONTRACT Track fields (is_live excluded), as plexapi reads them."""
    from plexapi.server import PlexServer

    server = PlexServer(url, token, timeout=10)
    section = server.library.section(library)
    album_years = {str(a.ratingKey): a.year for a in section.search(libtype="album")}
    album_genres: dict[str, list[str]] = {}
    out: dict[str, dict] = {}
    for listed in section.search(libtype="track"):
        if listed.ratingKey is None:
            continue
        track = server.fetchItem(int(listed.ratingKey))
        album_key = str(track.parentRatingKey) if track.parentRatingKey is not None else None
        year = track.year
        if year is None:
            year = _int_attr(track._data, "parentYear")
        if year is None and album_key is not None:
            year = album_years.get(album_key)
        own = [g.tag for g in track.findItems(track._data, etag="Genre")]
        if own:
            genres = own
        elif album_key is not None:
            if album_key not in album_genres:
                album = server.fetchItem(int(album_key))
                album_genres[album_key] = [g.tag for g in album.findItems(album._data, etag="Genre")]
            genres = album_genres[album_key]
        else:
            genres = []
        out[str(track.ratingKey)] = {
            "rating_key": str(track.ratingKey),
            "title": track.title,
            "artist": track.originalTitle or track.grandparentTitle,
            "album_artist": track.grandparentTitle,
            "album": track.parentTitle,
            "album_rating_key": album_key,
            "duration_ms": track.duration,
            "year": year,
            "genres": sorted(genres, key=str.casefold),
            "user_rating": track.userRating,
            "track_number": track.index,
            "disc_number": track.parentIndex,
            "view_count": track.viewCount or 0,
            "last_viewed_at": _epoch(track.lastViewedAt),
            "added_at": _epoch(track.addedAt),
            "updated_at": _epoch(track.updatedAt),
        }
    return out
