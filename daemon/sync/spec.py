"""What a sync worker is told: its job spec (one JSON object on its stdin, docs/DESIGN.md
"Sync worker protocol"), its environment, and the settings a cached library depends on."""

from __future__ import annotations

import json
import os
from typing import Any

from ..store import inactive_slot


def worker_spec(cfg: Any, state: Any, job: Any, deleted: list[str]) -> dict:
    """The spec of ``job`` (a `SyncJob`) against the store's ``state``; the caller fills in
    ``since`` (an incremental job's) or ``resume`` (a full one's)."""
    return {
        "db_path": str(cfg.cache.path),
        "slot": inactive_slot(state),
        "live_slot": state.live_slot,
        "plex": {
            "url": cfg.plex.url,
            "token": cfg.plex.token,
            "library": cfg.plex.library,
            "timeout": cfg.plex.timeout,
            "verify_ssl": cfg.plex.verify_ssl,
        },
        "page_size": cfg.sync.page_size,
        "concurrent_pages": cfg.sync.concurrent_pages,
        "retries": cfg.sync.retries,
        **decoration(cfg),
        "log_level": cfg.daemon.log_level,
        "mode": job.mode,
        "known_server_id": state.plex_server_id,
        "known_section_id": state.plex_section_id,
        "live_count": state.track_count,
        "generation": state.generation,
        "since": None,
        "deleted": deleted,
        "job_id": job.job_id,
        "started_at": job.started_at,
        "settings": sync_settings(cfg),
        "resume": None,
    }


def decoration(cfg: Any) -> dict:
    """What `live.Decorate` needs of the config."""
    return {"live_keywords": list(cfg.sync.live_keywords), "dated_titles_are_live": cfg.sync.dated_titles_are_live}


def sync_settings(cfg: Any) -> str:
    """The settings a cached library depends on, as one comparable string."""
    return json.dumps({"library": cfg.plex.library, "live_keywords": list(cfg.sync.live_keywords),
                       "dated_titles_are_live": cfg.sync.dated_titles_are_live}, sort_keys=True)


# glibc gives each thread that allocates a malloc arena of its own (up to 8 per CPU); the
# reader's fetch threads allocate the page bodies its main thread parses and frees, so memory
# freed in one arena was not reused by the next page's allocations in another. Two arenas: a
# full sync's peak RSS (daemon and all its processes) 136-137 -> 128-130 MiB at 100k tracks,
# 144-153 -> 139-147 MiB at 1M, no change in its time (docs/PERFORMANCE.md, "Scale").
# The environment's own setting wins; other C libraries ignore it.
WORKER_MALLOC_ARENAS = "2"


def worker_env() -> dict[str, str]:
    """The child's environment: ours, minus anything that could carry the token, with glibc's
    malloc arenas capped (``WORKER_MALLOC_ARENAS``) unless ours sets them."""
    env = {k: v for k, v in os.environ.items() if k != "MEDIASAGE_PLEX_TOKEN"}
    env.setdefault("MALLOC_ARENA_MAX", WORKER_MALLOC_ARENAS)
    return env
