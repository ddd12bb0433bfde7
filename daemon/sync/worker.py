"""The sync worker: one sync job, run as a child process of the daemon.

Reads the job spec (JSON, including the Plex token) from stdin and reports on
stdout as JSON lines (see docs/DESIGN.md, "Sync worker protocol"). A full sync
pages every track out of Plex into the inactive slot, which the daemon flips
live after a ``done`` line; killing it at any moment loses nothing but the
half-built inactive slot. An incremental sync reads what changed since
``spec["since"]`` and writes it into the live slot in one transaction
(``sync/increment.py``), or rebuilds the inactive slot from a copy when the
change set is large.

A full sync is split over two processes so that it uses both cores: this one
writes to SQLite, and a *reader* process it starts (`sync/reader.py`) fetches
and parses pages from Plex and sends finished rows through a pipe. Parsing XML
and writing SQLite each take about half the time of a sync; in one process
they would share one GIL.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .. import journal
from ..steps import Steps, took_text
from .lifeline import LockBusy, SyncLock, die_with_parent, pause_point, still_wanted
from .live import Decorate
from .reader import connect, incremental_for, read_plex, resume_for

log = logging.getLogger("mediasaged.sync.worker")

READER_EXIT_WAIT = 2.0  # seconds the reader gets to exit after its last message


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# -- the writer (this process) ------------------------------------------------


class SyncFailed(Exception):
    def __init__(self, message: str, unreachable: bool = False, unauthorized: bool = False):
        super().__init__(message)
        self.unreachable = unreachable
        self.unauthorized = unauthorized  # Plex rejected the token: retrying will not help


def run_in_place(spec: dict) -> dict | None:
    """An incremental job (sync/increment.py), in this process; None if it must run as a full one."""
    from ..plex.errors import PlexError, PlexUnauthorized, PlexUnreachable
    from ..store import SlotWriter
    from .increment import run_incremental

    def rebuild(changes: Any) -> dict:
        """The old way: a copy of the live slot, the changes applied, indexes rebuilt, flipped."""
        writer = SlotWriter(Path(spec["db_path"]), spec["slot"])
        try:
            writer.copy_from(spec["live_slot"])
            writer.delete_tracks(changes.deleted)
            writer.write_tracks(changes.ready())
            emit("progress", phase="indexing", current=writer.track_count, total=writer.track_count)
            summary = writer.finish(spec["live_slot"])
        finally:
            writer.close()
        return {**summary, "slot": spec["slot"], "mode": "incremental"}

    daemon_pid = spec.get("daemon_pid", os.getppid())
    emit("progress", phase="connecting", current=0, total=None)
    lock = SyncLock(Path(spec["db_path"]))
    try:
        lock.acquire()
    except LockBusy as exc:
        raise SyncFailed(str(exc)) from None
    try:
        with connect(spec) as plex:
            emit("server", server_id=plex.server_id, server_name=plex.server_name, section_id=plex.section_id)
            if not incremental_for(spec, plex.server_id, plex.section_id):
                if plex.server_id == spec.get("known_server_id"):
                    log.info("library %r is section %s on Plex now, the cache's was section %s: a full sync "
                             "replaces it", spec["plex"]["library"], plex.section_id, spec.get("known_section_id"))
                return None
            return run_incremental(spec, plex, lambda genres: Decorate(spec, genres, plex), emit, rebuild,
                                   lambda: still_wanted(daemon_pid))
    except PlexError as exc:  # user-facing, token-free by design
        raise SyncFailed(str(exc), isinstance(exc, PlexUnreachable), isinstance(exc, PlexUnauthorized)) from None
    finally:
        lock.release()


def run(spec: dict) -> dict:
    """Do the sync described by ``spec``; return the ``done`` summary."""
    from ..store import SlotWriter
    from .increment import reconcile_resumed

    if spec.get("mode") == "incremental":
        done = run_in_place(spec)
        if done is not None:
            return done
        spec = {**spec, "mode": "full"}  # another server: every track, into the inactive slot
    daemon_pid = spec.get("daemon_pid", os.getppid())
    # fork: cheap, and this process is still single-threaded with no database
    # open (the SlotWriter is created after the fork); spawn would also start
    # multiprocessing's resource tracker, a third interpreter.
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=read_plex, args=(spec, send, receive, os.getpid()),
                         name="mediasaged-plex-reader", daemon=True)
    emit("progress", phase="connecting", current=0, total=None)
    reader.start()
    send.close()  # ours; EOF on `receive` now means the reader is gone
    lock = SyncLock(Path(spec["db_path"]))
    writer = None
    completed = False
    skipped: dict[str, int] = {}
    resume = None
    progress = None  # what a full sync commits with each page (SlotWriter.write_tracks)

    def slot_writer() -> Any:
        """The inactive slot: emptied, or kept (resuming a full sync)."""
        still_wanted(daemon_pid)
        return SlotWriter(Path(spec["db_path"]), spec["slot"], resume=resume is not None)

    phases, writing = Steps(), 0.0  # for the log line at the end; writing: seconds in write_tracks
    try:
        try:
            lock.acquire()  # after the fork: the reader does not hold it
        except LockBusy as exc:
            raise SyncFailed(str(exc)) from None
        current, total, plex_total = 0, None, None
        while True:
            try:
                message = receive.recv()
            except (EOFError, OSError):  # OSError: it died halfway through writing a message
                raise SyncFailed(reader_death(reader)) from None
            kind = message[0]
            if kind == "rows":
                phases.once("until the first rows")
                writer = writer or slot_writer()
                still_wanted(daemon_pid)
                at = message[2] if len(message) > 2 and progress is not None else None
                began = time.perf_counter()
                writer.write_tracks(message[1], {**progress, "plex_offset": at, "plex_total": plex_total}
                                    if at is not None else None)
                writing += time.perf_counter() - began
                current += len(message[1])
                total = max(total or 0, current)
                emit("progress", phase="tracks", current=current, total=total)
                pause_point("worker:tracks")
            elif kind == "server":
                emit("server", server_id=message[1], server_name=message[2], section_id=message[3])
                if spec.get("job_id") is not None:
                    resume = resume_for(spec, message[1], message[3])
                    progress = {"job_id": spec["job_id"], "server_id": message[1], "section_id": message[3],
                                "settings": spec["settings"],
                                "first_started_at": resume["first_started_at"] if resume else spec["started_at"]}
                if resume:
                    writer = slot_writer()
                    current = writer.rows_written
                    # Keyed before the rest comes: its rows (the overlapping page's first) then
                    # replace those of the same key as they are written, where merging them at
                    # the end cost a failed index build and a second one (137 ms at 100k).
                    writer.index_keys()
                    emit("resumed", job_id=resume["job_id"], tracks=current)
            elif kind == "total":
                plex_total = total = message[1]
                emit("progress", phase="tracks", current=current, total=total)
            elif kind == "skipped":
                skipped = message[1]
            elif kind == "error":
                raise SyncFailed(*message[1:])
            elif kind == "end":
                break
        phases.once("until the first rows")
        phases("listing")
        writer = writer or slot_writer()  # (a full sync of an empty library writes no rows)
        writer.index_keys()  # a key written twice is merged here: the counts below are of tracks
        phases("key index")
        count = writer.track_count
        if resume and plex_total is not None and count > plex_total:
            plex_total = reconcile_resumed(lambda: connect(spec), lambda genres, plex: Decorate(spec, genres, plex),
                                           writer, lambda: still_wanted(daemon_pid))
            count = writer.track_count
        if resume and (plex_total is None or count != plex_total):
            writer.forget_progress()  # the next full sync starts afresh
            raise SyncFailed(f"the resumed sync holds {count:,} tracks where Plex counts "
                             f"{plex_total}: tracks were deleted or moved while it was cut; the next full "
                             "sync starts afresh")
        if not resume and current > count:  # a key listed again pages apart: the slot keeps one
            skipped = {**skipped, "duplicate_key": skipped.get("duplicate_key", 0) + current - count}
            log.warning("Plex listed %d track key(s) more than once; each is kept once", current - count)
        emit("progress", phase="indexing", current=count, total=count)
        pause_point("worker:indexing")
        still_wanted(daemon_pid)
        phases.skip()
        summary = writer.finish(spec["live_slot"])
        phases("finish")
        log.info("full sync of %s tracks: %s; the listing's page writes %.0f ms; finish: %s", f"{count:,}", phases,
                 writing * 1000, finish_summary(writer.finish_steps.took))
        pause_point("worker:swap")
        still_wanted(daemon_pid)
        completed = True
    finally:
        if writer is not None:
            writer.close()
        receive.close()
        if not completed:  # failed or cancelled: what it still reads is lost anyway
            reader.kill()
        reader.join(timeout=READER_EXIT_WAIT)
        if reader.is_alive():
            reader.kill()
            reader.join(timeout=READER_EXIT_WAIT)
        lock.release()
    return {**summary, "slot": spec["slot"], "mode": "full", "skipped": skipped}


def finish_summary(took: dict[str, float]) -> str:
    """The finish's steps for the log, its indexes as one."""
    steps = {name: seconds for name, seconds in took.items() if not name.startswith("index ")}
    steps["indexes"] = sum(seconds for name, seconds in took.items() if name.startswith("index "))
    return took_text(steps)


def reader_death(reader: Any) -> str:
    """Why the reader's pipe ended without an "end": how it exited, if it did."""
    reader.join(timeout=0.5)
    code = reader.exitcode
    if code is None or code == 0:
        return "the Plex reader process stopped unexpectedly"
    if code < 0:
        return f"the Plex reader process died: signal {-code}"
    return f"the Plex reader process died: exit status {code}"


def preload() -> None:
    """A spare's imports: everything an incremental job needs, done before it gets one."""
    from ..plex import client  # noqa: F401  (plexapi, requests, lxml)
    from .. import store  # noqa: F401  (sqlite3)
    from . import increment  # noqa: F401


def spare_parent(argv: list[str]) -> int | None:
    """``--spare PID``: started ahead of its job by the daemon ``PID``."""
    return int(argv[1]) if len(argv) == 2 and argv[0] == "--spare" else None


def main(argv: list[str] | None = None) -> int:
    # A crash in C (lxml, SQLite) prints every thread's Python stack to stderr, the
    # daemon's log; the forked reader inherits it. The job still says "signal 11".
    faulthandler.enable()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cancel: unwind, roll back
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the daemon's to handle
    spare_of = spare_parent(sys.argv[1:] if argv is None else argv)
    if spare_of is not None:  # a spare (process.WorkerProcess.spawn): ready before its job comes
        die_with_parent(spare_of)
        os.nice(10)
        preload()
    raw = sys.stdin.read()
    if spare_of is not None and not raw:  # retired before it got a job
        return 0
    spec = json.loads(raw)
    die_with_parent(spec.get("daemon_pid", os.getppid()))
    # A sync is background work: on a busy machine, queries (in the daemon's own
    # process, at normal priority) get the CPU first. The reader inherits this.
    if spare_of is None:
        os.nice(10)
    journal.setup_logging(spec.get("log_level", "info"), "%(levelname)s %(processName)s: %(message)s")
    from ..store import StoreError

    try:
        summary = run(spec)
    except SyncFailed as exc:
        emit("error", message=str(exc), unreachable=exc.unreachable, unauthorized=exc.unauthorized)
        return 1
    except StoreError as exc:  # the disk: full, read-only, failing, a removed WAL (the message names it)
        log.error("sync failed: %s", exc)
        emit("error", message=str(exc))
        return 1
    except OSError as exc:  # e.g. the sync lock on a read-only file system
        message = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else f"sync failed: {exc}"
        log.error("sync failed: %s", message)
        emit("error", message=message)
        return 1
    except Exception:  # noqa: BLE001 - our own bug: log it whole
        log.exception("sync failed")
        emit("error", message="internal error during sync; see the daemon log")
        return 1
    emit("done", **summary)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to clean up (the database and the lock are closed, the reader joined):
    # skip the interpreter's teardown, ~30 ms with plexapi loaded, that the daemon waits for.
    os._exit(code)
