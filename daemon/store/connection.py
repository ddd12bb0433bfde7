"""SQLite plumbing shared by the daemon's store and the sync worker's slot writer:
opening a connection, checking the file is ours, transactions, the one-row sync state."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .schema import APPLICATION_ID, SCHEMA_VERSION

BUSY_TIMEOUT_S = 30.0
WORKER_CACHE_KIB = 8192  # the sync worker's page cache (and so its sort buffers)
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL is truncated back to this after a checkpoint


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
    sync_settings: str | None = None  # what the live library was built with (see Syncer)
    # the start of the last sync that read every change Plex made since the one before it (a
    # full sync, an incremental one reading Plex's listings or counts; not a change set applied
    # from notifications alone): where the next incremental sync starts reading
    changes_through: int | None = None
    # the key of the Plex library section the live library was read from (`plex.library` names
    # it): Plex's notifications name their section, and only this one's are the cache's
    plex_section_id: str | None = None


_STATE_SQL = ("SELECT live_slot, generation, synced_at, plex_server_id, plex_server_name, sync_duration_ms, "
              "track_count, last_error, sync_settings, changes_through, plex_section_id FROM sync_state WHERE id = 1")


def inactive_slot(state: State) -> str:
    return "b" if state.live_slot == "a" else "a"


def connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def check_version(conn: sqlite3.Connection, path: Path) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"cache database {path} has schema version {version}, newer than this mediasaged "
                         f"understands ({SCHEMA_VERSION}); upgrade mediasaged or remove the file")
    if app_id not in (0, APPLICATION_ID) or (version == 0 and conn.execute(
            "SELECT count(*) FROM sqlite_master").fetchone()[0]):
        raise StoreError(f"{path} is an SQLite database but not a mediasaged cache; refusing to touch it")
    return version


class Transaction:
    """``with Transaction(conn):`` = BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

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


def read_state(conn: sqlite3.Connection) -> State:
    row = conn.execute(_STATE_SQL).fetchone()
    if row is None:
        raise StoreError("sync_state row is missing")
    return State(*row)


def connect_worker(path: Path) -> sqlite3.Connection:
    """The sync worker's own read-write connection to a migrated cache (raises sqlite3.Error, StoreError)."""
    if os.path.exists(f"{path}-shm") and not os.path.exists(f"{path}-wal"):
        # The daemon holds the database open (so its WAL exists) while a worker runs: someone
        # deleted it. SQLite would start a new WAL here beside the daemon's deleted one (whose
        # frames, once checkpointed, no longer fail the open); the daemon recovers it between syncs.
        raise StoreError(f"opening the cache: the write-ahead log {path}-wal was removed while in use")
    conn = connect(str(path))
    if check_version(conn, path) != SCHEMA_VERSION:
        conn.close()
        raise StoreError(f"cache database {path} is not at schema version {SCHEMA_VERSION}; "
                         "the daemon migrates it at startup")
    # A modest page cache and on-disk sort files keep the worker's memory
    # small (the whole daemon stays under ~150 MB); speed barely changes.
    for pragma in ("synchronous = NORMAL", "wal_autocheckpoint = 20000", f"cache_size = -{WORKER_CACHE_KIB}",
                   "temp_store = FILE", f"threads = {sorter_threads()}", f"journal_size_limit = {WAL_SIZE_LIMIT}"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def sorter_threads() -> int:
    """Helper threads for SQLite's sorts (index builds, GROUP BY): one per CPU this process may
    use besides its own, at most 2. The sync worker pinned to one CPU (``sync.separate_cpus``)
    gets none: there they only took turns with it, and each holds a sort buffer of its own
    (at 1M tracks the finish took 41 s with 2 and 26 s with none, 17 MiB less at its peak)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(0, min(2, cpus - 1))
