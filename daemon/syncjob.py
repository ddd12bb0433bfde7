"""The sync job: one dataclass for the sync_jobs row, the running job and the wire object.

`SyncJob`'s fields, in order, are the ``sync_jobs`` table's columns (the store
reads and writes rows through `COLUMNS`), the job `sync.jobs` runs and updates,
and the keys of the CONTRACT §3 job object (`SyncJob.view`, times as ISO 8601),
whose published schema is `JOB_SCHEMA`. Adding a field: add it here with its
schema, and a migration adding the column. May import: `timeutil`, `track`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from .timeutil import iso
from .track import TIME_SCHEMA

STATES = ("running", "succeeded", "failed", "cancelled")
MODES = ("full", "incremental")  # what a job ran as ("auto" is resolved before a job exists)
TRIGGERS = ("manual", "schedule", "startup", "server_change", "plex_event")
_TIMES = frozenset({"started_at", "finished_at"})  # unix seconds here, ISO 8601 on the wire


@dataclass(kw_only=True)
class SyncJob:
    job_id: int
    state: str = "running"
    mode: str
    trigger: str
    phase: str | None = "starting"
    current: int = 0
    total: int | None = None
    started_at: int
    finished_at: int | None = None
    added: int | None = None
    updated: int | None = None
    removed: int | None = None
    error: str | None = None
    # reason -> items Plex sent that the sync could not mirror (no_rating_key, duplicate_key);
    # a JSON object in the table
    skipped: dict[str, int] = field(default_factory=dict)
    resumed_from: int | None = None  # the job whose partial slot this full sync continued

    @classmethod
    def from_row(cls, row: tuple) -> "SyncJob":
        """A job from a ``SELECT`` of `COLUMNS`, in that order."""
        values = dict(zip(COLUMNS, row))
        values["skipped"] = _skipped(values.get("skipped"))
        return cls(**values)

    def row(self) -> tuple:
        """The values of `COLUMNS`, in that order."""
        return tuple(json.dumps(self.skipped, sort_keys=True) if name == "skipped" else getattr(self, name)
                     for name in COLUMNS)

    def view(self) -> dict:
        """The CONTRACT §3 job object."""
        return {name: iso(getattr(self, name)) if name in _TIMES else getattr(self, name) for name in COLUMNS}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SyncJob))


def _skipped(text: str | None) -> dict[str, int]:
    """The stored skipped counts (NULL in rows older than the column: none)."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

_INT_OR_NULL = {"type": ["integer", "null"]}
_FIELD_SCHEMAS: dict[str, dict] = {
    "job_id": {"type": "integer"},
    "state": {"enum": ["idle", *STATES]},  # "idle": sync.status when no job ever ran
    "mode": {"enum": list(MODES)},
    "trigger": {"enum": list(TRIGGERS)},
    "phase": {"type": ["string", "null"]},
    "current": {"type": "integer"},
    "total": _INT_OR_NULL,
    "started_at": TIME_SCHEMA,
    "finished_at": TIME_SCHEMA,
    "added": _INT_OR_NULL,
    "updated": _INT_OR_NULL,
    "removed": _INT_OR_NULL,
    "error": {"type": ["string", "null"]},
    "skipped": {"type": "object", "additionalProperties": {"type": "integer"},
                "description": "items Plex sent that could not be mirrored, by reason "
                               "(no_rating_key, duplicate_key); {} when none"},
    "resumed_from": {"type": ["integer", "null"],
                     "description": "the job, cut short, whose committed pages this full sync continued"},
}
JOB_SCHEMA: dict = {"type": "object", "properties": {name: _FIELD_SCHEMAS[name] for name in COLUMNS}}
