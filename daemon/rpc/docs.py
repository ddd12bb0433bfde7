"""What ``rpc.discover`` says beyond the method table: descriptions, errors, examples, events.

The method table (:mod:`.methods`) holds what dispatch needs (handlers, params and
result schemas); this module holds the words for people and client generators,
keyed by method name, and :func:`.dispatch.openrpc_document` merges the two.
Events are not methods a client calls, so they go in the document's ``x-events``
extension (OpenRPC allows ``x-`` keys at the top level), each with the schema of
its params.
"""

from __future__ import annotations

from typing import Any

from ..track import track_with

# -- errors (CONTRACT §2) ---------------------------------------------------------------

INVALID_PARAMS = {"code": -32602, "message": "invalid params: <param>: <why>",
                  "data": {"param": "the offending param's name"}}
NOT_SYNCED = {"code": -32001, "message": "not_synced", "data": "the library has never been synced"}
PLEX_UNREACHABLE = {"code": -32002, "message": "plex_unreachable",
                    "data": "reserved: no current method waits on Plex; an unreachable Plex shows as "
                            "the failed job's error and library.status plex_reachable=false"}
PERMISSION_DENIED = {"code": -32003, "message": "permission_denied",
                     "data": "uid N may not call METHOD (daemon.read_only_uids)"}

# Every code the daemon answers with, for the document's components.errors.
ALL_ERRORS = {
    "ParseError": {"code": -32700, "message": "Parse error", "data": "the line is not JSON (id null)"},
    "InvalidRequest": {"code": -32600, "message": "Invalid request",
                       "data": "names what is wrong, e.g. '\"jsonrpc\" is missing'; also a line over 1 MiB, "
                               "which closes the connection"},
    "MethodNotFound": {"code": -32601, "message": "Method not found"},
    "InvalidParams": INVALID_PARAMS,
    "InternalError": {"code": -32603, "message": "Internal error", "data": "logged by the daemon; no details"},
    "NotSynced": NOT_SYNCED,
    "PlexUnreachable": PLEX_UNREACHABLE,
    "PermissionDenied": PERMISSION_DENIED,
    "LimitExceeded": {"code": -32004, "message": "limit_exceeded",
                      "data": "names the limit (README, \"Limits\"): an answer over daemon.max_response_mib, "
                              "or a connection over daemon.max_connections / daemon.max_connections_per_uid "
                              "(one line with id null, then closed)"},
}

_READS_CACHE = [INVALID_PARAMS, NOT_SYNCED]

# -- methods ----------------------------------------------------------------------------

_TRACK_EXAMPLE = track_with(  # a field added to the Track shows up here blank until given a value
    rating_key="4242", title="Rich Girl", artist="Daryl Hall & John Oates",
    album_artist="Daryl Hall & John Oates", album="Bigger Than Both of Us",
    album_rating_key="4200", duration_ms=144000, year=1976, genres=["Pop", "Rock"],
    user_rating=8.0, is_live=False, track_number=3, disc_number=1, view_count=12,
    last_viewed_at="2026-02-01T20:15:00Z", added_at="2024-05-02T09:00:00Z",
    updated_at="2025-11-30T18:42:10Z",
)
_JOB_EXAMPLE = {
    "job_id": 17, "state": "succeeded", "mode": "incremental", "trigger": "manual", "phase": "done",
    "current": 12, "total": 12, "started_at": "2026-02-05T10:30:00Z",
    "finished_at": "2026-02-05T10:30:02Z", "added": 3, "updated": 9, "removed": 0, "error": None,
}
_SNAPSHOT = {"generation": 42, "synced_at": "2026-02-05T10:30:02Z"}


def _example(params: dict, result: Any, name: str = "example") -> dict:
    return {"name": name, "params": [{"name": k, "value": v} for k, v in params.items()],
            "result": {"name": "result", "value": result}}


METHODS: dict[str, dict[str, Any]] = {
    "daemon.info": {
        "description": "Who is answering: the daemon's version, pid and start time, the socket and "
                       "database it uses, and the Plex server and library it mirrors (the URL without "
                       "credentials; never the token).",
        "errors": [],
        "examples": [_example({}, {
            "version": "0.1.0", "pid": 4711, "started_at": "2026-02-05T08:00:00Z",
            "socket": "/run/mediasaged/mediasaged.sock", "database": "/var/lib/mediasaged/library_cache.db",
            "plex": {"url": "http://127.0.0.1:32400", "library": "Music",
                     "server_id": "0123456789abcdef", "server_name": "living-room"}})],
    },
    "library.status": {
        "description": "The cache's size and freshness, whether a sync runs (and how far it is), the last "
                       "sync's error (cleared by the next success), whether Plex answered lately and when "
                       "the next scheduled sync is due.",
        "errors": [],
        "examples": [_example({}, {
            "track_count": 18432, "synced_at": "2026-02-05T10:30:02Z", "generation": 42,
            "plex_server_id": "0123456789abcdef", "sync_duration_ms": 2140, "is_syncing": False,
            "sync_progress": None, "error": None, "stale": False, "plex_reachable": True,
            "next_sync_at": "2026-02-06T10:30:02Z"})],
    },
    "sync.start": {
        "description": "Starts a sync and returns at once; follow it with sync.status or the sync.* "
                       "events. If a sync already runs, started is false and job_id is the running "
                       "job's. Refused to read-only peers.",
        "params": {"mode": "auto (default): incremental when a complete cache of the same server exists, "
                           "else full; full: re-read the whole library; incremental: only what changed"},
        "errors": [INVALID_PARAMS, PERMISSION_DENIED],
        "examples": [_example({"mode": "full"}, {"started": True, "job_id": 18})],
    },
    "sync.status": {
        "description": "A sync job: the one named, else the running one, else the last one; "
                       "{\"state\": \"idle\"} when no job ever ran.",
        "params": {"job_id": "the job to show (an unknown id is -32602 naming job_id)"},
        "errors": [INVALID_PARAMS],
        "examples": [_example({"job_id": 17}, _JOB_EXAMPLE)],
    },
    "sync.cancel": {
        "description": "Cancels the running sync; the cache keeps its last complete state. cancelled is "
                       "false when none was running (or it finished first). Refused to read-only peers.",
        "errors": [INVALID_PARAMS, PERMISSION_DENIED],
        "examples": [_example({}, {"cancelled": True, "job_id": 18})],
    },
    "sync.history": {
        "description": "Recent sync jobs, newest first.",
        "params": {"limit": "how many jobs, 1-1000 (default 20)"},
        "errors": [INVALID_PARAMS],
        "examples": [_example({"limit": 1}, {"jobs": [_JOB_EXAMPLE]})],
    },
    "tracks.query": {
        "description": "Filters (all optional, combined with AND), text search, sort, random sampling and "
                       "paging over the cached tracks. total counts every match; tracks is one page.",
        "params": {"genre_mode": "any (default): a track matches if it has any of genres; all: every one",
                   "exclude_live": "drop live recordings (is_live, see sync.live_keywords)",
                   "order": "asc (default) or desc",
                   "offset": "skip this many matches (paging)"},
        "errors": _READS_CACHE,
        "examples": [_example({"genres": ["Rock"], "decades": ["1970s"], "min_rating": 8, "limit": 1},
                              {"total": 37, "tracks": [_TRACK_EXAMPLE], **_SNAPSHOT})],
    },
    "tracks.get": {
        "description": "Tracks by rating key, in the order asked, each once; keys not in the cache are "
                       "listed in missing.",
        "params": {"rating_keys": "Plex rating keys (at most 10,000)"},
        "errors": _READS_CACHE,
        "examples": [_example({"rating_keys": ["4242", "nope"]},
                              {"tracks": [_TRACK_EXAMPLE], "missing": ["nope"], **_SNAPSHOT})],
    },
    "library.stats": {
        "description": "Counts, total duration, genres (count desc, then name) and decades (ascending) over "
                       "the tracks that match the same filters as tracks.query.",
        "params": {"genre_mode": "any (default) or all, as in tracks.query",
                   "exclude_live": "drop live recordings",
                   "order": "accepted and validated as in tracks.query; does not change the counts",
                   "offset": "accepted and validated as in tracks.query; does not change the counts"},
        "errors": _READS_CACHE,
        "examples": [_example({"decades": ["1990s"]}, {
            "track_count": 2310, "artist_count": 190, "album_count": 240, "total_duration_ms": 552000000,
            "live_count": 41, "genres": [{"name": "Rock", "count": 900}],
            "decades": [{"decade": "1990s", "count": 2310}], **_SNAPSHOT})],
    },
    "tracks.match": {
        "description": "Resolves free-text references (what a playlist generator or an LLM writes, e.g. "
                       "\"Hall and Oates - Rich Girl (Remastered)\") to library tracks, in candidate order. "
                       "Matching ignores case, accents, punctuation, &/and, featured-artist credits and "
                       "version suffixes unless the candidate asks for that version; artist matches artist "
                       "or album artist. track is null when nothing scores min_score or more. The filters "
                       "of tracks.query restrict the tracks considered. At most 1,000 candidates a call.",
        "params": {"candidates": "references to resolve: {title, artist?, album?} each",
                   "genre_mode": "any (default) or all, as in tracks.query",
                   "exclude_live": "consider no live recordings"},
        "errors": _READS_CACHE,
        "examples": [_example({"candidates": [{"title": "Rich Girl (Remastered)", "artist": "Hall and Oates"}]},
                              {"matches": [{"index": 0, "track": _TRACK_EXAMPLE, "score": 96.0,
                                            "alternatives": []}], **_SNAPSHOT})],
    },
    "events.subscribe": {
        "description": "Receive these events on this connection as JSON-RPC notifications (method = the "
                       "event's name; see x-events). Answers the connection's whole subscription list.",
        "params": {"events": "event names: sync.started, sync.progress, sync.finished, library.changed"},
        "errors": [INVALID_PARAMS],
        "examples": [_example({"events": ["sync.finished"]}, {"subscribed": ["sync.finished"]})],
    },
    "events.unsubscribe": {
        "description": "Stop receiving these events (every one when events is not given); answers the "
                       "subscriptions left.",
        "params": {"events": "event names to drop (default: all)"},
        "errors": [INVALID_PARAMS],
        "examples": [_example({"events": ["sync.progress"]}, {"subscribed": ["sync.finished"]})],
    },
    "rpc.discover": {
        "description": "This document: OpenRPC 1.2 for every method, generated from the table dispatch "
                       "uses, with the events in x-events.",
        "errors": [],
        "examples": [],
    },
}

# -- events -------------------------------------------------------------------------------


def events(job_schema: dict) -> list[dict]:
    """The notifications a subscribed connection receives (``x-events``)."""
    changed = {"type": "object", "required": ["generation", "added", "updated", "removed"],
               "properties": {"generation": {"type": "integer"}, "added": {"type": "integer"},
                              "updated": {"type": "integer"}, "removed": {"type": "integer"}}}
    return [
        {"name": "sync.started", "summary": "A sync job started (any trigger).",
         "params": {"name": "job", "schema": job_schema}},
        {"name": "sync.progress", "summary": "A running job's phase and current/total, at most ~4 a second.",
         "params": {"name": "job", "schema": job_schema}},
        {"name": "sync.finished", "summary": "A job ended: succeeded, failed or cancelled.",
         "params": {"name": "job", "schema": job_schema}},
        {"name": "library.changed", "summary": "A completed sync changed the cache (generation went up).",
         "params": {"name": "change", "schema": changed}},
    ]
