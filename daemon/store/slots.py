"""Filling a slot: the bulk writer the sync worker uses (part of the store).

The `store` package is the only one that imports sqlite3. A
`SlotWriter` owns its own connection in the sync worker process and fills the
*inactive* slot; the daemon later makes it live with `Store.activate_slot`.
See docs/DESIGN.md, "Snapshots: two slots".
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ..steps import Steps
from ..track import FIELD_NAMES, KEY_COLUMNS, STORED_COLUMNS, RowEncoder, order_by_sql
from . import stats
from .connection import WORKER_CACHE_KIB, StoreError, Transaction, connect_worker, read_state
from .files import storage_error
from .increments import LiveSlot
from .schema import RANK_LIMIT, key_index_ddl, recreate_slot, reopen_slot, slot_index_ddl, slot_tables

log = logging.getLogger(__name__)

# The page cache while rows come in, when the Plex reader process holds its own
# memory beside this one: half the finish's, for the whole sync's peak (docs/PERFORMANCE.md, "Scale").
LOAD_CACHE_KIB = WORKER_CACHE_KIB // 2
# The full-text index is built with a 16 MiB buffer of pending entries (FTS5's 'hashsize',
# 1 MiB by default): fewer, larger segments to merge. At 1M tracks the build took 4.5 s
# instead of 7.6 s, for ~20 MiB more at the finish's peak (the reader is gone by then).
FTS_BUILD_HASH = 16 * 1024 * 1024
FTS_HASH = 1024 * 1024  # FTS5's default, set again for the small writes of incremental syncs


class SlotWriter:
    """Fills one (inactive) slot; synchronous, with its own connection (sync worker process).

    Constructing it drops and recreates the slot's tables (without indexes).
    `write_tracks` inserts rows, one transaction per call; a rating_key written again
    replaces its row (at the first one's place) once `index_keys` has run, as `finish`
    does first. `finish` builds the genre table, the FTS index and the indexes, and
    diffs against the live slot. Numbers are stored as given (column
    affinity turns "123" into 123); the row's genres are kept as a JSON array.
    """

    def __init__(self, db_path: Path, slot: str, *, resume: bool = False):
        """``resume``: keep the tracks a full sync cut short left in the slot (and its progress)."""
        self.slot = slot
        self.t = slot_tables(slot)
        self._encode = RowEncoder()
        self.finish_steps = Steps()  # how long each step of `finish` took (the worker logs it)
        path = self.path = Path(db_path)
        try:
            self._conn = conn = connect_worker(path)
            conn.execute(f"PRAGMA cache_size = -{LOAD_CACHE_KIB}")  # `finish` sorts with the connection's own
            conn.create_function("mediasage_fold", 1, self._encode.folded, deterministic=True)
            with Transaction(conn):
                if read_state(conn).live_slot == slot:
                    raise StoreError(f"slot {slot} is live; a SlotWriter only fills the inactive slot")
                if resume:
                    reopen_slot(conn, slot)
                else:
                    recreate_slot(conn, slot, indexes=False)
                    conn.execute("DELETE FROM slot_progress WHERE slot = ?", (slot,))
        except sqlite3.Error as exc:
            raise storage_error(exc, path, f"preparing slot {slot}") from None
        cols = STORED_COLUMNS
        # Rows are appended, numbered in write order (max id + 1), with no index to keep up:
        # at a million tracks, upserting into a UNIQUE index on rating_key (random inserts,
        # with a 4 MiB page cache) cost ~1.5 s of the load. A key written twice (Plex
        # listed it again pages apart; a resume's overlapping page) is merged when the
        # index is built (`index_keys`). The writer keeps no key of its own (flat memory).
        self._insert = f"INSERT INTO {self.t['tracks']} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        # Once the slot has its key index (an incremental sync's copy of the live slot):
        # a rating key the slot already has replaces its row.
        self._upsert = (self._insert + " ON CONFLICT (rating_key) DO UPDATE SET "
                        + ", ".join(f"{c} = excluded.{c}" for c in cols[1:]))
        self._keyed = False  # the slot has its key index
        self._count: int | None = None  # the slot's tracks, once counted (until the next write)

    def write_tracks(self, rows: list[dict], progress: dict | None = None) -> None:
        """Upsert ``rows`` (CONTRACT track fields, unix-second times, genres: list[str]) in one transaction.

        ``progress`` (a full sync's: job_id, first_started_at, server_id, section_id, settings,
        plex_offset, plex_total) is committed with the rows, so a sync cut short
        can resume exactly after them (`Store.partial_slot`).
        """
        batch: dict[str, tuple] = {}  # a key twice in one batch: the later row wins, at the first one's place
        encode = self._encode
        for row in rows:
            if "rating_key" not in row:
                raise StoreError("a track row has no rating_key")
            values = encode(row)
            batch[values[0]] = values
        self._count = None
        try:
            with Transaction(self._conn) as c:
                c.executemany(self._upsert if self._keyed else self._insert, batch.values())
                if progress is not None:
                    c.execute("INSERT OR REPLACE INTO slot_progress (slot, job_id, first_started_at, server_id, "
                              "settings, plex_offset, plex_total, updated_at, section_id) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (self.slot, progress["job_id"], progress["first_started_at"], progress["server_id"],
                               progress["settings"], progress["plex_offset"], progress.get("plex_total"),
                               int(time.time()), progress.get("section_id")))
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"writing tracks to slot {self.slot}") from None

    # -- incremental sync: start from a copy of the live slot, then apply the changes

    def copy_from(self, live_slot: str) -> int:
        """Copy the live slot's tracks into this (empty) slot, ids kept; returns how many.

        The copy gets its key index at once: ``write_tracks`` then updates the rows whose
        rating_key it already has and adds the others; `finish` rebuilds the genre table
        and indexes from the result.
        """
        src = slot_tables(live_slot)["tracks"]
        cols = "id, " + ", ".join(STORED_COLUMNS)
        self._count = None
        try:
            with Transaction(self._conn) as c:
                copied = c.execute(f"INSERT INTO {self.t['tracks']} ({cols}) SELECT {cols} FROM {src}").rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"copying slot {live_slot} into slot {self.slot}") from None
        self.index_keys()
        return copied

    def index_keys(self) -> None:
        """Build the slot's unique index on rating_key (once; `finish` calls it first).

        A key written more than once is merged first: its last row's values at its first
        row's place (id), as an upsert would have left it. Duplicates are rare (a fresh
        load without them only pays for the index); a resumed load calls this before it
        writes the rest, so its overlapping page is upserted.
        """
        if self._keyed:
            return
        tr = self.t["tracks"]
        try:
            with Transaction(self._conn) as c:
                try:
                    c.execute("SAVEPOINT key_index")
                    c.execute(key_index_ddl(self.slot))
                    c.execute("RELEASE key_index")
                except sqlite3.IntegrityError:  # a key written twice
                    c.execute("ROLLBACK TO key_index")
                    c.execute("RELEASE key_index")
                    c.execute("DROP TABLE IF EXISTS temp.key_twice")
                    c.execute(f"CREATE TEMP TABLE key_twice AS SELECT rating_key, min(id) AS first, max(id) AS last "
                              f"FROM {tr} GROUP BY rating_key HAVING count(*) > 1")
                    c.execute(f"UPDATE {tr} AS t SET {', '.join(f'{col} = l.{col}' for col in STORED_COLUMNS[1:])} "
                              f"FROM temp.key_twice d JOIN {tr} l ON l.id = d.last WHERE t.id = d.first")
                    c.execute(f"DELETE FROM {tr} WHERE id IN (SELECT t.id FROM temp.key_twice d JOIN {tr} t "
                              f"ON t.rating_key = d.rating_key WHERE t.id <> d.first)")
                    c.execute("DROP TABLE temp.key_twice")
                    c.execute(key_index_ddl(self.slot))
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"indexing the tracks of slot {self.slot}") from None
        self._keyed = True

    def slot_view(self) -> LiveSlot:
        """Reads of this slot's tracks as an incremental sync reads the live one (`LiveSlot`: per-album
        counts and keys, through this writer's connection), once its key index is built; its
        stats are not built yet."""
        self.index_keys()
        return LiveSlot(self._conn, self.slot, stats=False)

    def forget_progress(self) -> None:
        """Drop this slot's progress row: the next full sync starts afresh."""
        try:
            with Transaction(self._conn) as c:
                c.execute("DELETE FROM slot_progress WHERE slot = ?", (self.slot,))
        except sqlite3.Error as exc:
            raise StoreError(f"updating slot {self.slot} failed: {exc}") from None

    @property
    def track_count(self) -> int:
        """The slot's tracks: distinct rating keys (so its key index is built first). Counted once
        until the next write (a count(*) reads the whole key index: ~0.1 s at a million tracks)."""
        self.index_keys()
        if self._count is None:
            self._count = self.rows_written
        return self._count

    @property
    def rows_written(self) -> int:
        """The slot's rows so far, a key written twice counted twice until `index_keys`."""
        return self._query(f"SELECT count(*) FROM {self.t['tracks']}")[0][0]

    def delete_tracks(self, rating_keys: Iterable[str]) -> int:
        """Remove the tracks with these rating keys (unknown keys are ignored); returns how many."""
        self.index_keys()
        self._count = None
        try:
            with Transaction(self._conn) as c:
                return c.executemany(f"DELETE FROM {self.t['tracks']} WHERE rating_key = ?",
                                     [(k,) for k in set(rating_keys)]).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"deleting tracks from slot {self.slot}") from None

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"reading slot {self.slot}") from None

    def finish(self, other_slot: str) -> dict:
        """Build the FTS index and indexes, ANALYZE, and diff against ``other_slot`` (the live one).

        Returns ``{"added", "updated", "removed", "track_count"}``. If the other
        slot was never synced, everything counts as added. Each step is its own
        transaction, so the daemon's writes wait at most one step.
        """
        t, o = self.t, slot_tables(other_slot)
        c = self._conn
        step = self.finish_steps = Steps(log)
        self.index_keys()
        step("key index")
        try:
            c.execute(f"PRAGMA cache_size = -{WORKER_CACHE_KIB}")  # the reader is gone: sorts spill less
            with Transaction(c):
                c.execute(f"INSERT INTO {t['ranks']} (rank, track_id) SELECT row_number() OVER "
                          f"(ORDER BY {order_by_sql('artist', 'asc')}) * {RANK_LIMIT} / ({self.track_count} + 1), "
                          f"t.id FROM {t['tracks']} t")
            step("ranks")
            # ranks first (CROSS JOIN: whatever the statistics say): rows in rank order, the FTS rowid
            ranked = f"{t['ranks']} r CROSS JOIN {t['tracks']} t ON t.id = r.track_id"
            with Transaction(c):
                c.execute(f"INSERT INTO {t['genres']} (genre_key, track_id, name, year, user_rating, is_live, "
                          "artist_rank) SELECT mediasage_fold(j.value), t.id, j.value, t.year, t.user_rating, "
                          f"t.is_live, r.rank FROM {ranked}, json_each(t.genres) j")
            step("genre table")
            with Transaction(c):
                c.execute(f"INSERT INTO {t['fts']} ({t['fts']}, rank) VALUES ('hashsize', {FTS_BUILD_HASH})")
                c.execute(f"INSERT INTO {t['fts']} (rowid, {', '.join(KEY_COLUMNS)}) "
                          f"SELECT r.rank, {', '.join('t.' + k for k in KEY_COLUMNS)} FROM {ranked}")
                c.execute(f"INSERT INTO {t['fts']} ({t['fts']}, rank) VALUES ('hashsize', {FTS_HASH})")
            step("full-text index")
            with Transaction(c):
                stats.build(c, t)
            step("stats")
            for sql in slot_index_ddl(self.slot):
                c.execute(sql)
                step("index " + sql.split(" ON ")[0].split()[-1])
            c.execute("PRAGMA analysis_limit = 1000")  # approximate statistics are plenty for the planner
            c.execute(f"ANALYZE {t['tracks']}")
            c.execute(f"ANALYZE {t['genres']}")
            step("analyze")
            with Transaction(c, "BEGIN"):
                count = self.track_count
                added, updated, removed = count, 0, 0
                synced = c.execute("SELECT synced_at FROM sync_state WHERE id = 1").fetchone()[0] is not None
                if synced and other_slot != self.slot:
                    added = c.execute(f"SELECT count(*) FROM {t['tracks']} n WHERE NOT EXISTS "
                                      f"(SELECT 1 FROM {o['tracks']} o WHERE o.rating_key = n.rating_key)"
                                      ).fetchone()[0]
                    removed = c.execute(f"SELECT count(*) FROM {o['tracks']} o WHERE NOT EXISTS "
                                        f"(SELECT 1 FROM {t['tracks']} n WHERE n.rating_key = o.rating_key)"
                                        ).fetchone()[0]
                    differs = " OR ".join(f"n.{f} IS NOT o.{f}" for f in FIELD_NAMES[1:])
                    updated = c.execute(f"SELECT count(*) FROM {t['tracks']} n JOIN {o['tracks']} o "
                                        f"ON o.rating_key = n.rating_key WHERE {differs}").fetchone()[0]
            step("diff")
            c.execute("PRAGMA wal_checkpoint(PASSIVE)")
            step("checkpoint")
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"finishing slot {self.slot}") from None
        return {"added": added, "updated": updated, "removed": removed, "track_count": count}

    def close(self) -> None:
        self._conn.close()
