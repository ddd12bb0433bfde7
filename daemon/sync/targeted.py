"""Changes Plex notified, fetched item by item (in the daemon process, standard library only).

Plex's timeline notifications name the item that changed (PLEX_API.md,
"Notifications"). Once Plex has been quiet for a moment, `fetch_notified` asks
Plex for exactly those items -- several tracks in one
``/library/metadata/{k1},{k2},…`` request, an album's tracks, an artist's albums --
and returns a change set that `Store.apply_changes` writes into the live slot in
one transaction. No listing is paged, so it also works while Plex's listings fail.

What it cannot decide (an artist that was deleted, a type we don't know, a
failed request) raises `Unclear`, and the job falls back to an incremental sync. An item
deleted without its kind (``type`` -1) is checked gone on Plex here and looked up in the
cache by the store, as a track or an album; anything else there falls back too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable

from ..plex.frames import UNKNOWN_KIND
from ..plex.items import FetchFailed, ItemFetcher
from ..plex.rows import CHANGE_FIELDS
from .live import Decorate

ARTIST, ALBUM, TRACK = 8, 9, 10
DELETED = 9


class Unclear(Exception):
    """The notifications can't be applied item by item; run an incremental sync instead."""


@dataclass
class Notified:
    """The items of a burst of notifications, by kind."""

    tracks: set[str] = field(default_factory=set)
    deleted_tracks: set[str] = field(default_factory=set)
    albums: set[str] = field(default_factory=set)
    deleted_albums: set[str] = field(default_factory=set)
    artists: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # deleted, its kind not said (`UNKNOWN_KIND`)

    @classmethod
    def of(cls, entries: Iterable[dict]) -> "Notified":
        """From timeline entries ``{"item_id", "type", "state"}``, in order (the last word on an item wins)."""
        n = cls()
        for e in entries:
            key, kind, deleted = e["item_id"], e["type"], e["state"] == DELETED
            if kind == UNKNOWN_KIND:  # deleted, a track or an album: the store tells which
                for named in (n.tracks, n.deleted_tracks, n.albums, n.deleted_albums):
                    named.discard(key)
                n.gone.add(key)
                continue
            n.gone.discard(key)
            if kind == TRACK:
                (n.deleted_tracks if deleted else n.tracks).add(key)
                (n.tracks if deleted else n.deleted_tracks).discard(key)
            elif kind == ALBUM:
                (n.deleted_albums if deleted else n.albums).add(key)
                (n.albums if deleted else n.deleted_albums).discard(key)
            elif kind == ARTIST and not deleted:
                n.artists.add(key)
            else:  # an artist deleted (we keep no artist keys), or a type we don't know
                raise Unclear(f"a notification of type {kind}, state {e['state']}")
        return n


@dataclass
class ChangeSet:
    rows: list[dict]
    deleted: set[str]
    albums: dict[str, set[str]]  # album key -> every track key Plex has in it (an empty set: album gone)
    gone: set[str] = field(default_factory=set)  # keys Plex deleted: a cached track's or album's
    requests: int = 0


def fetch_notified(notified: Notified, *, url: str, token: str, timeout: float, verify_ssl: bool,
                   server_id: str, spec: dict) -> ChangeSet:
    """The change set of ``notified`` (blocking: run it in a thread). Raises `Unclear`."""
    fetch = ItemFetcher(url, token, timeout=timeout, verify_ssl=verify_ssl)
    try:
        if fetch.server_id() != server_id:
            raise Unclear("Plex answers as another server")
        rows: dict[str, dict] = {}
        albums: dict[str, set[str]] = {key: set() for key in notified.deleted_albums}
        album_keys = set(notified.albums)
        for artist in sorted(notified.artists):
            found = fetch.artist_albums(artist)
            if found is None:
                raise Unclear(f"artist {artist} is gone")
            album_keys.update(found)
        for album in sorted(album_keys - albums.keys()):
            tracks = fetch.album_tracks(album)
            albums[album] = {r["rating_key"] for r in tracks or ()}
            rows.update((r["rating_key"], r) for r in tracks or ())
        wanted = sorted(notified.tracks - rows.keys())
        found = fetch.tracks(wanted)
        rows.update(found)
        deleted = set(notified.deleted_tracks) | (set(wanted) - found.keys())  # notified, then gone
        still_there = fetch.present(sorted(notified.gone))
        if still_there:  # a deletion Plex's item contradicts: the listings decide
            raise Unclear(f"item {min(still_there)} notified as deleted is still on Plex")
        fetch.albums(sorted({r["album_rating_key"] for r in rows.values() if r.get("album_rating_key")}))
    except FetchFailed as exc:
        raise Unclear(str(exc)) from None
    decorated = Decorate(spec, fetch.album_genres, fetch)(list(rows.values()))
    return ChangeSet(rows=decorated, deleted=deleted - rows.keys(), albums=albums,
                     gone=notified.gone - rows.keys(), requests=fetch.requests)


def nothing_changed(*, url: str, token: str, timeout: float, verify_ssl: bool, server_id: str, library: str,
                    section_id: str, since: int, track_count: int) -> bool:
    """True when Plex reports no change since ``since`` and the track count the cache holds:
    zero-size listings, so an incremental sync of an unchanged library needs no worker
    (blocking: run it in a thread). The count of tracks edited since is asked first, alone:
    when the library changed it is the one that says so (a job then starts its worker ~5 ms
    sooner than after the whole round below, at 100k tracks). Then the server's identity, the
    section ``library`` names (still ``section_id``, the cached library's: not another section
    of that name since) and the other "changed since" counts (tracks played, rated; albums,
    artists edited) are asked at once (urllib: a connection each), and the track count only
    when they say nothing changed. Any doubt, or a failed request, says False (a server that
    refuses the rated-since filter, too: the worker then reads what it can)."""
    fetch = ItemFetcher(url, token, timeout=timeout, verify_ssl=verify_ssl)
    edited, *others = [(TRACK, f"track.{field}>>") for field in CHANGE_FIELDS] + [
        (ALBUM, "album.updatedAt>>"), (ARTIST, "artist.updatedAt>>")]
    try:
        if fetch.count(section_id, edited[0], **{edited[1]: str(int(since))}) != 0:
            return False
        with ThreadPoolExecutor(2 + len(others), thread_name_prefix="plex-check") as pool:  # one round trip
            asked = [pool.submit(fetch.server_id), pool.submit(fetch.section_key, library)] + [
                pool.submit(fetch.count, section_id, kind, **{name: str(int(since))}) for kind, name in others]
            answers = [a.result() for a in asked]
        return answers == [server_id, section_id] + [0] * len(others) and \
            fetch.count(section_id, TRACK) == track_count
    except FetchFailed:
        return False
