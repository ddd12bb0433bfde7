"""In-memory Plex music library for the emulator: artists, albums, tracks.

Thread-safe: every public method takes the library lock. Mutations bump
``updatedAt`` the way Plex does (editing an album touches the album only),
invalidate cached XML fragments, and notify listeners with timeline entries
(see ``tests/emulator/app.py`` for the websocket side).
"""
from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

MUSIC_SECTION_ID = "3"
MOVIE_SECTION_ID = "1"

# Plex timeline constants (PLEX_API.md, Notifications)
TYPE_ARTIST, TYPE_ALBUM, TYPE_TRACK = 8, 9, 10
STATE_CREATED, STATE_DONE, STATE_DELETED = 0, 5, 9


@dataclass
class Artist:
    rating_key: str
    title: str
    added_at: int
    updated_at: int


@dataclass
class Album:
    rating_key: str
    artist_key: str
    title: str
    year: int | None
    genres: list[str]
    added_at: int
    updated_at: int


@dataclass
class Track:
    rating_key: str
    album_key: str
    title: str
    original_title: str | None
    index: int | None
    disc: int | None
    duration: int | None
    user_rating: float | None
    view_count: int
    last_viewed_at: int | None
    added_at: int
    updated_at: int
    year: int | None = None  # track-level year; Plex listings never carry it
    last_rated_at: int | None = None  # when userRating was last set (`Library.rate_track`)


# fields edit_track() accepts -> Track attribute
_TRACK_FIELDS = {
    "title": "title", "original_title": "original_title", "originalTitle": "original_title",
    "index": "index", "track_number": "index", "disc": "disc", "parentIndex": "disc",
    "disc_number": "disc", "duration": "duration", "duration_ms": "duration",
    "user_rating": "user_rating", "userRating": "user_rating", "view_count": "view_count",
    "viewCount": "view_count", "last_viewed_at": "last_viewed_at",
    "lastViewedAt": "last_viewed_at", "year": "year",
}


@dataclass
class _Section:
    updated_at: int
    scanned_at: int
    content_changed_at: int


Listener = Callable[[list[dict]], None]


class Library:
    """A music section plus an (empty) movie section, with server identity."""

    def __init__(self, *, machine_identifier: str = "emu0000000000000000000000000000000000001",
                 friendly_name: str = "Emulated Plex", version: str = "1.40.2.8395-c67dce28e",
                 music_title: str = "Music", movie_title: str = "Movies",
                 clock: Callable[[], int] | None = None, section_key: str = MUSIC_SECTION_ID,
                 first_key: int = 1000):
        self.lock = threading.RLock()
        self.machine_identifier = machine_identifier
        self.friendly_name = friendly_name
        self.version = version
        self.music_title = music_title
        # the music section's key; another music section of the same server (`PlexEmulator`'s
        # ``other_music``) has its own, and rating keys from its own ``first_key`` on (Plex's keys
        # are unique across sections)
        self.section_key = section_key
        self.movie_title = movie_title
        self.clock = clock or (lambda: int(time.time()))
        self.artists: dict[str, Artist] = {}
        self.albums: dict[str, Album] = {}
        self.tracks: dict[str, Track] = {}
        self.album_tracks: dict[str, list[str]] = {}
        self._next_key = first_key
        now = self.clock()
        self.server_updated_at = now
        self.section = _Section(now, now, 1000)
        self.generation = 0  # bumped on every mutation; renderers key caches on it
        self._order: list[str] | None = None
        self._album_order: list[str] | None = None
        self._artist_order: list[str] | None = None
        # (updatedAt, ratingKey) of every track, sorted: "changed since" answered from an index,
        # as Plex does (built on first use, kept up to date by the mutations below)
        self._by_updated: list[tuple[int, str]] | None = None
        self._albums_by_updated: list[tuple[int, str]] | None = None  # (rebuilt after an album or
        self._artists_by_updated: list[tuple[int, str]] | None = None  # artist change: they are rare)
        self._with_albums: set[str] = set()  # the artists of artist_order()
        # (lastViewedAt or lastRatedAt, ratingKey) of the tracks that have one, sorted: a play or a
        # rating moves no updatedAt (`rate_track`, `play_track`), so "played/rated since" are
        # listings of their own, answered from these (built on first use; an entry whose time is
        # no longer the track's is stale and skipped)
        self._by_time: dict[str, list[tuple[int, str]]] = {}
        # genre name -> its albums in listing order, for the album order and generation it was
        # built from (a sync asks every genre's albums, page by page: at a million tracks,
        # filtering every album for each page took seconds)
        self._genre_albums: tuple[list[str], int, dict[str, list[str]]] | None = None
        self.track_xml: dict[str, bytes] = {}  # ratingKey -> rendered listing fragment
        self.album_xml: dict[str, bytes] = {}       # listing form
        self.album_full_xml: dict[str, bytes] = {}  # /library/metadata form
        # captured elements served as they are (tests/emulator/corpus.py): ratingKey -> bytes
        self.raw_xml: dict[str, bytes] = {}       # listing form (tracks, albums)
        self.raw_full_xml: dict[str, bytes] = {}  # /library/metadata form (tracks, albums)
        self._genre_ids: dict[str, int] = {}
        self.listeners: list[Listener] = []
        self.strict_since_filters = False  # Plex's >>= strictness is unknown; inclusive here
        self._listing_leaf_counts = False
        # The ``type`` of a deletion's timeline entry: None = the deleted item's own (10, 9, 8), as
        # captures of 2018-2019 show for other kinds (tests/fixtures/plex/SOURCES.md); -1 as
        # clients written against current servers report (the kind no longer known).
        self.deleted_entry_type: int | None = None
        # Whether track listings filter by lastRatedAt (current servers: tracks carry it since
        # about 2021); False: an older server, which answers such a filter with HTTP 400.
        self.rated_filter = True

    @property
    def listing_leaf_counts(self) -> bool:
        """Whether album listings carry each album's ``leafCount`` (its track count). Servers of about
        2012 wrote it there; current ones only in ``/library/metadata/{album}`` (real answers of
        2019-2024, tests/fixtures/plex/SOURCES.md), which is the default here."""
        return self._listing_leaf_counts

    @listing_leaf_counts.setter
    def listing_leaf_counts(self, on: bool) -> None:
        self._listing_leaf_counts = on
        self.album_xml.clear()  # rendered listing fragments

    def _forget_album(self, key: str) -> None:
        """Its rendered forms are out of date (its tracks, or it, changed)."""
        self.album_xml.pop(key, None)
        self.album_full_xml.pop(key, None)

    # ---- keys and construction (used by the generator) ------------------------------
    def new_key(self) -> str:
        with self.lock:
            self._next_key += 1
            return str(self._next_key)

    def holds(self, key: str) -> bool:
        """Whether ``key`` is an item of this section (a track, an album or an artist)."""
        return key in self.tracks or key in self.albums or key in self.artists

    def put_artist(self, a: Artist) -> None:
        self.artists[a.rating_key] = a
        self._artist_order = self._artists_by_updated = None

    def put_album(self, al: Album) -> None:
        self.albums[al.rating_key] = al
        self.album_tracks.setdefault(al.rating_key, [])
        self._album_order = self._artist_order = self._albums_by_updated = None

    def put_track(self, t: Track) -> None:
        self.tracks[t.rating_key] = t
        self.album_tracks.setdefault(t.album_key, []).append(t.rating_key)
        self._order = self._by_updated = None
        self._by_time = {}

    def genre_id(self, name: str) -> int:
        with self.lock:
            gid = self._genre_ids.get(name)
            if gid is None:
                gid = self._genre_ids[name] = 100 + len(self._genre_ids)
            return gid

    def genre_name(self, key: str) -> str | None:
        with self.lock:
            for name, gid in self._genre_ids.items():
                if str(gid) == key or name == key:
                    return name
        return None

    def genres_in_use(self) -> list[tuple[int, str]]:
        with self.lock:
            used = {g for al in self.albums.values() for g in al.genres}
            return sorted(((self.genre_id(g), g) for g in used), key=lambda x: x[1].casefold())

    # ---- ordered views ----------------------------------------------------------------
    def track_order(self) -> list[str]:
        """Tracks in listing order (artist, album, disc, track); cached until a change."""
        with self.lock:
            if self._order is None:
                self._order = sorted(self.tracks, key=self._track_key)
            return self._order

    def _track_key(self, rk: str) -> tuple:
        t = self.tracks[rk]
        al = self.albums[t.album_key]
        ar = self.artists[al.artist_key]
        return (ar.title.casefold(), al.title.casefold(), al.rating_key, t.disc or 0, t.index or 0, int(rk))

    def _album_key(self, k: str) -> tuple:
        return (self.artists[self.albums[k].artist_key].title.casefold(), self.albums[k].title.casefold(), int(k))

    def _artist_key(self, k: str) -> tuple:
        return (self.artists[k].title.casefold(), int(k))

    def _since(self, index: list[tuple[int, str]], since: int) -> list[str]:
        at = bisect.bisect_left(index, (since + 1 if self.strict_since_filters else since,))
        return [k for _, k in index[at:]]

    def changed_tracks(self, since: int) -> list[str]:
        """Tracks whose updatedAt is at (or, with ``strict_since_filters``, after) ``since``, in
        listing order: from the updatedAt index, so the cost is the answer's, not the library's."""
        with self.lock:
            if self._by_updated is None:
                self._by_updated = sorted((t.updated_at, rk) for rk, t in self.tracks.items())
            return sorted(self._since(self._by_updated, since), key=self._track_key)

    def tracks_timed_since(self, attr: str, since: int) -> list[str]:
        """`changed_tracks` for ``last_viewed_at`` (played since) or ``last_rated_at`` (rated
        since): tracks without one are never listed."""
        with self.lock:
            index = self._by_time.get(attr)
            if index is None:
                index = self._by_time[attr] = sorted(
                    (getattr(t, attr), rk) for rk, t in self.tracks.items() if getattr(t, attr) is not None)
            at = bisect.bisect_left(index, (since + 1 if self.strict_since_filters else since,))
            hits = {rk for at_time, rk in index[at:] if rk in self.tracks and getattr(self.tracks[rk], attr) == at_time}
            return sorted(hits, key=self._track_key)

    def _retimed(self, rk: str) -> None:
        """Track ``rk``'s play or rating time may be new: into the built indexes (`_by_time`) with it
        (a copy: a caller may hold the old list)."""
        t = self.tracks[rk]
        for attr, index in list(self._by_time.items()):
            if getattr(t, attr) is not None:
                index = list(index)
                bisect.insort(index, (getattr(t, attr), rk))
                self._by_time[attr] = index

    def changed_albums(self, since: int) -> list[str]:
        """`changed_tracks` for albums."""
        with self.lock:
            if self._albums_by_updated is None:
                self._albums_by_updated = sorted((al.updated_at, k) for k, al in self.albums.items())
            return sorted(self._since(self._albums_by_updated, since), key=self._album_key)

    def changed_artists(self, since: int) -> list[str]:
        """`changed_tracks` for artists (those with albums: the artist listing's)."""
        with self.lock:
            if self._artists_by_updated is None:
                self._artists_by_updated = sorted((a.updated_at, k) for k, a in self.artists.items())
            self.artist_order()
            return sorted((k for k in self._since(self._artists_by_updated, since) if k in self._with_albums),
                          key=self._artist_key)

    def warm(self) -> None:
        """Build the listing orders and the updatedAt, lastViewedAt and lastRatedAt indexes now
        (seconds at a million tracks), not in the first request that needs them."""
        self.track_order()
        self.album_order()
        self.artist_order()
        self.changed_tracks(2**62)
        self.tracks_timed_since("last_viewed_at", 2**62)
        self.tracks_timed_since("last_rated_at", 2**62)
        self.changed_albums(2**62)
        self.changed_artists(2**62)

    def artist_order(self) -> list[str]:
        """Artists that have albums, in listing order; cached until a change."""
        with self.lock:
            if self._artist_order is None:
                self._with_albums = {al.artist_key for al in self.albums.values()}
                self._artist_order = sorted(self._with_albums, key=self._artist_key)
            return self._artist_order

    def albums_of_genres(self, names: set[str]) -> list[str]:
        """The albums with any of the genres ``names``, in listing order (from an index)."""
        with self.lock:
            order = self.album_order()
            if self._genre_albums is None or self._genre_albums[0] is not order \
                    or self._genre_albums[1] != self.generation:
                index: dict[str, list[str]] = {}
                for k in order:
                    for g in set(self.albums[k].genres):
                        index.setdefault(g, []).append(k)
                self._genre_albums = (order, self.generation, index)
            index = self._genre_albums[2]
            if len(names) == 1:
                return index.get(next(iter(names)), [])
            keys = {k for name in names for k in index.get(name, ())}
            return [k for k in order if k in keys]

    def album_order(self) -> list[str]:
        with self.lock:
            if self._album_order is None:
                self._album_order = sorted(self.albums, key=self._album_key)
            return self._album_order

    # ---- mutations --------------------------------------------------------------------
    # The cached orders are replaced, never changed in place (a caller may hold one), and
    # kept rather than rebuilt where one track comes, goes or changes: at a million tracks a
    # re-sort takes seconds, where Plex answers from its indexes.
    def _track_moved(self, rk: str, old: tuple[int, str] | None, *, reorder: bool) -> None:
        """Track ``rk`` was added (``old`` None), deleted (not in ``tracks``) or edited."""
        t = self.tracks.get(rk)
        if self._by_updated is not None:
            upd = list(self._by_updated)
            if old is not None:
                at = bisect.bisect_left(upd, old)
                if at < len(upd) and upd[at] == old:
                    del upd[at]
            if t is not None:
                bisect.insort(upd, (t.updated_at, rk))
            self._by_updated = upd
        if self._order is not None and (reorder or old is None or t is None):
            if reorder:
                self._order = None
            elif t is None:
                order = list(self._order)
                order.remove(rk)
                self._order = order
            else:
                order = list(self._order)
                bisect.insort(order, rk, key=self._track_key)
                self._order = order

    def _touch_section(self, now: int) -> None:
        self.section.updated_at = now
        self.section.scanned_at = now
        self.section.content_changed_at += 1
        self.server_updated_at = now
        self.generation += 1

    def _notify(self, entries: list[dict]) -> None:
        for cb in list(self.listeners):
            cb(entries)

    def _entry(self, item_id: str, typ: int, state: int, updated_at: int | None) -> dict:
        e = {"identifier": "com.plexapp.plugins.library", "sectionID": self.section_key,
             "itemID": item_id, "type": typ, "state": state, "title": "",
             "updatedAt": updated_at if updated_at is not None else self.clock(),
             "mediaState": "analyzing" if state == STATE_CREATED else "",
             "queueSize": 0}
        if state == STATE_DELETED:
            e.pop("mediaState")
            e["metadataState"] = "deleted"
            if self.deleted_entry_type is not None:
                e["type"] = self.deleted_entry_type
        return e

    def add_track(self, *, title: str, album_key: str | None = None, album_title: str | None = None,
                  artist: str | None = None, original_title: str | None = None,
                  album_year: int | None = None, album_genres: Iterable[str] = (),
                  index: int | None = None, disc: int | None = 1, duration: int | None = 200_000,
                  user_rating: float | None = None, view_count: int = 0,
                  last_viewed_at: int | None = None) -> str:
        """Add a track to an existing album (album_key) or a new album (album_title, artist).

        Returns the new track's ratingKey. Creating a new album also creates the artist
        if needed; timeline entries are sent for every created item (state 0 then 5)."""
        with self.lock:
            now = self.clock()
            created: list[tuple[str, int]] = []
            if album_key is None:
                if album_title is None or artist is None:
                    raise ValueError("add_track needs album_key, or album_title and artist")
                ar = next((a for a in self.artists.values() if a.title == artist), None)
                if ar is None:
                    ar = Artist(self.new_key(), artist, now, now)
                    self.put_artist(ar)
                    created.append((ar.rating_key, TYPE_ARTIST))
                al = Album(self.new_key(), ar.rating_key, album_title, album_year,
                           list(album_genres), now, now)
                self.put_album(al)
                created.append((al.rating_key, TYPE_ALBUM))
                album_key = al.rating_key
            elif album_key not in self.albums:
                raise KeyError(f"no album {album_key}")
            if index is None:
                index = len(self.album_tracks.get(album_key, [])) + 1
            t = Track(self.new_key(), album_key, title, original_title, index, disc, duration,
                      user_rating, view_count, last_viewed_at, now, now)
            order, by_updated = self._order, self._by_updated
            self.put_track(t)
            self._order, self._by_updated = order, by_updated
            self._track_moved(t.rating_key, None, reorder=False)
            self._retimed(t.rating_key)
            self._forget_album(album_key)  # its leafCount changed
            created.append((t.rating_key, TYPE_TRACK))
            self._touch_section(now)
            entries = [self._entry(k, typ, STATE_CREATED, now) for k, typ in created]
            done = [self._entry(k, typ, STATE_DONE, now) for k, typ in created]
        self._notify(entries)
        self._notify(done)
        return t.rating_key

    def delete_track(self, rating_key: str) -> None:
        rating_key = str(rating_key)
        with self.lock:
            t = self.tracks.pop(rating_key)
            self.album_tracks[t.album_key].remove(rating_key)
            self._forget_album(t.album_key)  # its leafCount changed
            self.track_xml.pop(rating_key, None)
            self._track_moved(rating_key, (t.updated_at, rating_key), reorder=False)
            now = self.clock()
            self._touch_section(now)
            entry = self._entry(rating_key, TYPE_TRACK, STATE_DELETED, now)
        self._notify([entry])

    def delete_album(self, album_key: str) -> None:
        """Delete an album and its tracks: Plex drops an album once its last track is gone (a
        track deleted alone leaves its album listed here, with one track less)."""
        album_key = str(album_key)
        for rk in list(self.album_tracks.get(album_key, ())):
            self.delete_track(rk)
        with self.lock:
            self.albums.pop(album_key)
            self.album_tracks.pop(album_key, None)
            self._forget_album(album_key)
            self._album_order = self._artist_order = self._albums_by_updated = None
            now = self.clock()
            self._touch_section(now)
            entry = self._entry(album_key, TYPE_ALBUM, STATE_DELETED, now)
        self._notify([entry])

    def edit_track(self, rating_key: str, **fields) -> int:
        """Edit track fields (see _TRACK_FIELDS for names) as a metadata edit does (Plex Web's
        edit dialog, an agent's refresh): bumps the track's updatedAt and sends a timeline entry.
        A rating or a play alone does neither on a real server: `rate_track`, `play_track`.

        Returns the new updatedAt. ``updated_at=`` may be given to force a value."""
        rating_key = str(rating_key)
        with self.lock:
            t = self.tracks[rating_key]
            forced = fields.pop("updated_at", None)
            old, placed = (t.updated_at, rating_key), (t.disc, t.index)
            for name, value in fields.items():
                attr = _TRACK_FIELDS.get(name)
                if attr is None:
                    raise TypeError(f"edit_track: unknown field {name!r}")
                setattr(t, attr, value)
            now = self.clock()
            t.updated_at = forced if forced is not None else now
            self.track_xml.pop(rating_key, None)
            self._track_moved(rating_key, old, reorder=(t.disc, t.index) != placed)
            self._retimed(rating_key)
            self._touch_section(now)
            entry = self._entry(rating_key, TYPE_TRACK, STATE_DONE, t.updated_at)
        self._notify([entry])
        return t.updated_at

    # A rating or a play as real servers record them: in the track's own lastRatedAt, or viewCount
    # and lastViewedAt, with its updatedAt left as it was (captures of 2016-2024: tracks rated or
    # played weeks after their updatedAt, tests/fixtures/plex/SOURCES.md). No timeline entry is
    # sent: no capture shows one for either.
    def rate_track(self, rating_key: str, rating: float | None) -> int:
        """Set (None: clear) a track's userRating as a user rating it does; returns lastRatedAt."""
        now = self.clock()
        self._user_mark(str(rating_key), user_rating=rating, last_rated_at=now)
        return now

    def play_track(self, rating_key: str) -> int:
        """One play of a track to its end (viewCount + 1, lastViewedAt now); returns lastViewedAt."""
        rating_key, now = str(rating_key), self.clock()
        with self.lock:
            self._user_mark(rating_key, view_count=self.tracks[rating_key].view_count + 1, last_viewed_at=now)
        return now

    def _user_mark(self, rating_key: str, **values) -> None:
        with self.lock:
            t = self.tracks[rating_key]
            for attr, value in values.items():
                setattr(t, attr, value)
            self.track_xml.pop(rating_key, None)
            self._retimed(rating_key)
            self.generation += 1

    def edit_album(self, album_key: str, *, genres: Iterable[str] | None = None,
                   year: int | None | type(...) = ..., title: str | None = None) -> int:
        """Edit an album: only the ALBUM's updatedAt changes (its tracks' stay)."""
        album_key = str(album_key)
        with self.lock:
            al = self.albums[album_key]
            if genres is not None:
                al.genres = list(genres)
            if year is not ...:
                al.year = year
            if title is not None:
                al.title = title
                self._order = self._album_order = self._artist_order = None
            now = self.clock()
            al.updated_at = now
            self._albums_by_updated = None
            self._forget_album(album_key)
            if year is not ... or title is not None:  # parentYear/parentTitle live in track XML
                for rk in self.album_tracks.get(album_key, []):
                    self.track_xml.pop(rk, None)
            self._touch_section(now)
            entry = self._entry(album_key, TYPE_ALBUM, STATE_DONE, now)
        self._notify([entry])
        return now

    def edit_artist(self, artist_key: str, *, title: str) -> int:
        """Rename an artist: only the ARTIST's updatedAt changes (its albums' and tracks' stay)."""
        artist_key = str(artist_key)
        with self.lock:
            ar = self.artists[artist_key]
            ar.title = title
            now = self.clock()
            ar.updated_at = now
            self._order = self._album_order = self._artist_order = self._artists_by_updated = None
            for al in self.albums.values():
                if al.artist_key == artist_key:  # parentTitle / grandparentTitle live in their XML
                    self._forget_album(al.rating_key)
                    for rk in self.album_tracks.get(al.rating_key, []):
                        self.track_xml.pop(rk, None)
            self._touch_section(now)
            entry = self._entry(artist_key, TYPE_ARTIST, STATE_DONE, now)
        self._notify([entry])
        return now

    def set_album_genres(self, album_key: str, genres: Iterable[str]) -> int:
        return self.edit_album(album_key, genres=genres)

    def set_machine_identifier(self, new: str) -> None:
        with self.lock:
            self.machine_identifier = new
            self.server_updated_at = self.clock()

    # ---- ground truth -----------------------------------------------------------------
    def expected_track(self, rating_key: str) -> dict:
        with self.lock:
            t = self.tracks[rating_key]
            al = self.albums[t.album_key]
            ar = self.artists[al.artist_key]
            return {
                "rating_key": t.rating_key,
                "title": t.title,
                "artist": t.original_title or ar.title,
                "album_artist": ar.title,
                "album": al.title,
                "album_rating_key": al.rating_key,
                "duration_ms": t.duration,
                "year": t.year if t.year is not None else al.year,
                "genres": sorted(al.genres, key=str.casefold),
                "user_rating": float(t.user_rating) if t.user_rating is not None else None,
                "track_number": t.index,
                "disc_number": t.disc,
                "view_count": t.view_count or 0,
                "last_viewed_at": t.last_viewed_at,
                "added_at": t.added_at,
                "updated_at": t.updated_at,
            }

    def expected_tracks(self) -> dict[str, dict]:
        """CONTRACT §3 track objects (without is_live), keyed by ratingKey."""
        with self.lock:
            return {rk: self.expected_track(rk) for rk in self.tracks}

    def expected_album_genres(self) -> dict[str, list[str]]:
        with self.lock:
            return {k: sorted(al.genres, key=str.casefold) for k, al in self.albums.items()}

    def stats(self) -> dict:
        with self.lock:
            return {"tracks": len(self.tracks), "albums": len(self.albums),
                    "artists": len(self.artists), "genres": len(self.genres_in_use())}
