"""The sync worker: one full sync, run as a child process of the daemon.

Reads the job spec (JSON, including the Plex token) from stdin, pages the
library out of Plex into the inactive slot of the cache, and reports on stdout
as JSON lines (see docs/DESIGN.md, "Sync worker protocol"). It never touches the
live slot: the daemon flips slots after a ``done`` line. Killing it at any
moment loses nothing but the half-built inactive slot.

Fetching and parsing the next page overlaps with writing the current one: a
producer thread runs the Plex pager while this thread writes to SQLite (both
release the GIL for much of their work).
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from .live import live_matcher
from .plex import PlexError, PlexLibrary, PlexUnreachable
from .store import SlotWriter

log = logging.getLogger("mediasaged.sync_worker")

_END = object()


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def prefetch(pages: Iterator[list[dict]], depth: int = 2) -> Iterator[list[dict]]:
    """Run ``pages`` in a thread, ``depth`` pages ahead of the consumer."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for page in pages:
                buffer.put(page)
            buffer.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put(exc)

    threading.Thread(target=produce, name="plex-pager", daemon=True).start()
    while True:
        item = buffer.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def run(spec: dict) -> dict:
    """Do the sync described by ``spec``; return the ``done`` summary."""
    p = spec["plex"]
    emit("progress", phase="connecting", current=0, total=None)
    plex = PlexLibrary.connect(
        p["url"], p["token"], p["library"],
        timeout=p["timeout"], verify_ssl=p["verify_ssl"], retries=spec["retries"],
    )
    try:
        emit("server", server_id=plex.server_id, server_name=plex.server_name)
        total = plex.track_count()
        emit("progress", phase="genres", current=0, total=total)
        album_genres = plex.album_genres()
        is_live = live_matcher(spec["live_keywords"], spec["dated_titles_are_live"])
        writer = SlotWriter(Path(spec["db_path"]), spec["slot"])
        try:
            current = 0
            emit("progress", phase="tracks", current=0, total=total)
            for rows in prefetch(plex.iter_track_pages(spec["page_size"])):
                for row in rows:
                    row["genres"] = album_genres.get(row["album_rating_key"], [])
                    row["is_live"] = is_live(row["title"], row["album"])
                writer.write_tracks(rows)
                current += len(rows)
                total = max(total, current)
                emit("progress", phase="tracks", current=current, total=total)
            emit("progress", phase="indexing", current=current, total=current)
            summary = writer.finish(spec["live_slot"])
        finally:
            writer.close()
    finally:
        plex.close()
    return {**summary, "slot": spec["slot"]}


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cancel: unwind, roll back
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the daemon's to handle
    spec = json.loads(sys.stdin.read())
    logging.basicConfig(
        level=spec.get("log_level", "info").upper(),
        format="%(asctime)s %(levelname)s mediasaged.sync_worker: %(message)s",
    )
    try:
        summary = run(spec)
    except PlexError as exc:  # messages are user-facing and token-free by design
        emit("error", message=str(exc), unreachable=isinstance(exc, PlexUnreachable))
        return 1
    except Exception as exc:  # noqa: BLE001 - our own bug or the disk: log it whole
        log.exception("sync failed")
        emit("error", message=f"internal error during sync ({type(exc).__name__}); see the daemon log")
        return 1
    emit("done", **summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
