"""Incremental syncs in place: a change set written into the live slot in one transaction.

A full sync builds the inactive slot and flips (`slots.py`); an incremental one
changes a few tracks of a large library, so rebuilding every index for it would
cost as much as a full sync. `LiveSlot.apply` writes the changed, added and
deleted tracks into the live slot instead, keeping the genre table, the FTS index
and every index consistent, and `apply_changes` does that together with the
``generation``/``synced_at`` bump in one write transaction: a reader (WAL) sees
the whole old library or the whole new one.

Each track has a rank, its place in the default order (``track_ranks_S``, also the
FTS rowid and the genre rows' ``artist_rank``), spread evenly over 1..RANK_LIMIT at
a full build. New or moved tracks share out the gap between their ranked
neighbours; when a gap is too small, `NoRoom` tells the caller to rebuild the slot
instead. The precomputed library.stats are kept exact (`stats.StatsDelta`). See
docs/DESIGN.md, "Incremental syncs".
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Iterable, Iterator

from ..track import KEY_COLUMNS, STORED_COLUMNS, RowEncoder
from .connection import StoreError, Transaction, connect_worker, read_state
from .files import storage_error
from .schema import RANK_LIMIT, slot_tables
from .stats import STATS_COLUMNS, StatsDelta, album_counts

_COL = {name: i for i, name in enumerate(STORED_COLUMNS)}
_CHUNK = 500  # keys per IN (...) lookup


class NoRoom(Exception):
    """No rank is left between two neighbours: rebuild the slot (a full build respaces the ranks)."""


def _chunks(items: list, n: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


class LiveSlot:
    """Reads for change detection, and in-place writes, on one slot through one connection.

    The connection is the caller's: the sync worker's own, or the daemon's writer.
    `apply` must run inside the caller's write transaction.
    """

    def __init__(self, conn: sqlite3.Connection, slot: str, *, stats: bool = True):
        self.c = conn
        self.slot = slot
        self.t = slot_tables(slot)
        self._stats = stats  # its stats tables are built (not so in a resumed full sync's slot)
        self._encode = RowEncoder()
        self._fts_writes: list[tuple[int, int, tuple]] = []  # (rowid, 0 delete | 1 insert, key columns), see apply
        cols = ", ".join(STORED_COLUMNS)
        self._insert = f"INSERT INTO {self.t['tracks']} ({cols}) VALUES ({', '.join('?' * len(STORED_COLUMNS))})"
        keys = ", ".join(KEY_COLUMNS)
        self._fts_add = f"INSERT INTO {self.t['fts']} (rowid, {keys}) VALUES (?, {', '.join('?' * len(KEY_COLUMNS))})"
        self._fts_del = (f"INSERT INTO {self.t['fts']} ({self.t['fts']}, rowid, {keys}) "
                         f"VALUES ('delete', ?, {', '.join('?' * len(KEY_COLUMNS))})")

    # -- reads (outside or inside a transaction)

    def count(self) -> int:
        return self.c.execute(f"SELECT count(*) FROM {self.t['tracks']}").fetchone()[0]

    def _where_in(self, select: str, column: str, values: Iterable) -> Iterator[tuple]:
        """The rows of ``select ... WHERE column IN values``, ``_CHUNK`` values a statement (bound as
        one JSON array, so any number of them is one parameter)."""
        for chunk in _chunks(list(values)):
            yield from self.c.execute(f"{select} WHERE {column} IN (SELECT value FROM json_each(?))",
                                      (json.dumps(chunk),))

    def albums_of(self, keys: Iterable[str]) -> dict[str, str | None]:
        """rating_key -> album_rating_key, for the keys the slot holds."""
        return dict(self._where_in(f"SELECT rating_key, album_rating_key FROM {self.t['tracks']}", "rating_key", keys))

    def album_counts(self) -> dict[str | None, int]:
        """album_rating_key -> how many tracks the slot holds of it (None: tracks without one).

        From the stats' album rows of the whole library (genre key '', kind 'l': one row an
        album, kept exact by every change, `stats.StatsDelta`) when the slot has its stats;
        else counted from the tracks' album index (every track read: ~3x slower at 100k)."""
        if not self._stats:
            return dict(self.c.execute(
                f"SELECT album_rating_key, count(*) FROM {self.t['tracks']} GROUP BY album_rating_key"))
        return album_counts(self.c, self.t)

    # -- Plex's full key list against the slot's, without holding either in memory

    def begin_listing(self) -> None:
        """Start recording the keys Plex lists (a temporary table); see `unlisted_keys`."""
        self.c.execute("CREATE TEMP TABLE IF NOT EXISTS listed (rating_key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.c.execute("DELETE FROM temp.listed")

    def list_keys(self, keys: list[str]) -> set[str]:
        """Record ``keys`` as listed by Plex; returns those the slot does not hold."""
        self.c.executemany("INSERT OR IGNORE INTO temp.listed VALUES (?)", [(k,) for k in keys])
        return set(keys) - set(self.albums_of(keys))

    def listed(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` Plex listed since `begin_listing`."""
        return {row[0] for row in self._where_in("SELECT rating_key FROM temp.listed", "rating_key", keys)}

    def unlisted_keys(self) -> list[str]:
        """The slot's keys Plex did not list since `begin_listing` (the tracks it deleted)."""
        return [r[0] for r in self.c.execute(f"SELECT rating_key FROM {self.t['tracks']} WHERE rating_key NOT IN "
                                             "(SELECT rating_key FROM temp.listed)")]

    def keys_of_albums(self, album_keys: Iterable[str]) -> dict[str, set[str]]:
        """album_rating_key -> the rating keys the slot holds in it, for each of ``album_keys``
        (an album it holds nothing of: an empty set)."""
        out: dict[str, set[str]] = {key: set() for key in album_keys}
        for key, album in self._where_in(f"SELECT rating_key, album_rating_key FROM {self.t['tracks']}",
                                         "album_rating_key", list(out)):
            out[album].add(key)
        return out

    # -- writes (inside the caller's transaction)

    def apply(self, rows: list[dict], deleted: Iterable[str]) -> tuple[int, int, int]:
        """Write ``rows`` (upserts by rating_key) and remove ``deleted``; (added, updated, removed).

        A row equal to what the slot holds changes nothing and is not counted. Tracks
        are written first; then the ranks, FTS entries and genre rows of the new and
        changed ones (`_place`), and the stats. Raises `NoRoom` (the caller's
        transaction rolls everything back)."""
        self._fts_writes = []
        # what the slot holds of them first: their keys are kept where their names are (`RowEncoder`)
        old = self._stored([r["rating_key"] for r in rows if isinstance(r.get("rating_key"), str)])
        new: dict[str, tuple] = {}
        for row in rows:
            before = old.get(row.get("rating_key"))
            values = self._encode(row, before[1] if before else None)
            new[values[0]] = values
        gone = [k for k in dict.fromkeys(deleted) if k not in new]
        old.update(self._stored([k for k in list(new) + gone if k not in old]))
        stats = StatsDelta(self.c, self.t)
        removed = 0
        for rk in gone:
            if rk in old:
                tid, values = old[rk]
                self._unindex(tid, values)
                self.c.execute(f"DELETE FROM {self.t['tracks']} WHERE id = ?", (tid,))
                stats.add(dict(zip(STORED_COLUMNS, values)), -1)
                removed += 1
        added = updated = 0
        placed: list[tuple[int, tuple]] = []  # (track id, values) of the tracks that need a rank
        changed: list[tuple[int, tuple, tuple]] = []  # (track id, old, new values) of updated tracks
        for rk, values in new.items():
            before = old.get(rk)
            if before is None:
                tid = self.c.execute(self._insert, values).lastrowid
                added += 1
                placed.append((tid, values))
                stats.add(dict(zip(STORED_COLUMNS, values)))
            elif before[1] != values:
                changed.append((before[0], before[1], values))
                if _stats_of(before[1]) != _stats_of(values):  # (a rating edit leaves them alone)
                    stats.add(dict(zip(STORED_COLUMNS, before[1])), -1)
                    stats.add(dict(zip(STORED_COLUMNS, values)))
        updated = len(changed)
        changed.sort(key=lambda c: c[0])  # in track id order: the table's and genre index's pages in turn
        self._update(changed)
        ranks = self._ranks([tid for tid, was, now in changed if _sort_key(was) == _sort_key(now)])
        copies: list[tuple] = []  # genre rows' copies of the track's year, rating, live flag to rewrite
        for tid, was, now in changed:
            rank = ranks.get(tid) if _sort_key(was) == _sort_key(now) else None
            if rank is None:  # a new place in the default order (or none yet): a new rank
                self._unindex(tid, was)
                placed.append((tid, now))
            else:
                copies += self._refresh(tid, was, now, rank)
        self.c.executemany(f"UPDATE {self.t['genres']} SET year = ?, user_rating = ?, is_live = ? "
                           "WHERE track_id = ?", copies)
        self._place(placed)
        self._write_fts()
        stats.flush()
        return added, updated, removed

    def _write_fts(self) -> None:
        """The FTS entries taken out and put in, in rowid order (an entry's deletion before its
        insertion): FTS5 writes its pending entries out as a new segment whenever a rowid is
        lower than the one before, so 100 deletions in rank order take ~1 ms where in random
        order they took ~200 ms, and as much again at the commit (100k tracks)."""
        writes, self._fts_writes = sorted(self._fts_writes, key=lambda w: (w[0], w[1])), []
        for rowid, insert, keys in writes:
            self.c.execute(self._fts_add if insert else self._fts_del, (rowid, *keys))

    def _stored(self, keys: list[str]) -> dict[str, tuple[int, tuple]]:
        cols = ", ".join(STORED_COLUMNS)
        return {row[1]: (row[0], tuple(row[1:]))
                for row in self._where_in(f"SELECT id, {cols} FROM {self.t['tracks']}", "rating_key", keys)}

    def _update(self, changed: list[tuple[int, tuple, tuple]]) -> None:
        """Write the columns that changed, only: SQLite rewrites the entry of every index on a
        column the statement sets, whatever its value (a rating edit then touches 3 of the
        track indexes instead of all of them). Tracks whose edits set the same columns go in
        one statement."""
        by_columns: dict[tuple[int, ...], list[tuple]] = {}
        for tid, old, new in changed:
            cols = tuple(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
            by_columns.setdefault(cols, []).append((*(new[i] for i in cols), tid))
        for cols, params in by_columns.items():
            self.c.executemany(f"UPDATE {self.t['tracks']} SET {', '.join(STORED_COLUMNS[i] + ' = ?' for i in cols)} "
                               "WHERE id = ?", params)

    def _ranks(self, tids: list[int]) -> dict[int, int]:
        """track id -> its rank, for those of ``tids`` that have one."""
        return dict(self._where_in(f"SELECT track_id, rank FROM {self.t['ranks']}", "track_id", tids))

    def _refresh(self, tid: int, old: tuple, new: tuple, rank: int) -> list[tuple]:
        """A changed track that keeps its place in the default order (and so its ``rank``): its FTS
        entry and genre rows are rewritten only where what they hold changed. Returns the
        genre rows' new copies of year, rating and live flag when only those changed (the
        caller writes them all in one statement)."""
        keys = [_COL[k] for k in KEY_COLUMNS]
        if [old[i] for i in keys] != [new[i] for i in keys]:
            self._fts_writes += [(rank, 0, tuple(old[i] for i in keys)), (rank, 1, tuple(new[i] for i in keys))]
        copied = [_COL[k] for k in ("year", "user_rating", "is_live")]
        if old[_COL["genres"]] != new[_COL["genres"]]:
            self.c.execute(f"DELETE FROM {self.t['genres']} WHERE track_id = ?", (tid,))
            self._genre_rows(tid, new, rank)
        elif [old[i] for i in copied] != [new[i] for i in copied]:
            return [(*(new[i] for i in copied), tid)]
        return []

    def _unindex(self, tid: int, values: tuple) -> None:
        """Take a track out of the ranks, the FTS index and the genre table."""
        t = self.t
        row = self.c.execute(f"SELECT rank FROM {t['ranks']} WHERE track_id = ?", (tid,)).fetchone()
        if row is not None:
            self._fts_writes.append((row[0], 0, tuple(values[_COL[k]] for k in KEY_COLUMNS)))
            self.c.execute(f"DELETE FROM {t['ranks']} WHERE rank = ?", (row[0],))
        self.c.execute(f"DELETE FROM {t['genres']} WHERE track_id = ?", (tid,))

    def _place(self, placed: list[tuple[int, tuple]]) -> None:
        """Ranks, FTS entries and genre rows for written tracks without a rank (new, or moved in
        the default order): they share out the gaps between their ranked neighbours (the
        tracks being placed have no rank yet, so they are never neighbours). Tracks falling
        into the same gap are spread evenly across it."""
        albums: dict[tuple[str, str], list[int]] = {}
        for tid, values in placed:
            albums.setdefault((values[_COL["artist_key"]], values[_COL["album_key"]]), []).append(tid)
        gap_of: dict[int, tuple[int, int]] = {}
        for (artist, album), tids in albums.items():
            gap_of.update(self._gaps(artist, album, tids))
        gaps: dict[tuple[int, int], list[tuple[tuple, int, tuple]]] = {}
        for tid, values in placed:
            v = dict(zip(STORED_COLUMNS, values))
            order = (v["artist_key"], v["album_key"], v["disc_number"] is None, v["disc_number"] or 0,
                     v["track_number"] is None, v["track_number"] or 0, tid)
            gaps.setdefault(gap_of[tid], []).append((order, tid, values))
        for (lo, hi), members in gaps.items():
            if hi - lo <= len(members):
                raise NoRoom(f"{len(members)} tracks between ranks {lo} and {hi}")
            members.sort(key=lambda m: m[0])
            for i, (_, tid, values) in enumerate(members, 1):
                rank = lo + (hi - lo) * i // (len(members) + 1)
                self.c.execute(f"INSERT INTO {self.t['ranks']} (rank, track_id) VALUES (?, ?)", (rank, tid))
                self._index(tid, values, rank)

    def _index(self, tid: int, values: tuple, rank: int) -> None:
        self._fts_writes.append((rank, 1, tuple(values[_COL[k]] for k in KEY_COLUMNS)))
        self._genre_rows(tid, values, rank)

    def _genre_rows(self, tid: int, values: tuple, rank: int) -> None:
        v = dict(zip(STORED_COLUMNS, values))
        self.c.executemany(
            f"INSERT INTO {self.t['genres']} (genre_key, track_id, name, year, user_rating, is_live, artist_rank) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(self._encode.folded(name), tid, name, v["year"], v["user_rating"], v["is_live"], rank)
             for name in json.loads(v["genres"] or "[]")])

    def _gaps(self, artist: str, album: str, tids: list[int]) -> dict[int, tuple[int, int]]:
        """For each of ``tids`` (tracks of one album): (the rank of the ranked track just before it
        in the default order, or 0; the rank of the one just after it, or RANK_LIMIT + 1). One
        query for the album's tracks; the neighbouring albums' ranks only where needed."""
        t, r = self.t["tracks"], self.t["ranks"]
        group = self.c.execute(
            f"SELECT t.id, t.disc_number, t.track_number, (SELECT rank FROM {r} WHERE track_id = t.id) "
            f"FROM {t} t WHERE t.artist_key = ? AND t.album_key = ?", (artist, album)).fetchall()
        group.sort(key=lambda g: (g[1] is None, g[1] or 0, g[2] is None, g[2] or 0, g[0]))
        before: list[int | None] = []  # the highest rank up to each position
        for g in group:
            before.append(g[3] if before[-1:] in ([], [None]) else max(before[-1], g[3] or 0))
        after: list[int | None] = [None] * len(group)  # the lowest rank from each position on
        for i in range(len(group) - 1, -1, -1):
            nxt = after[i + 1] if i + 1 < len(group) else None
            after[i] = group[i][3] if nxt is None else min(nxt, group[i][3] or nxt)
        ranked = f"EXISTS (SELECT 1 FROM {r} WHERE track_id = t.id)"
        edges: dict[str, int] = {}

        def edge(side: str) -> int:
            if side not in edges:
                cmp, order, agg, none = (("<", "DESC", "max", 0) if side == "lo" else (">", "", "min", RANK_LIMIT + 1))
                near = self.c.execute(
                    f"SELECT t.artist_key, t.album_key FROM {t} t WHERE (t.artist_key, t.album_key) {cmp} (?, ?) "
                    f"AND {ranked} ORDER BY t.artist_key {order}, t.album_key {order} LIMIT 1",
                    (artist, album)).fetchone()
                edges[side] = self._group_rank(agg, near) if near else none
            return edges[side]

        at = {g[0]: i for i, g in enumerate(group)}
        out = {}
        for tid in tids:
            i = at[tid]
            lo = before[i - 1] if i > 0 else None
            hi = after[i + 1] if i + 1 < len(group) else None
            out[tid] = (edge("lo") if lo is None else lo, edge("hi") if hi is None else hi)
        return out

    def _group_rank(self, agg: str, group: tuple) -> int:
        t, r = self.t["tracks"], self.t["ranks"]
        return self.c.execute(f"SELECT {agg}(rank) FROM {r} WHERE track_id IN "
                              f"(SELECT id FROM {t} WHERE artist_key = ? AND album_key = ?)", group).fetchone()[0]


_STATS = [_COL[c] for c in STATS_COLUMNS]


def _stats_of(values: tuple) -> tuple:
    """What a track's contribution to the library.stats tables depends on."""
    return tuple(values[i] for i in _STATS)


def _sort_key(values: tuple) -> tuple:
    return tuple(values[_COL[c]] for c in ("artist_key", "album_key", "disc_number", "track_number"))


def apply_changes(conn: sqlite3.Connection, *, slot: str, generation: int, rows: list[dict],
                  deleted: Iterable[str], synced_at: int, albums: dict[str, set[str]] | None = None,
                  gone: Iterable[str] = ()) -> dict:
    """`LiveSlot.apply` and the sync-state bump, in one write transaction.

    ``albums`` maps album keys to every track key Plex has in them: cached tracks of
    those albums that are neither there nor in ``rows`` are deleted too. ``gone``: keys
    Plex deleted without saying their kind; each must be a cached track's or album's (its
    tracks go with it), or the change set is refused (StoreError). Refuses
    (StoreError) when the live slot or generation is no longer the one the change
    set was computed against; a storage fault raises sqlite3.Error (the caller names the
    file, `files.storage_error`). Returns the counts, the track count and the new
    generation (+1 only if something changed)."""
    with Transaction(conn):
        state = read_state(conn)
        if state.live_slot != slot or state.generation != generation:
            raise StoreError("the cached library changed while this sync ran; it was not applied")
        live = LiveSlot(conn, slot)
        deleted = set(deleted)
        upserted = {r.get("rating_key") for r in rows}
        albums = albums or {}
        gone = set(gone)
        tracks = live.albums_of(gone)  # those of them that are cached tracks
        deleted |= tracks.keys()
        for album, cached in live.keys_of_albums(gone - tracks.keys()).items():
            if not cached:
                raise StoreError(f"item {album} Plex deleted is neither a track nor an album of the cache")
            deleted |= cached - upserted  # an album gone: its tracks with it
        for album, cached in live.keys_of_albums(albums).items():
            deleted |= cached - albums[album] - upserted
        added, updated, removed = live.apply(rows, deleted)
        changed = 1 if (added or updated or removed) else 0
        count = state.track_count + added - removed
        conn.execute("UPDATE sync_state SET generation = generation + ?, synced_at = ?, track_count = ?, "
                     "last_error = NULL WHERE id = 1", (changed, synced_at, count))
    return {"added": added, "updated": updated, "removed": removed, "track_count": count,
            "generation": generation + changed}


class InPlaceWriter:
    """The sync worker's handle for an incremental sync in place: reads of the live slot, then one
    `apply` (`apply_changes` on the worker's own connection). A context manager: closed at the
    end, and a storage fault in its block (a full disk, an I/O error) leaves it as a StoreError
    naming the cause and the file, as a full sync's does (`files.storage_error`)."""

    def __init__(self, db_path: Path, slot: str, generation: int):
        self.path, self.slot, self.generation = Path(db_path), slot, generation
        try:
            self._conn = connect_worker(self.path)
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, "opening the cache database") from None
        self.live = LiveSlot(self._conn, slot)

    def __enter__(self) -> "InPlaceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._conn.close()
        if isinstance(exc, sqlite3.Error):
            raise storage_error(exc, self.path, f"changing slot {self.slot} in place") from None

    def apply(self, rows: list[dict], deleted: Iterable[str], synced_at: int) -> dict:
        return apply_changes(self._conn, slot=self.slot, generation=self.generation, rows=rows,
                             deleted=deleted, synced_at=synced_at)
