"""The daemon's handle on the SQLite cache: the writer thread, read-only readers, jobs, slot flips.

Inside the `store` package (the only importer of sqlite3). The daemon's event loop never waits on
SQLite: writes run on one writer thread that owns the single read-write
connection, reads on a small pool of threads with read-only connections, each
request in one read transaction (so it sees one snapshot: the slot named by
``sync_state`` and that slot's tables). One more reader thread of its own
serves quick reads (a job row) so that status calls never queue behind
queries, and the sync state row is kept in memory (`state()`): only this class
writes it, always through ``_write``, which reloads it. Query readers run at
``READER_NICENESS``. The sync worker (a child process) fills the inactive slot
through `SlotWriter` with its own connection.
See docs/DESIGN.md, "Snapshots: two slots" and "Schema".
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from .connection import (WAL_SIZE_LIMIT, NotSynced, State, StoreError, Transaction, check_version, connect,
                         read_state)
from .files import CORRUPT, check_directory, move_aside, primary_code, secure, storage_error, wal_removed
from .increments import apply_changes
from .reads import ReadContext, SnapshotMemo
from .schema import MIGRATIONS, SCHEMA_VERSION, finished_marker, slot_tables
from ..syncjob import COLUMNS as JOB_COLUMNS, SyncJob
from ..timeutil import iso, now

T = TypeVar("T")
log = logging.getLogger(__name__)


__all__ = ["Store"]


_JOB_DATA = JOB_COLUMNS[1:]  # all but job_id, which SQLite assigns
assert JOB_COLUMNS[0] == "job_id"


READER_NICENESS = 10  # query threads yield the CPU to the event loop (status calls, framing); README "Limits"


def _yield_cpu() -> None:
    """Run this reader thread at ``READER_NICENESS`` (Linux: niceness is per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), READER_NICENESS)
    except (AttributeError, OSError):
        pass


class Store:
    """The daemon's handle on the cache database (see the module docstring)."""

    def __init__(self, path: Path, readers: int = 4, group: int | None = None):
        self.path = Path(path)
        self.group = group  # the database files' group (mode 0640), else mode 0600
        self.moved_aside: Path | None = None  # where open() put a corrupt database file
        self._nreaders = max(1, int(readers))
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._quick: ThreadPoolExecutor | None = None
        self._rconns: list[sqlite3.Connection] = []
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._quick_idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._memo = SnapshotMemo()
        self._state: State | None = None  # the sync_state row as the last write left it
        self._future_start_logged: int | None = None  # (`changes_since` says so once per such start)

    @property
    def readers(self) -> int:
        """Reader threads for queries (the quick reader not counted)."""
        return self._nreaders

    # -- lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self._readers = ThreadPoolExecutor(self._nreaders, thread_name_prefix="store-reader",
                                           initializer=_yield_cpu)
        self._quick = ThreadPoolExecutor(1, thread_name_prefix="store-quick")
        try:
            await loop.run_in_executor(self._writer, self._open_sync)
        except BaseException:
            await self.close()
            raise

    def _open_sync(self) -> None:
        path = self.path
        try:
            path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of the cache database {path}: {exc.strerror}") from None
        check_directory(path.parent)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreError(f"the directory of the cache database {path} is not writable")
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"the cache database {path} is not readable and writable")
        try:
            self._connect_all()
        except sqlite3.Error as exc:
            self._close_connections()
            if primary_code(exc) not in CORRUPT:
                raise storage_error(exc, path, "cannot use the cache database") from None
            # A cache can be rebuilt from Plex: keep the bad file for a post-mortem, start afresh.
            self.moved_aside = move_aside(path)
            log.error("the cache database %s is unusable (%s); moved it to %s, a full sync rebuilds the cache",
                      path, exc, self.moved_aside)
            try:
                self._connect_all()
            except sqlite3.Error as exc:
                self._close_connections()
                raise storage_error(exc, path, "cannot create a new cache database") from None

    def _connect_all(self) -> None:
        path = self.path
        secure(path, self.group)
        conn = self._wconn = connect(str(path))
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"cannot put the cache database {path} in WAL mode")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        # No checkpoint inside a write (SQLite's default runs one in the commit that finds the WAL
        # over 1,000 pages: after an incremental sync's ~8,000 pages, the job's own bookkeeping
        # waited ~70 ms for it). `checkpoint_soon` runs it once the job is over.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        version = check_version(conn, path)
        for v in range(version, SCHEMA_VERSION):
            with Transaction(conn):
                MIGRATIONS[v](conn)
                conn.execute(f"PRAGMA user_version = {v + 1}")
        self._state = read_state(conn)
        secure(path, self.group)  # the WAL and SHM exist now
        uri = path.resolve().as_uri() + "?mode=ro"
        for i in range(self._nreaders + 1):
            rconn = connect(uri, uri=True)
            rconn.execute("PRAGMA mmap_size = 268435456")
            rconn.execute("PRAGMA cache_size = -16000")
            self._rconns.append(rconn)
            (self._idle if i < self._nreaders else self._quick_idle).put(rconn)

    def _close_connections(self) -> None:
        for conn in self._rconns + ([self._wconn] if self._wconn else []):
            conn.close()
        self._rconns, self._wconn, self._state = [], None, None
        self._idle = queue.SimpleQueue()
        self._quick_idle = queue.SimpleQueue()

    async def close(self) -> None:
        writer, readers, quick = self._writer, self._readers, self._quick
        self._writer = self._readers = self._quick = None
        loop = asyncio.get_running_loop()
        for ex in (quick, readers, writer):
            if ex is not None:
                await loop.run_in_executor(None, ex.shutdown, True)
        self._close_connections()
        self._memo = SnapshotMemo()

    # -- plumbing

    async def _on(self, executor: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any) -> T:
        if executor is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                with Transaction(self._wconn) as conn:
                    result = fn(conn)
                    state = read_state(conn)
                self._state = state
                return result
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path, "writing the cache database") from None
        return await self._on(self._writer, run)

    def _read_sync(self, fn: Callable[[ReadContext], T], require_synced: bool,
                   idle: "queue.SimpleQueue[sqlite3.Connection]") -> T:
        conn = idle.get()
        try:
            with Transaction(conn, "BEGIN"):
                state = read_state(conn)
                if require_synced and state.synced_at is None:
                    raise NotSynced("the library has never been synced")
                return fn(ReadContext(conn, state, self._memo))
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, "reading the cache database") from None
        finally:
            idle.put(conn)

    # -- reads

    async def read(self, fn: Callable[[ReadContext], T], *, require_synced: bool = True, quick: bool = False) -> T:
        """Run ``fn(ctx)`` on a reader thread inside one read transaction (one snapshot).

        ``quick``: on the quick reader, for reads of a row or two that must not
        wait behind queries.
        """
        if quick:
            return await self._on(self._quick, self._read_sync, fn, require_synced, self._quick_idle)
        return await self._on(self._readers, self._read_sync, fn, require_synced, self._idle)

    async def state(self) -> State:
        """The sync state (from memory: status calls never wait for a reader)."""
        if self._state is None:
            raise StoreError("the store is not open")
        return self._state

    async def changes_since(self, overlap: int) -> int | None:
        """Where an incremental sync starts reading Plex's changes (unix seconds).

        ``State.changes_through`` (not moved by notified items alone) minus ``overlap`` seconds,
        which covers Plex comparing strictly or not and a clock difference between Plex's host
        and ours (re-applying a change is harmless). None when the cache holds no complete
        library, or when that start lies in the future: our clock went back since, by an amount
        nothing tells, so only reading every track is exact.
        """
        state = await self.state()
        through = state.changes_through
        if through is None or state.synced_at is None:
            return None
        if through > now():
            if self._future_start_logged != through:  # (a job asks twice: its count check, its worker)
                self._future_start_logged = through
                log.warning("the last complete sync started at %s, later than now: the clock went back since; "
                            "a full sync reads every track", iso(through))
            return None
        return through - overlap

    async def last_full_sync(self) -> int | None:
        """The start of the last full sync that succeeded (unix seconds), or None."""
        def last(ctx: ReadContext) -> int | None:
            return ctx.run("SELECT max(started_at) FROM sync_jobs WHERE mode = 'full' AND state = 'succeeded'")[0][0]
        return await self.read(last, require_synced=False)

    async def partial_slot(self) -> dict | None:
        """What a full sync cut short left in the inactive slot (its progress row), or None."""
        cols = ("job_id", "first_started_at", "server_id", "settings", "plex_offset", "plex_total", "updated_at",
                "section_id")

        def partial(ctx: ReadContext) -> dict | None:
            slot = "b" if ctx.state.live_slot == "a" else "a"
            rows = ctx.run(f"SELECT {', '.join(cols)} FROM slot_progress WHERE slot = ?", (slot,))
            return {**dict(zip(cols, rows[0])), "slot": slot} if rows else None
        return await self.read(partial, require_synced=False)

    # -- jobs

    async def create_job(self, *, mode: str, trigger: str, started_at: int) -> SyncJob:
        """A new job (running; the rest as `SyncJob`'s defaults say), stored."""
        job = SyncJob(job_id=0, mode=mode, trigger=trigger, started_at=started_at)
        sql = f"INSERT INTO sync_jobs ({', '.join(_JOB_DATA)}) VALUES ({', '.join('?' * len(_JOB_DATA))})"
        job.job_id = await self._write(lambda c: c.execute(sql, job.row()[1:]).lastrowid)
        return job

    async def save_job(self, job: SyncJob) -> None:
        """Write every field of ``job`` to its row."""
        sets = ", ".join(f"{k} = ?" for k in _JOB_DATA)
        await self._write(lambda c: c.execute(f"UPDATE sync_jobs SET {sets} WHERE job_id = ?",
                                              (*job.row()[1:], job.job_id)))

    async def get_job(self, job_id: int | None = None) -> SyncJob | None:
        """The job ``job_id``, or the newest one; None if there is none."""
        cols = ", ".join(JOB_COLUMNS)
        if job_id is None:
            sql, args = f"SELECT {cols} FROM sync_jobs ORDER BY job_id DESC LIMIT 1", ()
        else:
            sql, args = f"SELECT {cols} FROM sync_jobs WHERE job_id = ?", (job_id,)
        rows = await self.read(lambda ctx: ctx.run(sql, args), require_synced=False, quick=True)
        return SyncJob.from_row(rows[0]) if rows else None

    async def list_jobs(self, limit: int = 20) -> list[SyncJob]:
        """The newest ``limit`` jobs, newest first."""
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM sync_jobs ORDER BY job_id DESC LIMIT ?"
        rows = await self.read(lambda ctx: ctx.run(sql, (max(0, int(limit)),)), require_synced=False)
        return [SyncJob.from_row(r) for r in rows]

    async def fail_interrupted_jobs(self, message: str) -> int:
        """Mark jobs a dead daemon left 'running' as failed; returns how many."""
        return await self._write(lambda c: c.execute(
            "UPDATE sync_jobs SET state = 'failed', error = ?, finished_at = coalesce(finished_at, ?) "
            "WHERE state = 'running'", (message, now())).rowcount)

    # -- snapshot

    async def activate_slot(self, slot: str, *, server_id: str | None, server_name: str | None, synced_at: int,
                            duration_ms: int | None, track_count: int, changed: bool,
                            sync_settings: str | None = None, changes_through: int | None = None,
                            section_id: str | None = None) -> State:
        """Make ``slot`` (finished by a SlotWriter) the live one, in one short transaction.

        ``slot`` may be the live one: an incremental sync that found nothing to
        change only records that the cache is current.

        ``generation`` goes up by one if ``changed`` -- or if the cache had never
        been synced (readers go from not_synced to a library).
        """
        slot_tables(slot)
        marker = finished_marker(slot)

        def tx(c: sqlite3.Connection) -> State:
            if not c.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (marker,)).fetchone():
                raise StoreError(f"slot {slot} was not finished; refusing to make it live")
            c.execute("UPDATE sync_state SET generation = generation + (CASE WHEN ? OR synced_at IS NULL "
                      "THEN 1 ELSE 0 END), live_slot = ?, synced_at = ?, "
                      "plex_server_id = coalesce(?, plex_server_id), plex_server_name = coalesce(?, plex_server_name), "
                      "sync_duration_ms = ?, track_count = ?, last_error = NULL, sync_settings = ?, "
                      "changes_through = ?, plex_section_id = coalesce(?, plex_section_id) WHERE id = 1",
                      (bool(changed), slot, synced_at, server_id, server_name, duration_ms, track_count,
                       sync_settings, changes_through, section_id))
            c.execute("DELETE FROM slot_progress WHERE slot = ?", (slot,))  # complete now: nothing to resume
            return read_state(c)
        return await self._write(tx)

    def checkpoint_soon(self) -> None:
        """Copy the WAL's frames into the database on the writer thread, after what it is doing
        (a PASSIVE checkpoint: readers and the sync worker are not waited for; what they still
        need is copied the next time). The daemon calls it when a sync job is over, so the
        job's end never waits for it."""
        if self._writer is None:
            return

        def run() -> None:
            try:
                self._wconn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next one tries again; the data is safe in the WAL
                log.warning("checkpointing %s failed: %s", self.path, exc)
        try:
            self._writer.submit(run)
        except RuntimeError:  # closing
            pass

    def wal_removed(self) -> bool:
        """Someone deleted the WAL we still write through (see files.wal_removed)."""
        return self._wconn is not None and wal_removed(self.path)

    async def recover_wal(self) -> None:
        """Save what only the deleted WAL holds into the database file, then reopen with a new WAL.

        Call it while no sync runs. Our connections still reach the deleted file:
        once every reader connection is back (reads wait meanwhile), a checkpoint
        copies every frame into the database, closing every connection removes
        the stray new WAL and SHM, and connecting again starts afresh.
        """
        def reopen() -> None:
            for _ in range(self._nreaders):  # every reader back: none in a read transaction
                self._idle.get()
            self._quick_idle.get()
            try:
                self._wconn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                for conn in self._rconns + [self._wconn]:
                    conn.close()
                self._rconns, self._wconn = [], None
            self._connect_all()  # hands fresh readers to the waiting reads
        try:
            await self._on(self._writer, reopen)
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path, "saving the removed write-ahead log") from None

    async def apply_changes(self, *, slot: str, generation: int, rows: list[dict], deleted: Iterable[str],
                            albums: dict[str, set[str]], synced_at: int, gone: Iterable[str] = ()) -> dict:
        """A change set written into the live slot on the writer thread (see store/increments.py)."""
        def run() -> dict:
            try:
                done = apply_changes(self._wconn, slot=slot, generation=generation, rows=rows, deleted=deleted,
                                     albums=albums, synced_at=synced_at, gone=gone)
                self._state = read_state(self._wconn)
            except sqlite3.Error as exc:
                raise storage_error(exc, self.path, f"changing slot {slot} in place") from None
            return done
        return await self._on(self._writer, run)

    async def record_sync(self, *, server_id: str | None, server_name: str | None, duration_ms: int | None,
                          sync_settings: str | None, synced_at: int | None = None,
                          changes_through: int | None = None, section_id: str | None = None) -> State:
        """Record an incremental sync that wrote the live slot itself (generation and synced_at
        included), or found nothing to change (``synced_at``: when it found that).
        ``changes_through``: its start, if it read every change since the last one (None
        leaves it, for a change set applied from notifications alone)."""
        def tx(c: sqlite3.Connection) -> State:
            c.execute("UPDATE sync_state SET plex_server_id = coalesce(?, plex_server_id), "
                      "plex_server_name = coalesce(?, plex_server_name), sync_duration_ms = ?, last_error = NULL, "
                      "sync_settings = ?, synced_at = coalesce(?, synced_at), "
                      "changes_through = coalesce(?, changes_through), plex_section_id = coalesce(?, plex_section_id) "
                      "WHERE id = 1",
                      (server_id, server_name, duration_ms, sync_settings, synced_at, changes_through, section_id))
            return read_state(c)
        return await self._write(tx)

    async def record_error(self, message: str | None) -> None:
        await self._write(lambda c: c.execute("UPDATE sync_state SET last_error = ? WHERE id = 1", (message,)))
