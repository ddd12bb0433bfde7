"""The sync worker: one sync job, run as a child process of the daemon.

Reads the job spec (JSON, including the Plex token) from stdin, fills the
inactive slot of the cache -- a full sync pages every track out of Plex; an
incremental one copies the live slot and applies what changed since
``spec["since"]`` -- and reports on stdout
as JSON lines (see docs/DESIGN.md, "Sync worker protocol"). It never touches the
live slot: the daemon flips slots after a ``done`` line. Killing it at any
moment loses nothing but the half-built inactive slot.

The work is split over two processes so that it uses both cores: this one
writes to SQLite, and a *reader* process it starts (:func:`read_plex`) fetches
and parses pages from Plex and sends finished rows through a pipe. Parsing XML
and writing SQLite each take about half the time of a sync; in one process
they would share one GIL.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from .lifeline import LockBusy, SyncLock, die_with_parent, pause_point, still_wanted

log = logging.getLogger("mediasaged.sync.worker")

MAX_WAITING_PAGES = 8  # pages the reader holds while album genres are still loading
READER_EXIT_WAIT = 2.0  # seconds the reader gets to exit after its last message


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# -- the reader process ----------------------------------------------------------


def incremental_for(spec: dict, server_id: str) -> bool:
    """Apply changes to a copy of the live slot (True), or load every track (False).

    An incremental job falls back to a full one when Plex turns out to be
    another server than the one cached (its full library then replaces the old one).
    """
    return spec.get("mode") == "incremental" and bool(server_id) and server_id == spec.get("known_server_id")


def connect(spec: dict) -> Any:
    """A PlexLibrary for the spec's server and section (imports plexapi: call it in a child)."""
    from ..plex.client import PlexLibrary

    p = spec["plex"]
    return PlexLibrary.connect(p["url"], p["token"], p["library"], timeout=p["timeout"],
                               verify_ssl=p["verify_ssl"], retries=spec["retries"],
                               concurrent_pages=spec.get("concurrent_pages", 1))


class Decorate:
    """Completes track rows as they leave Plex: ``is_live``; genres -- the track's own
    ``Genre`` tags where the listing has them, else its album's full list; and the year
    of tracks whose listing has neither ``year`` nor ``parentYear`` (older servers): the
    album's, fetched in batches for the albums a page needs (``plex`` given)."""

    def __init__(self, spec: dict, genres: dict[str, list[str]], plex: Any = None):
        from .live import live_matcher

        self.genres = genres  # album rating key -> genres; may still be filling up
        self._plex = plex
        self._years: dict[str, int | None] = {}  # album rating key -> year (None: it has none)
        self._is_live_title = live_matcher(spec["live_keywords"], spec["dated_titles_are_live"])
        self._album_live: dict[str, bool] = {}

    def __call__(self, rows: list[dict]) -> list[dict]:
        self._fill_years(rows)
        for row in rows:
            album = row["album"]
            live = self._album_live.get(album)
            if live is None:
                if len(self._album_live) >= 4096:  # tracks come album by album: keep the memo small
                    self._album_live.clear()
                live = self._album_live[album] = self._is_live_title("", album)
            row["is_live"] = live or self._is_live_title(row["title"], "")
            own = row.pop("track_genres", None)
            row["genres"] = sorted(own, key=str.casefold) if own \
                else self.genres.get(row["album_rating_key"], [])
        return rows

    def _fill_years(self, rows: list[dict]) -> None:
        need = sorted({r["album_rating_key"] for r in rows if r["year"] is None and r.get("album_rating_key")}
                      - self._years.keys())
        if need and self._plex is not None:
            if len(self._years) >= 4096:  # tracks come album by album: keep the memo small
                self._years.clear()
            found = self._plex.album_years(need)
            self._years.update({k: found.get(k) for k in need})
        for row in rows:
            if row["year"] is None and row.get("album_rating_key"):
                row["year"] = self._years.get(row["album_rating_key"])


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
    from ..plex.errors import PlexError, PlexUnreachable

    try:
        with connect(spec) as plex:
            out.send(("server", plex.server_id, plex.server_name, plex.section_id))
            out.send(("total", plex.track_count()))
            if incremental_for(spec, plex.server_id):
                skipped = read_changes(plex, spec, out)
            else:
                skipped = read_all(plex, spec, out)
            out.send(("skipped", skipped))
            out.send(("end",))
    except PlexError as exc:  # user-facing, token-free by design
        out.send(("error", str(exc), isinstance(exc, PlexUnreachable)))
    except (BrokenPipeError, EOFError):
        pass  # the writer is gone (cancelled or killed): nothing left to do
    except Exception:  # noqa: BLE001
        log.exception("reading from Plex failed")
        out.send(("error", "internal error while reading from Plex; see the daemon log", False))


def read_all(plex: Any, spec: dict, out: Any) -> dict[str, int]:
    """Every track, page by page (a full sync); returns the skipped counts by reason.

    Album genres are fetched in a thread while the first pages come in; those
    pages wait for them (at most ``MAX_WAITING_PAGES``) because every row
    carries its album's genres. At the end the listing is checked against Plex's
    counts (``verify_listing``): a listing that does not add up fails the sync.
    """
    genres: dict = {}
    failure: list[BaseException] = []

    def fetch_genres() -> None:
        try:
            pause_point("reader:genres")
            genres.update(plex.album_genres())
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    genre_thread = threading.Thread(target=fetch_genres, name="album-genres", daemon=True)
    genre_thread.start()
    decorate = Decorate(spec, genres, plex)
    waiting: list[list[dict]] = []  # pages parsed while the genres are still coming
    for rows in plex.iter_track_pages(spec["page_size"]):
        waiting.append(rows)
        if genre_thread.is_alive() and len(waiting) < MAX_WAITING_PAGES:
            continue
        genre_thread.join()
        if failure:
            raise failure[0]
        for page in waiting:
            out.send(("rows", decorate(page)))
            pause_point("reader:tracks")
        waiting.clear()
    genre_thread.join()
    if failure:
        raise failure[0]
    for page in waiting:
        out.send(("rows", decorate(page)))
    plex.verify_listing()
    return dict(plex.ledger.skipped)


def read_changes(plex: Any, spec: dict, out: Any) -> dict[str, int]:
    """What changed since ``spec["since"]`` (an incremental sync); returns skipped counts.

    Changed tracks come from ``track.updatedAt>>=``; an album edit (genres,
    year) only moves the album's updatedAt and an artist rename the artist's,
    so the tracks of changed albums and artists are fetched too. Deletions
    never show up here: the writer reconciles counts.
    """
    since = spec["since"]
    decorate = Decorate(spec, {}, plex)
    skipped: Counter[str] = Counter()

    def send(rows: list[dict]) -> None:
        albums = {r["album_rating_key"] for r in rows if r.get("album_rating_key")}
        decorate.genres.update(plex.genres_of_albums(sorted(albums - decorate.genres.keys())))
        out.send(("rows", decorate(rows)))

    for rows in plex.iter_track_pages(spec["page_size"], updated_since=since):
        send(rows)
    skipped.update(plex.ledger.skipped)
    for album_key in plex.changed_album_keys(since):
        rows = [r for r in plex.album_tracks(album_key) if r["rating_key"]]
        if rows:
            send(rows)
    for artist_key in plex.changed_artist_keys(since):
        for rows in plex.iter_track_pages(spec["page_size"], artist_key=artist_key):
            send(rows)
        skipped.update(plex.ledger.skipped)
    return dict(skipped)


# -- the writer (this process) ------------------------------------------------


class SyncFailed(Exception):
    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


def run(spec: dict) -> dict:
    """Do the sync described by ``spec``; return the ``done`` summary."""
    from ..store import SlotWriter

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
    incremental = False
    completed = False
    skipped: dict[str, int] = {}

    def slot_writer() -> Any:
        """The inactive slot, emptied -- or, for an incremental sync, a copy of the live one."""
        still_wanted(daemon_pid)
        new = SlotWriter(Path(spec["db_path"]), spec["slot"])
        if incremental:
            new.copy_from(spec["live_slot"])
            new.delete_tracks(spec.get("deleted", ()))  # as Plex notified them (sync.plex_events)
        return new

    try:
        try:
            lock.acquire()  # after the fork: the reader does not hold it
        except LockBusy as exc:
            raise SyncFailed(str(exc)) from None
        current, total, plex_total = 0, None, 0
        phase = "tracks"
        while True:
            try:
                message = receive.recv()
            except EOFError:
                raise SyncFailed(reader_death(reader)) from None
            kind = message[0]
            if kind == "rows":
                writer = writer or slot_writer()
                still_wanted(daemon_pid)
                writer.write_tracks(message[1])
                current += len(message[1])
                total = None if incremental else max(total or 0, current)
                emit("progress", phase=phase, current=current, total=total)
                pause_point(f"worker:{phase}")
            elif kind == "server":
                emit("server", server_id=message[1], server_name=message[2], section_id=message[3])
                incremental = incremental_for(spec, message[1])
                phase = "changes" if incremental else "tracks"
            elif kind == "total":
                plex_total = message[1]
                total = None if incremental else plex_total
                emit("progress", phase=phase, current=0, total=total)
            elif kind == "skipped":
                skipped = message[1]
            elif kind == "error":
                raise SyncFailed(message[1], message[2])
            elif kind == "end":
                break
        if incremental and writer is None and not spec.get("deleted") and plex_total == spec["live_count"]:
            # Nothing changed: the live slot stays live (the daemon only records the sync).
            completed = True
            return {"added": 0, "updated": 0, "removed": 0, "track_count": plex_total,
                    "slot": spec["live_slot"], "mode": "incremental", "skipped": skipped}
        writer = writer or slot_writer()  # (a full sync of an empty library writes no rows)
        if incremental and (plex_total is None or writer.track_count != plex_total):
            emit("progress", phase="checking", current=0, total=plex_total)
            skipped = reconcile(spec, writer)
        count = writer.track_count
        if not incremental and current > count:  # a key listed again pages apart: the upsert kept one
            skipped = {**skipped, "duplicate_key": skipped.get("duplicate_key", 0) + current - count}
            log.warning("Plex listed %d track key(s) more than once; each is kept once", current - count)
        emit("progress", phase="indexing", current=count, total=count)
        pause_point("worker:indexing")
        still_wanted(daemon_pid)
        summary = writer.finish(spec["live_slot"])
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
    return {**summary, "slot": spec["slot"], "mode": "incremental" if incremental else "full",
            "skipped": skipped}


def reader_death(reader: Any) -> str:
    """Why the reader's pipe ended without an "end": how it exited, if it did."""
    reader.join(timeout=0.5)
    code = reader.exitcode
    if code is None or code == 0:
        return "the Plex reader process stopped unexpectedly"
    if code < 0:
        return f"the Plex reader process died: signal {-code}"
    return f"the Plex reader process died: exit status {code}"


def reconcile(spec: dict, writer: Any) -> dict[str, int]:
    """Make the slot hold exactly Plex's tracks, when the counts say it does not.

    Deleted tracks never appear in a "changed since" listing, so after applying
    the changes the slot can hold more tracks than Plex (deletions), or -- if
    Plex's clock or listing missed something -- fewer. Then every track key is
    listed: keys Plex no longer has are removed, tracks the slot lacks are added. The
    listing is checked against Plex's counts first, as a full sync's is. Returns the
    skipped counts of that listing.
    """
    from ..plex.errors import PlexError, PlexUnreachable

    missing: list[dict] = []  # tracks the slot lacks: the few a "changed since" listing missed
    writer.begin_listing()  # the keys go to a temporary table, not into this process's memory
    try:
        with connect(spec) as plex:
            plex.track_count()  # the count the listing is checked against
            for rows in plex.iter_track_pages(spec["page_size"]):
                unknown = writer.list_keys([row["rating_key"] for row in rows])
                missing.extend(row for row in rows if row["rating_key"] in unknown)
            plex.verify_listing()
            albums = sorted({r["album_rating_key"] for r in missing if r.get("album_rating_key")})
            genres = plex.genres_of_albums(albums)
            if missing:
                missing = Decorate(spec, genres, plex)(missing)
            skipped = dict(plex.ledger.skipped)
    except PlexError as exc:
        raise SyncFailed(str(exc), isinstance(exc, PlexUnreachable)) from None
    removed = writer.delete_unlisted()
    if missing:
        writer.write_tracks(missing)
    log.info("reconciled with Plex's track list: %d removed, %d added", removed, len(missing))
    return skipped


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cancel: unwind, roll back
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the daemon's to handle
    spec = json.loads(sys.stdin.read())
    die_with_parent(spec.get("daemon_pid", os.getppid()))
    # A sync is background work: on a busy machine, queries (in the daemon's own
    # process, at normal priority) get the CPU first. The reader inherits this.
    os.nice(10)
    logging.basicConfig(
        level=spec.get("log_level", "info").upper(),
        format="%(asctime)s %(levelname)s %(processName)s: %(message)s",
    )
    from ..store import StoreError

    try:
        summary = run(spec)
    except SyncFailed as exc:
        emit("error", message=str(exc), unreachable=exc.unreachable)
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
    sys.exit(main())
