"""The method table: every RPC method of CONTRACT §3, its handler and schemas.

Handlers are small: they read params, call the store, the syncer or the pure
query module, and shape the result. ``build_methods`` returns the one table that
dispatch, validation and ``rpc.discover`` all use.
"""

from __future__ import annotations

import os

from .. import __version__, query
from ..match import method as match
from ..params import Params
from ..plex.redact import safe_url
from .dispatch import CallContext, Method, invalid_param, openrpc_document
from .docs import events
from ..sync.jobs import MODES
from ..syncjob import JOB_SCHEMA
from ..timeutil import iso
from ..track import TIME_SCHEMA as _TIME

EVENTS = ("sync.started", "sync.progress", "sync.finished", "library.changed")

_INT_OR_NULL = {"type": ["integer", "null"]}
STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "track_count": {"type": "integer"},
        "synced_at": _TIME,
        "generation": {"type": "integer"},
        "plex_server_id": {"type": ["string", "null"]},
        "sync_duration_ms": _INT_OR_NULL,
        "is_syncing": {"type": "boolean"},
        "sync_progress": {"type": ["object", "null"]},
        "error": {"type": ["string", "null"]},
        "stale": {"type": "boolean"},
        "plex_reachable": {"type": ["boolean", "null"]},
        "next_sync_at": _TIME,
        "server_changed": {"type": "boolean"},
        "sync_owed": {"type": ["object", "null"], "properties": {
            "reason": {"type": "string"}, "retry_at": _TIME, "attempts": {"type": "integer"},
            "token_rejected": {"type": "boolean"}}},
    },
}
_EVENT_LIST = {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}}
_STRING_OR_NULL = {"type": ["string", "null"]}
INFO_SCHEMA = {
    "type": "object",
    "required": ["version", "pid", "started_at", "socket", "database", "plex"],
    "properties": {
        "version": {"type": "string"},
        "pid": {"type": "integer"},
        "started_at": _TIME,
        "socket": {"type": "string", "description": "the socket path this daemon answers on"},
        "database": {"type": "string"},
        "plex": {
            "type": "object",
            "required": ["url", "library", "server_id", "server_name"],
            "properties": {
                "url": {"type": "string", "description": "without user:password and query (no token)"},
                "library": {"type": "string"},
                "server_id": _STRING_OR_NULL,
                "server_name": _STRING_OR_NULL,
            },
        },
    },
}
# The shape of an OpenRPC document (its meta-schema is the full definition).
DISCOVER_SCHEMA = {
    "type": "object",
    "required": ["openrpc", "info", "methods"],
    "properties": {
        "openrpc": {"type": "string"},
        "info": {"type": "object", "required": ["title", "version"],
                 "properties": {"title": {"type": "string"}, "version": {"type": "string"}}},
        "methods": {"type": "array", "items": {
            "type": "object", "required": ["name", "params"],
            "properties": {"name": {"type": "string"}, "params": {"type": "array"}, "result": {"type": "object"},
                           "errors": {"type": "array"}, "examples": {"type": "array"}}}},
        "components": {"type": "object"},
        "x-events": {"type": "array", "items": {
            "type": "object", "required": ["name", "params"],
            "properties": {"name": {"type": "string"}, "params": {"type": "object"}}}},
    },
}


async def daemon_info(ctx: CallContext, params: dict) -> dict:
    s = ctx.services
    cfg = s.config
    state = await s.store.state()
    return {
        "version": __version__,
        "pid": os.getpid(),
        "started_at": iso(s.started_at),
        "socket": str(s.socket_path),
        "database": str(cfg.cache.path),
        "plex": {
            "url": safe_url(cfg.plex.url),  # no user:password@, no query
            "library": cfg.plex.library,
            "server_id": state.plex_server_id,
            "server_name": state.plex_server_name,
        },
    }


async def library_status(ctx: CallContext, params: dict) -> dict:
    s = ctx.services
    state = await s.store.state()
    stale = s.is_stale(state)
    return {
        "track_count": state.track_count,
        "synced_at": iso(state.synced_at),
        "generation": state.generation,
        "plex_server_id": state.plex_server_id,
        "sync_duration_ms": state.sync_duration_ms,
        "is_syncing": s.syncer.running,
        "sync_progress": s.syncer.progress(),
        "error": s.syncer.unrecorded_error or state.last_error,
        "stale": stale,
        "plex_reachable": s.syncer.plex_reachable,
        "server_changed": s.syncer.server_changed,
        "next_sync_at": iso(s.next_sync_at()),
        "sync_owed": owed_view(s.retry.view()),
    }


def owed_view(owed: dict | None) -> dict | None:
    if owed is None:
        return None
    return {**owed, "retry_at": iso(owed["retry_at"])}


async def sync_start(ctx: CallContext, params: dict) -> dict:
    mode = params.get("mode", "auto")
    started, job_id = await ctx.services.syncer.start(mode, "manual", restart=bool(params.get("restart")))
    return {"started": started, "job_id": job_id}


async def sync_status(ctx: CallContext, params: dict) -> dict:
    job_id = params.get("job_id")
    job = await ctx.services.syncer.status(job_id)
    if job is None:
        if job_id is not None:
            raise invalid_param("job_id", f"no job {job_id}")
        return {"state": "idle"}
    return job


async def sync_cancel(ctx: CallContext, params: dict) -> dict:
    cancelled, job_id = await ctx.services.syncer.cancel()
    return {"cancelled": cancelled, "job_id": job_id}


async def sync_history(ctx: CallContext, params: dict) -> dict:
    rows = await ctx.services.store.list_jobs(params.get("limit", 20))  # newest first
    return {"jobs": [job.view() for job in rows]}


async def tracks_query(ctx: CallContext, params: dict) -> dict:
    return await ctx.services.store.read(query.tracks_query(params, as_json=True))


async def tracks_get(ctx: CallContext, params: dict) -> dict:
    return await ctx.services.store.read(query.tracks_get(params, as_json=True))


async def tracks_match(ctx: CallContext, params: dict) -> dict:
    return await ctx.services.store.read(match.tracks_match(params, as_json=True))


async def library_stats(ctx: CallContext, params: dict) -> dict:
    return await ctx.services.store.read(query.library_stats(params))


async def events_subscribe(ctx: CallContext, params: dict) -> dict:
    ctx.connection.subscriptions.update(params["events"])
    return {"subscribed": sorted(ctx.connection.subscriptions)}


async def events_unsubscribe(ctx: CallContext, params: dict) -> dict:
    events = params.get("events", list(EVENTS))
    ctx.connection.subscriptions.difference_update(events)
    return {"subscribed": sorted(ctx.connection.subscriptions)}


def build_methods() -> dict[str, Method]:
    """The method table (handlers take the services from the call context)."""
    reads_cache = "Reads the cache; answers -32001 not_synced before the first sync."
    table = [
        Method("daemon.info", "Version, pid, start time, socket, database and Plex server.", daemon_info,
               result=INFO_SCHEMA, cheap=True),
        Method("library.status", "Cache size, freshness, sync progress and last error.", library_status,
               result=STATUS_SCHEMA, cheap=True),
        Method("sync.start", "Start a sync (returns at once; started=false if one runs).", sync_start,
               params=Params({"mode": {"enum": list(MODES), "default": "auto"},
                              "restart": {"type": "boolean", "default": False,
                                          "description": "a full sync starts from the first page instead of "
                                                         "resuming one cut short"}}),
               result={"type": "object", "properties": {"started": {"type": "boolean"},
                                                        "job_id": {"type": "integer"}}},
               writes=True, cheap=True),
        Method("sync.status", "The running job, else the last one, else {state: idle}.", sync_status,
               params=Params({"job_id": {"type": "integer", "minimum": 1}}),
               result=JOB_SCHEMA, cheap=True),
        Method("sync.cancel", "Cancel the running sync; the cache keeps its last complete state.", sync_cancel,
               result={"type": "object", "properties": {"cancelled": {"type": "boolean"},
                                                        "job_id": _INT_OR_NULL}},
               writes=True, cheap=True),
        Method("sync.history", "Recent sync jobs, newest first.", sync_history,
               params=Params({"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}}),
               result={"type": "object", "properties": {"jobs": {"type": "array", "items": JOB_SCHEMA}}}),
        Method("tracks.query", "Filter, search, sort, sample and page the cached tracks. " + reads_cache,
               tracks_query, params=query.QUERY_PARAMS, result=query.QUERY_RESULT_SCHEMA),
        Method("tracks.get", "Tracks by rating key, and the keys not found. " + reads_cache,
               tracks_get, params=query.GET_PARAMS, result=query.GET_RESULT_SCHEMA),
        Method("tracks.match", "Resolve free-text references (title, artist?, album?) to library tracks, each "
               "with a score 0-100; null below min_score. " + reads_cache,
               tracks_match, params=match.MATCH_PARAMS, result=match.MATCH_RESULT_SCHEMA),
        Method("library.stats", "Counts, duration, genres and decades over the matching tracks. " + reads_cache,
               library_stats, params=query.STATS_PARAMS, result=query.STATS_RESULT_SCHEMA),
        Method("events.subscribe", "Receive these events as notifications on this connection.", events_subscribe,
               params=Params({"events": _EVENT_LIST}, required=("events",)),
               result={"type": "object", "properties": {"subscribed": _EVENT_LIST}}, cheap=True),
        Method("events.unsubscribe", "Stop receiving these events (all when none are named).", events_unsubscribe,
               params=Params({"events": _EVENT_LIST}),
               result={"type": "object", "properties": {"subscribed": _EVENT_LIST}}, cheap=True),
    ]
    methods = {m.name: m for m in table}

    async def discover(ctx: CallContext, params: dict) -> dict:
        return openrpc_document(methods, events(JOB_SCHEMA))

    methods["rpc.discover"] = Method("rpc.discover", "This OpenRPC document.", discover, result=DISCOVER_SCHEMA)
    return methods
