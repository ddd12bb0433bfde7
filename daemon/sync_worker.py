"""The sync worker: one full sync, run as a child process of the daemon.

Reads the job spec (JSON, including the Plex token) from stdin, pages the
library out of Plex into the inactive slot of the cache, and reports on stdout
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
from pathlib import Path
from typing import Any

log = logging.getLogger("mediasaged.sync_worker")

MAX_WAITING_PAGES = 8  # pages the reader holds while album genres are still loading


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# -- the reader process ----------------------------------------------------------


def read_plex(spec: dict, out: Any) -> None:
    """Reader process: send ("server"|"total"|"rows"|"error"|"end", ...) messages to ``out``.

    Album genres are fetched in a thread while the first pages come in; those
    pages wait for them (at most ``MAX_WAITING_PAGES``) because every row
    carries its album's genres.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .live import live_matcher
    from .plex import PlexError, PlexLibrary, PlexUnreachable

    p = spec["plex"]
    try:
        plex = PlexLibrary.connect(p["url"], p["token"], p["library"], timeout=p["timeout"],
                                   verify_ssl=p["verify_ssl"], retries=spec["retries"])
        with plex:
            out.send(("server", plex.server_id, plex.server_name))
            out.send(("total", plex.track_count()))
            genres: dict = {}
            failure: list[BaseException] = []

            def fetch_genres() -> None:
                try:
                    genres.update(plex.album_genres())
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure.append(exc)

            genre_thread = threading.Thread(target=fetch_genres, name="album-genres", daemon=True)
            genre_thread.start()
            is_live_title = live_matcher(spec["live_keywords"], spec["dated_titles_are_live"])
            album_live: dict[str, bool] = {}
            album_genres: dict[str, list] = {}

            def send(rows: list[dict]) -> None:
                for row in rows:
                    album = row["album"]
                    live = album_live.get(album)
                    if live is None:
                        live = album_live[album] = is_live_title("", album)
                    row["is_live"] = live or is_live_title(row["title"], "")
                    key = row["album_rating_key"]
                    row["genres"] = album_genres.get(key) or album_genres.setdefault(key, genres.get(key, []))
                out.send(("rows", rows))

            waiting: list[list[dict]] = []  # pages parsed while the genres are still coming
            for rows in plex.iter_track_pages(spec["page_size"]):
                waiting.append(rows)
                if genre_thread.is_alive() and len(waiting) < MAX_WAITING_PAGES:
                    continue
                genre_thread.join()
                if failure:
                    raise failure[0]
                for page in waiting:
                    send(page)
                waiting.clear()
            genre_thread.join()
            if failure:
                raise failure[0]
            for page in waiting:
                send(page)
            out.send(("end",))
    except PlexError as exc:  # user-facing, token-free by design
        out.send(("error", str(exc), isinstance(exc, PlexUnreachable)))
    except (BrokenPipeError, EOFError):
        pass  # the writer is gone (cancelled or killed): nothing left to do
    except Exception:  # noqa: BLE001
        log.exception("reading from Plex failed")
        out.send(("error", "internal error while reading from Plex; see the daemon log", False))


# -- the writer (this process) ------------------------------------------------


class SyncFailed(Exception):
    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


def run(spec: dict) -> dict:
    """Do the sync described by ``spec``; return the ``done`` summary."""
    from .store import SlotWriter

    # fork: cheap, and this process is still single-threaded with no database
    # open (the SlotWriter is created after the fork); spawn would also start
    # multiprocessing's resource tracker, a third interpreter.
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=read_plex, args=(spec, send), name="mediasaged-plex-reader", daemon=True)
    emit("progress", phase="connecting", current=0, total=None)
    reader.start()
    send.close()  # ours; EOF on `receive` now means the reader is gone
    writer = None
    try:
        current, total = 0, None
        while True:
            try:
                message = receive.recv()
            except EOFError:
                raise SyncFailed("the Plex reader process stopped unexpectedly") from None
            kind = message[0]
            if kind == "rows":
                if writer is None:
                    writer = SlotWriter(Path(spec["db_path"]), spec["slot"])
                writer.write_tracks(message[1])
                current += len(message[1])
                total = max(total or 0, current)
                emit("progress", phase="tracks", current=current, total=total)
            elif kind == "server":
                emit("server", server_id=message[1], server_name=message[2])
            elif kind == "total":
                total = message[1]
                emit("progress", phase="tracks", current=0, total=total)
            elif kind == "error":
                raise SyncFailed(message[1], message[2])
            elif kind == "end":
                break
        if writer is None:  # an empty library
            writer = SlotWriter(Path(spec["db_path"]), spec["slot"])
        emit("progress", phase="indexing", current=current, total=current)
        summary = writer.finish(spec["live_slot"])
    finally:
        if writer is not None:
            writer.close()
        receive.close()
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()
    return {**summary, "slot": spec["slot"]}


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cancel: unwind, roll back
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the daemon's to handle
    spec = json.loads(sys.stdin.read())
    # A sync is background work: on a busy machine, queries (in the daemon's own
    # process, at normal priority) get the CPU first. The reader inherits this.
    os.nice(10)
    logging.basicConfig(
        level=spec.get("log_level", "info").upper(),
        format="%(asctime)s %(levelname)s %(processName)s: %(message)s",
    )
    try:
        summary = run(spec)
    except SyncFailed as exc:
        emit("error", message=str(exc), unreachable=exc.unreachable)
        return 1
    except Exception:  # noqa: BLE001 - our own bug or the disk: log it whole
        log.exception("sync failed")
        emit("error", message="internal error during sync; see the daemon log")
        return 1
    emit("done", **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
