"""Incremental syncs in the worker: read what changed, find deletions cheaply, apply in place
(and the same deletion check for a resumed full sync's slot, `reconcile_resumed`).

What changed since ``spec["since"]`` comes from Plex's "changed since" listings
(tracks edited, played or rated: a play or a rating moves no ``updatedAt``; and the
tracks of changed albums and artists: an album edit or an artist rename does not touch
its tracks' ``updatedAt``). Deletions never show up there, so:

1. Plex's track count (one request for ``totalSize``) is compared with what the
   cache will hold after the changes. Equal: nothing else was deleted (an
   addition is always reported, so it cannot hide a deletion in the count).
2. Otherwise each album's track count (``leafCount``: in the album listing on old
   servers, in the albums' batched metadata on current ones, `plex.albums`) is
   compared with the cache's; the cached tracks of the albums that differ are looked
   up on Plex, and only the albums whose count still differs are listed
   (``/library/metadata/{album}/children``); an album or artist that disappeared
   takes its tracks with it.
3. Only if the counts still disagree (tracks without an album, a server that
   sends no ``leafCount`` at all) is every track key listed, as before.

The change set is then written into the live slot in one transaction
(`store.InPlaceWriter`), unless it is larger than ``INPLACE_MAX`` tracks or the
ranks leave no room, in which case the inactive slot is rebuilt from a copy of
the live one (the old way) and flipped. See docs/DESIGN.md, "Incremental syncs".
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from ..plex.rows import CHANGE_FIELDS
from ..steps import Steps
from ..timeutil import now

log = logging.getLogger("mediasaged.sync.increment")

# Past this many changed tracks a rebuild of the inactive slot is the better tool:
# one write transaction stays short (about 0.1 s per 1,000 tracks), and readers
# never wait on it either way.
INPLACE_MAX = 20_000


class ChangeSet:
    """Track rows to upsert and keys to delete. Rows are kept as Plex lists them and decorated
    (genres, live flag) once, by `ready`: the genres of all their albums come in one batched
    pass then, not one pass per page of changes."""

    def __init__(self, plex: Any, decorate: Callable[[list[dict]], list[dict]], genres: dict):
        self._plex = plex
        self._decorate = decorate
        self._genres = genres  # album key -> genres, shared with `decorate`
        self.rows: dict[str, dict] = {}
        self._raw: dict[str, dict] = {}  # the rows `ready` has yet to decorate
        self.deleted: set[str] = set()
        self.skipped: Counter = Counter()  # reason -> items Plex listed that could not be mirrored
        self._cached: dict[str, Any] = {}  # rating key -> its album in the cache, for the keys it holds
        self._looked_up: set[str] = set()  # the keys `cached_albums` asked the cache about

    def add(self, rows: list[dict]) -> None:
        for row in rows:
            key = row.get("rating_key")
            if key:
                self.rows[key] = self._raw[key] = row
                self.deleted.discard(key)

    def ready(self) -> list[dict]:
        """Every row, decorated (the genres still missing fetched first, in one batched pass)."""
        if self._raw:
            albums = {r["album_rating_key"] for r in self._raw.values() if r.get("album_rating_key")}
            self._genres.update(self._plex.genres_of_albums(sorted(albums - self._genres.keys())))
            for row in self._decorate(list(self._raw.values())):
                self.rows[row["rating_key"]] = row
            self._raw.clear()
        return list(self.rows.values())

    def delete(self, keys: Any) -> None:
        for key in keys:
            self.rows.pop(key, None)
            self._raw.pop(key, None)
            self.deleted.add(key)

    def on_plex(self, keys: Any) -> None:
        """Plex has these tracks: none of them is deleted, whatever took it for deleted before (a
        deletion notified for a track back from Plex's trash; an album an album listing missed).
        What Plex lists or looks up is the evidence; what led to the check is not."""
        self.deleted.difference_update(keys)

    def cached_albums(self, live: Any) -> dict[str, Any]:
        """rating key -> its album in the cache, for the changed and deleted keys the cache
        (``live``, the same each call) holds; each key is looked up once."""
        new = [k for k in (*self.rows, *self.deleted) if k not in self._looked_up]
        if new:
            self._cached.update(live.albums_of(new))
            self._looked_up.update(new)
        return self._cached

    def __len__(self) -> int:
        return len(self.rows) + len(self.deleted)


def read_changes(plex: Any, spec: dict, changes: ChangeSet, progress: Callable[[int], None]) -> None:
    """Everything Plex reports as changed since ``spec["since"]``: the tracks edited, played or rated
    since then (`plex.rows.CHANGE_FIELDS`), and the tracks of the albums and artists edited."""
    since = spec["since"]
    for field in CHANGE_FIELDS:
        for rows in plex.iter_changed_pages(spec["page_size"], since, field):
            changes.add(rows)
            progress(len(changes))
        changes.skipped.update(plex.ledger.skipped)
    for _, rows in plex.tracks_of_albums(plex.changed_album_keys(since)):  # concurrent_pages at a time
        changes.add(rows)
        progress(len(changes))
    for artist_key in plex.changed_artist_keys(since):
        for rows in plex.iter_track_pages(spec["page_size"], artist_key=artist_key):
            changes.add(rows)
            progress(len(changes))
        changes.skipped.update(plex.ledger.skipped)


def count_after(live: Any, live_count: int, changes: ChangeSet) -> tuple[int, dict[str, Any]]:
    """(how many tracks the cache holds once ``changes`` are applied, rating key -> cached album)."""
    present = changes.cached_albums(live)
    added = sum(1 for k in changes.rows if k not in present)
    removed = sum(1 for k in changes.deleted if k in present)
    return live_count + added - removed, present


def find_deletions(plex: Any, live: Any, live_count: int, changes: ChangeSet) -> bool:
    """Add the tracks Plex deleted to ``changes`` (steps 1 and 2 of the module docstring).

    Returns True when the counts agree afterwards, False when only a full key
    listing can decide."""
    plex_total = plex.track_count()
    expected, present = count_after(live, live_count, changes)
    if expected == plex_total:
        return True
    cached = live.album_counts()
    leaf = plex.album_leaf_counts(known=list(cached) + [r.get("album_rating_key") for r in changes.rows.values()])
    if leaf is None:
        return False
    differ = differing_albums(cached, leaf, present, changes)
    log.info("track count %d, expected %d: %d albums whose track count differs", plex_total, expected, len(differ))
    # Their cached tracks that Plex no longer has (batched metadata: 250 keys a request, where each
    # album's /children would be one); an album Plex no longer has took its tracks with it.
    suspects = {album: [k for k in keys if k not in changes.rows]
                for album, keys in live.keys_of_albums(differ).items()}
    on_plex = plex.tracks_present(sorted(k for album, keys in suspects.items() if album in leaf for k in keys))
    changes.on_plex(on_plex)
    changes.delete([k for album, keys in suspects.items() for k in keys
                    if album not in leaf or k not in on_plex])
    expected, present = count_after(live, live_count, changes)
    differ = differing_albums(cached, leaf, present, changes)
    if differ:  # tracks Plex has there that we lack, or that moved: the albums' own listings decide
        log.info("listing %d albums whose track count still differs", len(differ))
        list_albums(plex, live, changes, differ, leaf)
    return count_after(live, live_count, changes)[0] == plex_total


def differing_albums(cached: dict, leaf: dict[str, int], present: dict, changes: ChangeSet) -> list[str]:
    """The albums whose track count in the cache, once ``changes`` are applied, is not Plex's
    (``present``: the cached album of each changed or deleted key the cache holds)."""
    counts = dict(cached)
    for key in changes.deleted:
        if key in present:
            counts[present[key]] = counts.get(present[key], 0) - 1
    for key, row in changes.rows.items():
        if key in present:
            counts[present[key]] = counts.get(present[key], 0) - 1
        album = row.get("album_rating_key")
        counts[album] = counts.get(album, 0) + 1
    return sorted(a for a in counts.keys() | leaf.keys() if a and counts.get(a, 0) != leaf.get(a, 0))


def list_albums(plex: Any, live: Any, changes: ChangeSet, differ: list[str], leaf: dict[str, int]) -> None:
    """The tracks of albums ``differ`` as Plex lists them (``/children``, ``concurrent_pages`` at a time)."""
    listed = dict(plex.tracks_of_albums([a for a in differ if a in leaf]))
    on_plex = {album: [r for r in rows if r.get("rating_key")] for album, rows in listed.items()}
    changes.on_plex(r["rating_key"] for rows in on_plex.values() for r in rows)
    cached_album = live.albums_of([r["rating_key"] for rows in on_plex.values() for r in rows])
    # A track the cache holds in this album and the "changed since" listings did not
    # report is unchanged; the others (added, or moved here) are written.
    changes.add([r for album, rows in on_plex.items() for r in rows
                 if r["rating_key"] not in changes.rows and cached_album.get(r["rating_key"], "") != album])
    for album, cached in live.keys_of_albums(differ).items():
        keep = {r["rating_key"] for r in on_plex.get(album, ())}
        changes.delete([k for k in cached if k not in keep and k not in changes.rows])


def list_every_key(plex: Any, spec: dict, live: Any, changes: ChangeSet) -> None:
    """Step 3: Plex's whole key list against the cache's (tracks the cache lacks are added).

    The keys go through a temporary table, not this process's memory."""
    live.begin_listing()
    missing: list[dict] = []
    plex.track_count()  # the count the listing is checked against, as a full sync's is
    for rows in plex.iter_track_pages(spec["page_size"]):
        unknown = live.list_keys([row["rating_key"] for row in rows])
        missing.extend(row for row in rows if row["rating_key"] in unknown and row["rating_key"] not in changes.rows)
    plex.verify_listing()
    changes.skipped.update(plex.ledger.skipped)
    changes.on_plex(live.listed(changes.deleted))
    changes.delete(k for k in live.unlisted_keys() if k not in changes.rows)
    if missing:
        changes.add(missing)
    log.info("reconciled with Plex's track list: %d missing tracks added", len(missing))


def reconcile_resumed(connect: Callable[[], Any], decorate_for: Callable[[dict, Any], Any], writer: Any,
                      still_wanted: Callable[[], None]) -> int | None:
    """A resumed full sync whose slot holds more tracks than Plex counts: Plex deleted some of
    the part read before the cut while the sync was down (the rest and the changes since were
    read afresh). They are found as an incremental sync finds deletions (`find_deletions`:
    Plex's per-album track counts against the slot's, batched lookups of the suspects) and taken
    out of the slot. Returns Plex's track count now, or None when that check can't decide (the
    caller's count check then fails the sync and the next one starts afresh)."""
    from ..plex.errors import PlexError

    try:
        with connect() as plex:
            genres: dict = {}
            changes = ChangeSet(plex, decorate_for(genres, plex), genres)
            if not find_deletions(plex, writer.slot_view(), writer.track_count, changes):
                return None
            still_wanted()
            writer.delete_tracks(changes.deleted)
            if changes.rows:  # tracks of the albums listed that the slot lacked
                writer.write_tracks(changes.ready())
            log.info("the resumed slot: %d tracks Plex deleted while the sync was cut taken out, %d written",
                     len(changes.deleted), len(changes.rows))
            return plex.track_count()
    except PlexError as exc:  # the count check decides
        log.warning("checking the resumed slot's tracks against Plex failed: %s", exc)
        return None


def run_incremental(spec: dict, plex: Any, decorate_for: Callable[[dict], Any], emit: Callable[..., None],
                    rebuild: Callable[[ChangeSet], dict], still_wanted: Callable[[], None]) -> dict:
    """One incremental job on a connected ``plex`` of the cached server; the ``done`` summary.

    ``still_wanted`` raises if the daemon that started us is gone: nothing is written then."""
    from ..store import InPlaceWriter, NoRoom

    took = Steps()  # for the log line at the end
    genres: dict = {}
    changes = ChangeSet(plex, decorate_for(genres), genres)
    changes.delete(spec.get("deleted", ()))
    emit("progress", phase="changes", current=0, total=None)
    read_changes(plex, spec, changes, lambda n: emit("progress", phase="changes", current=n, total=None))
    took("changes")
    with InPlaceWriter(Path(spec["db_path"]), spec["live_slot"], spec["generation"]) as writer:
        # the daemon's count of the live slot at this generation (a count(*) reads every page)
        live_count = spec["live_count"] if spec.get("live_count") is not None else writer.live.count()
        emit("progress", phase="checking", current=len(changes), total=None)
        if not find_deletions(plex, writer.live, live_count, changes):
            list_every_key(plex, spec, writer.live, changes)
        took("deletions")
        still_wanted()
        if len(changes) > INPLACE_MAX:
            log.info("%d changes: rebuilding the slot instead of changing it in place", len(changes))
            return {**rebuild(changes), "skipped": dict(changes.skipped)}
        emit("progress", phase="applying", current=len(changes), total=len(changes))
        try:
            summary = writer.apply(changes.ready(), changes.deleted, synced_at=now())
            took("apply")
        except NoRoom:
            log.info("no room left in the default order's ranks: rebuilding the slot")
            return {**rebuild(changes), "skipped": dict(changes.skipped)}
    log.info("incremental sync: %d changes, %d requests to Plex; %s", len(changes), plex.request_count, took)
    return {**summary, "slot": spec["live_slot"], "mode": "incremental", "applied": True,
            "skipped": dict(changes.skipped)}
