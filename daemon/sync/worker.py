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
writes to SQLite, and a *reader* process it starts (:func:`read_plex`) fetches
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
import threading
import time
from pathlib import Path
from typing import Any

from .. import journal
from ..steps import Steps, took_text
from .lifeline import LockBusy, SyncLock, die_with_parent, pause_point, still_wanted
from .live import Decorate

log = logging.getLogger("mediasaged.sync.worker")

MAX_WAITING_PAGES = 3  # pages the reader holds while album genres are still loading
READER_EXIT_WAIT = 2.0  # seconds the reader gets to exit after its last message


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# -- the reader process ----------------------------------------------------------


def incremental_for(spec: dict, server_id: str) -> bool:
    """Apply changes to a copy of the live slot (True), or load every track (False).

    An incremental job runs as a full one when Plex turns out to be
    another server than the one cached (its full library then replaces the old one).
    """
    return spec.get("mode") == "incremental" and bool(server_id) and server_id == spec.get("known_server_id")


def resume_for(spec: dict, server_id: str) -> dict | None:
    """The partial slot this full sync continues (``spec["resume"]``), if it may: the same server."""
    resume = spec.get("resume")
    if resume and not incremental_for(spec, server_id) and server_id and resume["server_id"] == server_id:
        return resume
    return None


def connect(spec: dict) -> Any:
    """A PlexLibrary for the spec's server and section (imports plexapi: call it in a child)."""
    from ..plex.client import PlexLibrary

    p = spec["plex"]
    return PlexLibrary.connect(p["url"], p["token"], p["library"], timeout=p["timeout"],
                               verify_ssl=p["verify_ssl"], retries=spec["retries"],
                               concurrent_pages=spec.get("concurrent_pages", 1))


def read_plex(spec: dict, out: Any, theirs: Any, worker_pid: int) -> None:
    """Reader process: send ("server"|"total"|"rows"|"error"|"end", ...) messages to ``out``.

    It keeps no pipe end it does not own: ``theirs`` (the worker's end of our
    pipe) is closed, so our sends fail once the worker is gone, and stdin and
    stdout (the daemon's pipes) point at /dev/null, so the daemon sees the end
    of the worker's output when the worker exits, whatever we do.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the worker's unwinding handler: just stop
    theirs.close()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    die_with_parent(worker_pid)
    from ..plex.errors import PlexError, PlexUnauthorized, PlexUnreachable

    try:
        with connect(spec) as plex:
            out.send(("server", plex.server_id, plex.server_name, plex.section_id))
            out.send(("total", plex.track_count()))
            resume = resume_for(spec, plex.server_id)
            if resume:  # the rest, from one page before the cut, then what changed meanwhile
                skipped = read_all(plex, spec, out, start=max(0, resume["plex_offset"] - spec["page_size"]))
                for reason, n in read_changes_since(plex, spec, resume["since"], out).items():
                    skipped[reason] = skipped.get(reason, 0) + n
            else:
                skipped = read_all(plex, spec, out)
            out.send(("skipped", skipped))
            out.send(("end",))
    except PlexError as exc:  # user-facing, token-free by design
        out.send(("error", str(exc), isinstance(exc, PlexUnreachable), isinstance(exc, PlexUnauthorized)))
    except (BrokenPipeError, EOFError):
        pass  # the writer is gone (cancelled or killed): nothing left to do
    except Exception:  # noqa: BLE001
        log.exception("reading from Plex failed")
        out.send(("error", "internal error while reading from Plex; see the daemon log", False, False))


def read_all(plex: Any, spec: dict, out: Any, start: int = 0) -> dict[str, int]:
    """Every track from offset ``start`` on, page by page (a full sync); returns the skipped counts by reason.

    Each ("rows", rows, offset) message carries the listing offset after its
    page: the worker commits it with the rows, so a sync cut short resumes there.

    Album genres are fetched in a thread while the first pages come in; those
    pages wait for them (at most ``MAX_WAITING_PAGES``) because every row
    carries its album's genres. At the end the listing is checked against Plex's
    counts (``verify_listing``): a listing that does not add up fails the sync.
    """
    failure: list[BaseException] = []
    decorate = Decorate(spec, {}, plex)

    def fetch_genres() -> None:
        try:
            pause_point("reader:genres")
            decorate.genres = plex.album_genres()  # read only after this thread is joined
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    genre_thread = threading.Thread(target=fetch_genres, name="album-genres", daemon=True)
    genre_thread.start()
    waiting: list[tuple[list[dict], int]] = []  # pages parsed while the genres are still coming
    for rows in plex.iter_track_pages(spec["page_size"], start=start):
        waiting.append((rows, plex.page_end))
        if genre_thread.is_alive() and len(waiting) < MAX_WAITING_PAGES:
            continue
        genre_thread.join()
        if failure:
            raise failure[0]
        for page, offset in waiting:
            out.send(("rows", decorate(page), offset))
            pause_point("reader:tracks")
        waiting.clear()
    genre_thread.join()
    if failure:
        raise failure[0]
    for page, offset in waiting:
        out.send(("rows", decorate(page), offset))
    if not start:  # a resumed listing covers only the rest: the worker checks the slot's count instead
        plex.verify_listing()
    return dict(plex.ledger.skipped)


def read_changes_since(plex: Any, spec: dict, since: int, out: Any) -> dict[str, int]:
    """A resumed full sync's last step: what Plex changed since the cut job started.

    The pages read before the cut are not read again, so edits Plex got while the
    sync was down come from the "changed since" listings an incremental sync
    reads (sync/increment.py); their rows upsert what the slot holds.
    """
    from .increment import ChangeSet, read_changes

    genres: dict = {}
    changes = ChangeSet(plex, Decorate(spec, genres, plex), genres)
    read_changes(plex, {**spec, "since": since}, changes, lambda n: None)
    rows = list(changes.rows.values())
    for i in range(0, len(rows), spec["page_size"]):
        out.send(("rows", rows[i:i + spec["page_size"]]))
    return dict(changes.skipped)


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
            writer.write_tracks(list(changes.rows.values()))
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
            if not incremental_for(spec, plex.server_id):
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
            except EOFError:
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
                    resume = resume_for(spec, message[1])
                    progress = {"job_id": spec["job_id"], "server_id": message[1], "settings": spec["settings"],
                                "first_started_at": resume["first_started_at"] if resume else spec["started_at"]}
                if resume:
                    writer = slot_writer()
                    current = writer.rows_written
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
        if resume and plex_total is not None and writer.track_count > plex_total:
            plex_total = reconcile_resumed(lambda: connect(spec), lambda genres, plex: Decorate(spec, genres, plex),
                                           writer, lambda: still_wanted(daemon_pid))
        if resume and (plex_total is None or writer.track_count != plex_total):
            writer.forget_progress()  # the next full sync starts afresh
            raise SyncFailed(f"the resumed sync holds {writer.track_count:,} tracks where Plex counts "
                             f"{plex_total}: tracks were deleted or moved while it was cut; the next full "
                             "sync starts afresh")
        count = writer.track_count
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
