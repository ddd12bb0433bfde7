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


def worker_env() -> dict[str, str]:
    """The child's environment: ours, minus anything that could carry the token."""
    return {k: v for k, v in os.environ.items() if k != "MEDIASAGE_PLEX_TOKEN"}
