"""The Plex side of a sync worker: which job the spec asks for, connecting to Plex, and the
*reader* process of a full sync (:func:`read_plex`), which fetches and parses pages and sends
finished rows to the worker (`sync/worker.py`) through a pipe. `connect` imports plexapi
(through `plex.client`): the daemon never calls it, only its sync processes do.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from .lifeline import die_with_parent, pause_point
from .live import Decorate

log = logging.getLogger("mediasaged.sync.reader")

MAX_WAITING_PAGES = 3  # pages the reader holds while album genres are still loading


def incremental_for(spec: dict, server_id: str, section_id: str | None = None) -> bool:
    """Apply changes to a copy of the live slot (True), or load every track (False).

    An incremental job runs as a full one when Plex turns out to be another server than
    the one cached, or ``plex.library`` another section (renamed on Plex, and another given
    its name): that full library then replaces the old one.
    """
    return (spec.get("mode") == "incremental" and bool(server_id) and server_id == spec.get("known_server_id")
            and spec.get("known_section_id") in (None, section_id))


def resume_for(spec: dict, server_id: str, section_id: str | None = None) -> dict | None:
    """The partial slot this full sync continues (``spec["resume"]``), if it may: the same server
    and section (one cut before the section was kept with it: the same server)."""
    resume = spec.get("resume")
    if resume and not incremental_for(spec, server_id) and server_id and resume["server_id"] == server_id \
            and resume.get("section_id") in (None, section_id):
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
            resume = resume_for(spec, plex.server_id, plex.section_id)
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
    rows = changes.ready()
    for i in range(0, len(rows), spec["page_size"]):
        out.send(("rows", rows[i:i + spec["page_size"]]))
    return dict(changes.skipped)
