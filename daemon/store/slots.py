"""Filling a slot: the bulk writer the sync worker uses (part of the store).

The `store` package is the only one that imports sqlite3. A
`SlotWriter` owns its own connection in the sync worker process and fills the
*inactive* slot; the daemon later makes it live with `Store.activate_slot`.
See docs/DESIGN.md, "Snapshots: two slots".
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ..track import ALBUM_SQL, FIELD_NAMES, KEY_COLUMNS, STORED_COLUMNS, RowEncoder, order_by_sql
from .connection import WAL_SIZE_LIMIT, StoreError, Transaction, check_version, connect, read_state
from .files import storage_error
from .schema import SCHEMA_VERSION, recreate_slot, slot_index_ddl, slot_tables

log = logging.getLogger(__name__)


class _Steps:
    """Logs how long each step of a long operation took (at debug level)."""

    def __init__(self, logger: logging.Logger):
        self._log = logger
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self._log.debug("%s: %.0f ms", name, (now - self._last) * 1000)
        self._last = now

def build_stats(c: sqlite3.Connection, t: dict[str, str]) -> None:
    """Fill the slot's stats tables: library.stats of the whole library and of each single genre.

    One pass groups the tracks by (genres, artist, album, decade) into a temporary
    table far smaller than the library; each genre's figures are sums over the
    groups whose genre list holds it (a track lists each genre key once).
    """
    c.execute("DROP TABLE IF EXISTS temp.stat_groups")
    c.execute(f"CREATE TEMP TABLE stat_groups AS SELECT t.genres AS genres, t.artist_key AS artist, "
              f"{ALBUM_SQL} AS album, t.year / 10 * 10 AS decade, count(*) AS n, "
              f"coalesce(sum(t.duration_ms), 0) AS duration, sum(t.is_live) AS live "
              f"FROM {t['tracks']} t GROUP BY 1, 2, 3, 4")
    each = "temp.stat_groups s, json_each(s.genres) j"
    totals = ("sum(s.n), count(DISTINCT s.artist), count(DISTINCT s.album), sum(s.duration), "
              "coalesce(sum(s.live), 0)")
    c.execute(f"INSERT INTO {t['stats']} SELECT '', {totals} FROM temp.stat_groups s HAVING count(*) > 0")
    c.execute(f"INSERT INTO {t['stats']} SELECT mediasage_fold(j.value), {totals} FROM {each} GROUP BY 1")
    c.execute(f"INSERT INTO {t['facets']} SELECT '', 'd', s.decade, NULL, sum(s.n) FROM temp.stat_groups s "
              "WHERE s.decade IS NOT NULL GROUP BY s.decade")
    c.execute(f"INSERT INTO {t['facets']} SELECT mediasage_fold(j.value), 'd', s.decade, NULL, sum(s.n) "
              f"FROM {each} WHERE s.decade IS NOT NULL GROUP BY 1, 3")
    c.execute(f"INSERT INTO {t['facets']} SELECT mediasage_fold(j.value), 'g', mediasage_fold(k.value), "
              f"min(k.value), sum(s.n) FROM {each}, json_each(s.genres) k GROUP BY 1, 3")
    c.execute(f"INSERT INTO {t['facets']} SELECT '', 'g', mediasage_fold(j.value), min(j.value), sum(s.n) "
              f"FROM {each} GROUP BY 3")
    c.execute("DROP TABLE temp.stat_groups")


class SlotWriter:
    """Fills one (inactive) slot; synchronous, with its own connection (sync worker process).

    Constructing it drops and recreates the slot's tables (without indexes).
    `write_tracks` inserts rows (a rating_key seen before replaces its row), one
    transaction per call; `finish` builds the genre table, the FTS index and the
    indexes, and diffs against the live slot. Numbers are stored as given (column
    affinity turns "123" into 123); the row's genres are kept as a JSON array.
    """

    def __init__(self, db_path: Path, slot: str):
        self.slot = slot
        self.t = slot_tables(slot)
        self._encode = RowEncoder()
        path = self.path = Path(db_path)
        try:
            self._conn = conn = connect(str(path))
            if check_version(conn, path) != SCHEMA_VERSION:
                raise StoreError(f"cache database {path} is not at schema version {SCHEMA_VERSION}; "
                                 "the daemon migrates it at startup")
            # A modest page cache and on-disk sort files keep the worker's memory
            # small (the whole daemon stays under ~150 MB); speed barely changes.
            for pragma in ("synchronous = NORMAL", "wal_autocheckpoint = 20000", "cache_size = -8192", "temp_store = FILE", "threads = 2", f"journal_size_limit = {WAL_SIZE_LIMIT}"):
                conn.execute(f"PRAGMA {pragma}")
            conn.create_function("mediasage_fold", 1, self._encode.folded, deterministic=True)
            with Transaction(conn):
                if read_state(conn).live_slot == slot:
                    raise StoreError(f"slot {slot} is live; a SlotWriter only fills the inactive slot")
                recreate_slot(conn, slot, indexes=False)
        except sqlite3.Error as exc:
            raise storage_error(exc, path, f"preparing slot {slot}") from None
        cols = STORED_COLUMNS
        # A rating key the slot already has replaces its row: the UNIQUE index on
        # rating_key finds it, so the writer keeps no key of its own (flat memory
        # at any library size). New rows are numbered in write order (max id + 1).
        self._upsert = (f"INSERT INTO {self.t['tracks']} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                        f"ON CONFLICT (rating_key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols[1:])}")

    def write_tracks(self, rows: list[dict]) -> None:
        """Upsert ``rows`` (CONTRACT track fields, unix-second times, genres: list[str]) in one transaction."""
        batch: dict[str, tuple] = {}  # a key twice in one batch: the later row wins, at the first one's place
        encode = self._encode
        for row in rows:
            if "rating_key" not in row:
                raise StoreError("a track row has no rating_key")
            values = encode(row)
            batch[values[0]] = values
        try:
            with Transaction(self._conn) as c:
                c.executemany(self._upsert, batch.values())
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"writing tracks to slot {self.slot}") from None

    # -- incremental sync: start from a copy of the live slot, then apply the changes

    def copy_from(self, live_slot: str) -> int:
        """Copy the live slot's tracks into this (empty) slot, ids kept; returns how many.

        ``write_tracks`` then updates the rows whose rating_key it already has and
        adds the others; `finish` rebuilds the genre table and indexes from the result.
        """
        src = slot_tables(live_slot)["tracks"]
        cols = "id, " + ", ".join(STORED_COLUMNS)
        try:
            with Transaction(self._conn) as c:
                return c.execute(f"INSERT INTO {self.t['tracks']} ({cols}) SELECT {cols} FROM {src}").rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"copying slot {live_slot} into slot {self.slot}") from None

    @property
    def track_count(self) -> int:
        return self._query(f"SELECT count(*) FROM {self.t['tracks']}")[0][0]

    def delete_tracks(self, rating_keys: Iterable[str]) -> int:
        """Remove the tracks with these rating keys (unknown keys are ignored); returns how many."""
        try:
            with Transaction(self._conn) as c:
                return c.executemany(f"DELETE FROM {self.t['tracks']} WHERE rating_key = ?",
                                     [(k,) for k in set(rating_keys)]).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"deleting tracks from slot {self.slot}") from None

    # -- reconciling with Plex's full key list (incremental sync), without holding it

    def begin_listing(self) -> None:
        """Start recording the keys Plex lists; `delete_unlisted` then removes every other track."""
        self._query("CREATE TEMP TABLE IF NOT EXISTS listed (rating_key TEXT PRIMARY KEY) WITHOUT ROWID")
        self._query("DELETE FROM temp.listed")

    def list_keys(self, rating_keys: list[str]) -> set[str]:
        """Record ``rating_keys`` as listed by Plex; returns those this slot does not hold."""
        try:
            with Transaction(self._conn) as c:
                c.executemany("INSERT OR IGNORE INTO temp.listed VALUES (?)", [(k,) for k in rating_keys])
                have = {r[0] for r in c.execute(f"SELECT rating_key FROM {self.t['tracks']} WHERE rating_key IN "
                                                "(SELECT value FROM json_each(?))", (json.dumps(rating_keys),))}
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"listing keys for slot {self.slot}") from None
        return set(rating_keys) - have

    def delete_unlisted(self) -> int:
        """Remove the tracks whose keys were not listed since `begin_listing`; returns how many."""
        try:
            with Transaction(self._conn) as c:
                n = c.execute(f"DELETE FROM {self.t['tracks']} WHERE rating_key NOT IN "
                              "(SELECT rating_key FROM temp.listed)").rowcount
                c.execute("DELETE FROM temp.listed")
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, f"reconciling slot {self.slot}") from None
        return n

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
        step = _Steps(log)
        try:
            with Transaction(c):
                c.execute(f"INSERT INTO {t['ranks']} (rank, track_id) SELECT row_number() OVER "
                          f"(ORDER BY {order_by_sql('artist', 'asc')}), t.id FROM {t['tracks']} t")
            step("ranks")
            ranked = f"{t['ranks']} r JOIN {t['tracks']} t ON t.id = r.track_id"
            with Transaction(c):
                c.execute(f"INSERT INTO {t['genres']} (genre_key, track_id, name, year, user_rating, is_live, "
                          "artist_rank) SELECT mediasage_fold(j.value), t.id, j.value, t.year, t.user_rating, "
                          f"t.is_live, r.rank FROM {ranked}, json_each(t.genres) j")
            step("genre table")
            with Transaction(c):
                c.execute(f"INSERT INTO {t['fts']} (rowid, {', '.join(KEY_COLUMNS)}) "
                          f"SELECT r.rank, {', '.join('t.' + k for k in KEY_COLUMNS)} FROM {ranked}")
            step("full-text index")
            with Transaction(c):
                build_stats(c, t)
            step("stats")
            for sql in slot_index_ddl(self.slot):
                c.execute(sql)
                step(sql.split()[2])
            c.execute("PRAGMA analysis_limit = 1000")  # approximate statistics are plenty for the planner
            c.execute(f"ANALYZE {t['tracks']}")
            c.execute(f"ANALYZE {t['genres']}")
            step("analyze")
            with Transaction(c, "BEGIN"):
                count = c.execute(f"SELECT count(*) FROM {t['tracks']}").fetchone()[0]
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
