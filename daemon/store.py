"""The SQLite cache: schema and migrations, the writer thread, read-only readers, slots.

The only module that imports sqlite3. The daemon's event loop never waits on
SQLite: writes run on one writer thread that owns the single read-write
connection, reads on a small pool of threads with read-only connections, each
request in one read transaction (so it sees one snapshot: the slot named by
``sync_state`` and that slot's tables). The sync worker (a child process) fills
the inactive slot through `SlotWriter` with its own connection.
See docs/DESIGN.md, "Snapshots: two slots" and "Schema".
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from .query import fold
from .timeutil import now

T = TypeVar("T")

SLOTS = ("a", "b")
BUSY_TIMEOUT_S = 30.0
APPLICATION_ID = 0x4D534731  # "MSG1": marks the file as a mediasaged cache

__all__ = ["Store", "SlotWriter", "ReadContext", "State", "StoreError", "NotSynced", "SCHEMA_VERSION",
           "inactive_slot", "slot_tables"]


class StoreError(Exception):
    """The database cannot be used (message says why and names the file)."""


class NotSynced(Exception):
    """A read needs a completed sync and there has never been one."""


@dataclass(frozen=True)
class State:
    live_slot: str
    generation: int
    synced_at: int | None
    plex_server_id: str | None
    plex_server_name: str | None
    sync_duration_ms: int | None
    track_count: int
    last_error: str | None


_STATE_SQL = ("SELECT live_slot, generation, synced_at, plex_server_id, plex_server_name, sync_duration_ms, "
              "track_count, last_error FROM sync_state WHERE id = 1")


def slot_tables(slot: str) -> dict[str, str]:
    if slot not in SLOTS:
        raise ValueError(f"bad slot {slot!r}")
    return {"tracks": f"tracks_{slot}", "genres": f"track_genres_{slot}", "fts": f"tracks_fts_{slot}"}


def inactive_slot(state: State) -> str:
    return "b" if state.live_slot == "a" else "a"


# --------------------------------------------------------------------------- schema

# Per-slot DDL is always the *current* shape: SlotWriter rebuilds a slot from it
# on every full sync. A migration that changes a slot's shape simply calls
# _recreate_slot() for both slots and forgets the sync (it is only a cache).
TRACK_FIELDS = ("rating_key", "title", "artist", "album_artist", "album", "album_rating_key", "duration_ms",
                "year", "user_rating", "is_live", "track_number", "disc_number", "view_count", "last_viewed_at",
                "added_at", "updated_at", "genres")
KEY_FIELDS = ("title_key", "artist_key", "album_artist_key", "album_key")


def _slot_table_ddl(slot: str) -> list[str]:
    t = slot_tables(slot)
    return [
        f"""CREATE TABLE {t['tracks']} (
  id INTEGER PRIMARY KEY, rating_key TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL, artist TEXT NOT NULL, album_artist TEXT NOT NULL, album TEXT NOT NULL,
  album_rating_key TEXT, duration_ms INTEGER, year INTEGER, user_rating REAL,
  is_live INTEGER NOT NULL, track_number INTEGER, disc_number INTEGER,
  view_count INTEGER NOT NULL DEFAULT 0,
  last_viewed_at INTEGER, added_at INTEGER, updated_at INTEGER,
  genres TEXT NOT NULL,
  title_key TEXT NOT NULL, artist_key TEXT NOT NULL, album_artist_key TEXT NOT NULL, album_key TEXT NOT NULL)""",
        f"""CREATE TABLE {t['genres']} (
  genre_key TEXT NOT NULL, track_id INTEGER NOT NULL, name TEXT NOT NULL,
  PRIMARY KEY (genre_key, track_id)) WITHOUT ROWID""",
        f"CREATE INDEX {t['genres']}_track ON {t['genres']}(track_id)",
        # The FTS index covers the folded *_key columns, so NFD input, ß/ss and
        # the like match the same way as the casefolded query words.
        f"""CREATE VIRTUAL TABLE {t['fts']} USING fts5(
  title_key, artist_key, album_artist_key, album_key,
  content='{t['tracks']}', content_rowid='id', columnsize=0,
  tokenize='unicode61 remove_diacritics 2')""",
    ]


def _slot_index_ddl(slot: str) -> list[str]:
    """Indexes built after the bulk load. The last one marks a finished slot."""
    tr = slot_tables(slot)["tracks"]
    cols = {
        "artist": "artist_key, album_key, disc_number, track_number",
        "album_artist": "album_artist_key",
        "album": "album_key, album_artist_key, disc_number, track_number",
        "year": "year, user_rating, is_live",
        "rating": "user_rating",
        "added": "added_at",
        "updated": "updated_at",
        "duration": "duration_ms",
        "title": "title_key",
    }
    return [f"CREATE INDEX {tr}_{name} ON {tr}({c})" for name, c in cols.items()]


def _finished_marker(slot: str) -> str:
    return _slot_index_ddl(slot)[-1].split()[2]


def _drop_slot(conn: sqlite3.Connection, slot: str) -> None:
    t = slot_tables(slot)
    for name in (t["fts"], t["genres"], t["tracks"]):
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def _recreate_slot(conn: sqlite3.Connection, slot: str, *, indexes: bool) -> None:
    _drop_slot(conn, slot)
    for sql in _slot_table_ddl(slot) + (_slot_index_ddl(slot) if indexes else []):
        conn.execute(sql)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("""CREATE TABLE sync_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  live_slot TEXT NOT NULL DEFAULT 'a' CHECK (live_slot IN ('a','b')),
  generation INTEGER NOT NULL DEFAULT 0,
  synced_at INTEGER, plex_server_id TEXT, plex_server_name TEXT, sync_duration_ms INTEGER,
  track_count INTEGER NOT NULL DEFAULT 0, last_error TEXT)""")
    conn.execute("INSERT INTO sync_state (id) VALUES (1)")
    conn.execute("""CREATE TABLE sync_jobs (
  job_id INTEGER PRIMARY KEY, state TEXT NOT NULL, mode TEXT NOT NULL, trigger TEXT NOT NULL,
  phase TEXT, current INTEGER NOT NULL DEFAULT 0, total INTEGER,
  started_at INTEGER NOT NULL, finished_at INTEGER,
  added INTEGER, updated INTEGER, removed INTEGER, error TEXT)""")
    conn.execute("CREATE INDEX sync_jobs_state ON sync_jobs(state)")
    for slot in SLOTS:
        _recreate_slot(conn, slot, indexes=True)


# Forward migrations: MIGRATIONS[i] takes user_version i to i + 1, inside one
# write transaction. Adding v2 = appending one function.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def _check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"cache database {path} has schema version {version}, newer than this mediasaged "
                         f"understands ({SCHEMA_VERSION}); upgrade mediasaged or remove the file")
    if app_id not in (0, APPLICATION_ID) or (version == 0 and conn.execute(
            "SELECT count(*) FROM sqlite_master").fetchone()[0]):
        raise StoreError(f"{path} is an SQLite database but not a mediasaged cache; refusing to touch it")
    return version


class _Tx:
    """``with _Tx(conn):`` = BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

    def __init__(self, conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"):
        self.conn, self.begin = conn, begin

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _read_state(conn: sqlite3.Connection) -> State:
    row = conn.execute(_STATE_SQL).fetchone()
    if row is None:
        raise StoreError("sync_state row is missing")
    return State(*row)


# --------------------------------------------------------------------------- reads


class ReadContext:
    """What a read function gets: the snapshot's state, the live slot's tables, ``run``."""

    def __init__(self, conn: sqlite3.Connection, state: State):
        self._conn = conn
        self.state = state
        self.tables = slot_tables(state.live_slot)

    def run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        for name, table in self.tables.items():
            sql = sql.replace("{" + name + "}", table)
        return self._conn.execute(sql, tuple(params)).fetchall()


JOB_COLUMNS = ("job_id", "state", "mode", "trigger", "phase", "current", "total", "started_at", "finished_at",
               "added", "updated", "removed", "error")
_JOB_UPDATABLE = frozenset(JOB_COLUMNS) - {"job_id"}


class Store:
    """The daemon's handle on the cache database (see the module docstring)."""

    def __init__(self, path: Path, readers: int = 4):
        self.path = Path(path)
        self._nreaders = max(1, int(readers))
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._rconns: list[sqlite3.Connection] = []
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    # -- lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(self._nreaders, thread_name_prefix="store-reader")
        try:
            await loop.run_in_executor(self._writer, self._open_sync)
        except BaseException:
            await self.close()
            raise

    def _open_sync(self) -> None:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of the cache database {path}: {exc.strerror}") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreError(f"the directory of the cache database {path} is not writable")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"the cache database {path} is not readable and writable")
        try:
            conn = self._wconn = _connect(str(path))
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise StoreError(f"cannot put the cache database {path} in WAL mode")
            conn.execute("PRAGMA synchronous = NORMAL")
            version = _check_version(conn, path)
            for v in range(version, SCHEMA_VERSION):
                with _Tx(conn):
                    MIGRATIONS[v](conn)
                    conn.execute(f"PRAGMA user_version = {v + 1}")
            _read_state(conn)
            uri = path.resolve().as_uri() + "?mode=ro"
            for _ in range(self._nreaders):
                rconn = _connect(uri, uri=True)
                rconn.execute("PRAGMA mmap_size = 268435456")
                rconn.execute("PRAGMA cache_size = -16000")
                self._rconns.append(rconn)
                self._idle.put(rconn)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use the cache database {path}: {exc}") from None

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        loop = asyncio.get_running_loop()
        for ex in (readers, writer):
            if ex is not None:
                await loop.run_in_executor(None, ex.shutdown, True)
        for conn in self._rconns + ([self._wconn] if self._wconn else []):
            conn.close()
        self._rconns, self._wconn = [], None
        self._idle = queue.SimpleQueue()

    # -- plumbing

    async def _on(self, executor: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any) -> T:
        if executor is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                with _Tx(self._wconn) as conn:
                    return fn(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"cache database write failed: {exc}") from None
        return await self._on(self._writer, run)

    def _read_sync(self, fn: Callable[[ReadContext], T], require_synced: bool) -> T:
        conn = self._idle.get()
        try:
            with _Tx(conn, "BEGIN"):
                state = _read_state(conn)
                if require_synced and state.synced_at is None:
                    raise NotSynced("the library has never been synced")
                return fn(ReadContext(conn, state))
        except sqlite3.Error as exc:
            raise StoreError(f"cache database read failed: {exc}") from None
        finally:
            self._idle.put(conn)

    # -- reads

    async def read(self, fn: Callable[[ReadContext], T], *, require_synced: bool = True) -> T:
        """Run ``fn(ctx)`` on a reader thread inside one read transaction (one snapshot)."""
        return await self._on(self._readers, self._read_sync, fn, require_synced)

    async def state(self) -> State:
        return await self.read(lambda ctx: ctx.state, require_synced=False)

    # -- jobs

    async def create_job(self, *, mode: str, trigger: str, started_at: int) -> int:
        return await self._write(lambda c: c.execute(
            "INSERT INTO sync_jobs (state, mode, trigger, phase, started_at) VALUES ('running', ?, ?, 'starting', ?)",
            (mode, trigger, started_at)).lastrowid)

    async def update_job(self, job_id: int, **fields: Any) -> None:
        bad = set(fields) - _JOB_UPDATABLE
        if bad:
            raise ValueError(f"unknown job fields: {sorted(bad)}")
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            await self._write(lambda c: c.execute(f"UPDATE sync_jobs SET {sets} WHERE job_id = ?",
                                                  (*fields.values(), job_id)))

    async def get_job(self, job_id: int | None = None) -> dict | None:
        """The job ``job_id``, or the newest one; None if there is none."""
        cols = ", ".join(JOB_COLUMNS)
        if job_id is None:
            sql, args = f"SELECT {cols} FROM sync_jobs ORDER BY job_id DESC LIMIT 1", ()
        else:
            sql, args = f"SELECT {cols} FROM sync_jobs WHERE job_id = ?", (job_id,)
        rows = await self.read(lambda ctx: ctx.run(sql, args), require_synced=False)
        return dict(zip(JOB_COLUMNS, rows[0])) if rows else None

    async def list_jobs(self, limit: int = 20) -> list[dict]:
        """The newest ``limit`` jobs, newest first."""
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM sync_jobs ORDER BY job_id DESC LIMIT ?"
        rows = await self.read(lambda ctx: ctx.run(sql, (max(0, int(limit)),)), require_synced=False)
        return [dict(zip(JOB_COLUMNS, r)) for r in rows]

    async def fail_interrupted_jobs(self, message: str) -> int:
        """Mark jobs a dead daemon left 'running' as failed; returns how many."""
        return await self._write(lambda c: c.execute(
            "UPDATE sync_jobs SET state = 'failed', error = ?, finished_at = coalesce(finished_at, ?) "
            "WHERE state = 'running'", (message, now())).rowcount)

    # -- snapshot

    inactive_slot = staticmethod(inactive_slot)

    async def activate_slot(self, slot: str, *, server_id: str | None, server_name: str | None, synced_at: int,
                            duration_ms: int | None, track_count: int, changed: bool) -> State:
        """Make ``slot`` (finished by a SlotWriter) the live one, in one short transaction.

        ``generation`` goes up by one if ``changed`` -- or if the cache had never
        been synced (readers go from not_synced to a library).
        """
        slot_tables(slot)
        marker = _finished_marker(slot)

        def tx(c: sqlite3.Connection) -> State:
            if not c.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (marker,)).fetchone():
                raise StoreError(f"slot {slot} was not finished; refusing to make it live")
            c.execute("UPDATE sync_state SET generation = generation + (CASE WHEN ? OR synced_at IS NULL "
                      "THEN 1 ELSE 0 END), live_slot = ?, synced_at = ?, "
                      "plex_server_id = coalesce(?, plex_server_id), plex_server_name = coalesce(?, plex_server_name), "
                      "sync_duration_ms = ?, track_count = ?, last_error = NULL WHERE id = 1",
                      (bool(changed), slot, synced_at, server_id, server_name, duration_ms, track_count))
            return _read_state(c)
        return await self._write(tx)

    async def record_error(self, message: str | None) -> None:
        await self._write(lambda c: c.execute("UPDATE sync_state SET last_error = ? WHERE id = 1", (message,)))

    async def wipe(self, *, server_id: str | None, server_name: str | None) -> None:
        """A different Plex server: empty the live slot and forget the sync."""
        def tx(c: sqlite3.Connection) -> None:
            _recreate_slot(c, _read_state(c).live_slot, indexes=True)
            c.execute("UPDATE sync_state SET synced_at = NULL, track_count = 0, generation = generation + 1, "
                      "sync_duration_ms = NULL, plex_server_id = ?, plex_server_name = ? WHERE id = 1",
                      (server_id, server_name))
        await self._write(tx)


# --------------------------------------------------------------------------- the sync worker's writer


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


class SlotWriter:
    """Fills one (inactive) slot; synchronous, with its own connection (sync worker process).

    Constructing it drops and recreates the slot's tables (without the search
    indexes). `write_tracks` upserts by rating_key, one transaction per call;
    `finish` builds the indexes and the FTS index and diffs against the live slot.
    """

    def __init__(self, db_path: Path, slot: str):
        self.slot = slot
        self.t = slot_tables(slot)
        self._ids: dict[str, int] = {}
        self._next_id = 1
        path = Path(db_path)
        try:
            self._conn = conn = _connect(str(path))
            if _check_version(conn, path) != SCHEMA_VERSION:
                raise StoreError(f"cache database {path} is not at schema version {SCHEMA_VERSION}; "
                                 "the daemon migrates it at startup")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 20000")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA temp_store = MEMORY")
            with _Tx(conn):
                if _read_state(conn).live_slot == slot:
                    raise StoreError(f"slot {slot} is live; a SlotWriter only fills the inactive slot")
                _recreate_slot(conn, slot, indexes=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare slot {slot} in {path}: {exc}") from None
        cols = TRACK_FIELDS + KEY_FIELDS
        self._insert = (f"INSERT INTO {self.t['tracks']} (id, {', '.join(cols)}) "
                        f"VALUES ({', '.join('?' * (len(cols) + 1))})")
        self._update = (f"UPDATE {self.t['tracks']} SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?")

    @staticmethod
    def _values(row: dict) -> tuple[tuple, list[tuple[str, str]]]:
        names: dict[str, str] = {}
        for g in row.get("genres") or ():
            g = _text(g).strip()
            if g:
                names.setdefault(fold(g), g)
        genres = sorted(names.items())
        title, artist = _text(row.get("title")), _text(row.get("artist"))
        album_artist, album = _text(row.get("album_artist")), _text(row.get("album"))
        rating = row.get("user_rating")
        album_rk = row.get("album_rating_key")
        values = (
            str(row["rating_key"]), title, artist, album_artist, album,
            None if album_rk is None else str(album_rk),
            _opt_int(row.get("duration_ms")), _opt_int(row.get("year")),
            None if rating is None else float(rating), 1 if row.get("is_live") else 0,
            _opt_int(row.get("track_number")), _opt_int(row.get("disc_number")),
            int(row.get("view_count") or 0), _opt_int(row.get("last_viewed_at")),
            _opt_int(row.get("added_at")), _opt_int(row.get("updated_at")),
            json.dumps([n for _, n in genres], ensure_ascii=False),
            fold(title), fold(artist), fold(album_artist), fold(album),
        )
        return values, genres

    def write_tracks(self, rows: list[dict]) -> None:
        """Insert or replace ``rows`` (CONTRACT track fields, unix-second times, genres: list[str])."""
        new: dict[int, tuple] = {}
        changed: dict[int, tuple] = {}
        genres: dict[int, list[tuple[str, str]]] = {}
        for row in rows:
            values, g = self._values(row)
            tid = self._ids.get(values[0])
            if tid is None:
                tid = self._ids[values[0]] = self._next_id
                self._next_id += 1
                new[tid] = values
            elif tid in new:
                new[tid] = values
            else:
                changed[tid] = values
            genres[tid] = g
        try:
            with _Tx(self._conn) as c:
                c.executemany(self._insert, ((tid, *v) for tid, v in new.items()))
                if changed:
                    c.executemany(self._update, ((*v, tid) for tid, v in changed.items()))
                    c.executemany(f"DELETE FROM {self.t['genres']} WHERE track_id = ?", ((t,) for t in changed))
                c.executemany(f"INSERT INTO {self.t['genres']} (genre_key, track_id, name) VALUES (?, ?, ?)",
                              ((k, tid, name) for tid, g in genres.items() for k, name in g))
        except sqlite3.Error as exc:
            raise StoreError(f"writing tracks to slot {self.slot} failed: {exc}") from None

    def finish(self, other_slot: str) -> dict:
        """Build the FTS index and indexes, ANALYZE, and diff against ``other_slot`` (the live one).

        Returns ``{"added", "updated", "removed", "track_count"}``. If the other
        slot was never synced, everything counts as added. Each step is its own
        transaction, so the daemon's writes wait at most one step.
        """
        t, o = self.t, slot_tables(other_slot)
        c = self._conn
        try:
            c.execute(f"INSERT INTO {t['fts']}({t['fts']}) VALUES ('rebuild')")
            for sql in _slot_index_ddl(self.slot):
                c.execute(sql)
            c.execute(f"ANALYZE {t['tracks']}")
            c.execute(f"ANALYZE {t['genres']}")
            with _Tx(c, "BEGIN"):
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
                    differs = " OR ".join(f"n.{f} IS NOT o.{f}" for f in TRACK_FIELDS[1:])
                    updated = c.execute(f"SELECT count(*) FROM {t['tracks']} n JOIN {o['tracks']} o "
                                        f"ON o.rating_key = n.rating_key WHERE {differs}").fetchone()[0]
            c.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise StoreError(f"finishing slot {self.slot} failed: {exc}") from None
        return {"added": added, "updated": updated, "removed": removed, "track_count": count}

    def close(self) -> None:
        self._conn.close()
