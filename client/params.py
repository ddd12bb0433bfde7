"""mediasagectl: parsed arguments → the JSON-RPC requests the commands send (pure).

No I/O here: ``request_for`` maps a parsed command line to ``(method, params)``,
with the helpers that turn filter options, relative times and ``call`` arguments
into JSON-RPC params.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from typing import Any, Sequence

from . import fmt
from .durations import duration_seconds
from .errors import UsageError

SYNC_EVENTS = ["sync.started", "sync.progress", "sync.finished"]
ALL_EVENTS = SYNC_EVENTS + ["library.changed"]


# -- arguments → JSON-RPC requests (pure) ----------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def time_arg(value: str, now: dt.datetime) -> str:
    """``7d`` / ``1.5h`` (a duration, `durations`) → the ISO time that long before ``now``;
    ``2026-01-31`` → that day's start (UTC); anything else is passed on for the daemon to validate."""
    seconds = duration_seconds(value)
    if seconds is not None:
        try:
            return fmt.iso(now - dt.timedelta(seconds=seconds))
        except OverflowError:
            raise UsageError(f"{value.strip()} ago is before the year 1") from None
    if _DATE.match(value.strip()):
        return value.strip() + "T00:00:00Z"
    return value


def filter_params(ns: argparse.Namespace, now: dt.datetime) -> dict[str, Any]:
    """The ``tracks.query`` / ``library.stats`` filters the user gave (and only those)."""
    params: dict[str, Any] = {}
    for name in ("genres", "exclude_genres", "decades"):
        if getattr(ns, name, None):
            params[name] = list(getattr(ns, name))
    for name in ("genre_mode", "year_min", "year_max", "min_rating", "artist", "album", "text"):
        value = getattr(ns, name, None)
        if value is not None:
            params[name] = value
    if getattr(ns, "exclude_live", None):
        params["exclude_live"] = True
    for name in ("added_after", "updated_after"):
        value = getattr(ns, name, None)
        if value is not None:
            params[name] = time_arg(value, now)
    return params


def query_params(ns: argparse.Namespace, now: dt.datetime) -> dict[str, Any]:
    params = filter_params(ns, now)
    sort = "random" if ns.random else ns.sort
    if sort is not None:
        params["sort"] = sort
    if ns.desc:
        params["order"] = "desc"
    for name in ("seed", "limit", "offset"):
        value = getattr(ns, name)
        if value is not None:
            params[name] = value
    return params


def parse_call_params(args: Sequence[str]) -> Any:
    """``call`` arguments → params, httpie-style. Nothing → None (no params sent); one
    JSON object or array → it; else ``key=string`` (the value as a string, always) and
    ``key:=json`` (the value parsed as JSON) pairs → an object. Raises :class:`UsageError`."""
    if not args:
        return None
    if len(args) == 1 and args[0].lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(args[0])
        except json.JSONDecodeError as exc:
            raise UsageError(f"params are not valid JSON: {exc}") from None
        if not isinstance(value, (dict, list)):
            raise UsageError("JSON params must be an object or an array")
        return value
    params: dict[str, Any] = {}
    for arg in args:
        match = _PAIR.match(arg)
        if not match:
            raise UsageError(f"expected key=string or key:=json (or one JSON object), got {arg!r}")
        key, op, raw = match.group(1), match.group(2), match.group(3)
        if op == "=":
            params[key] = raw
            continue
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{key}:= needs a JSON value ({exc}), got {raw!r}") from None
    return params


# the key is everything up to the first "=" or ":=": keys are identifiers like year_min
_PAIR = re.compile(r"^([^=:]+)(:=|=)(.*)$", re.DOTALL)


def request_for(ns: argparse.Namespace, now: dt.datetime | None = None) -> tuple[str, Any]:
    """The (first) JSON-RPC call a parsed command makes: ``(method, params)``."""
    now = now or fmt.utcnow()
    command = ns.command
    if command == "status":
        return "library.status", None
    if command == "sync":
        params = {"mode": ns.mode} if ns.mode else {}
        if getattr(ns, "restart", False):
            params["restart"] = True
        return "sync.start", params
    if command == "cancel":
        return "sync.cancel", None
    if command == "history":
        return "sync.history", ({"limit": ns.limit} if ns.limit is not None else {})
    if command == "query":
        return "tracks.query", query_params(ns, now)
    if command == "get":
        return "tracks.get", {"rating_keys": list(ns.keys)}
    if command == "stats":
        return "library.stats", filter_params(ns, now)
    if command == "match":  # the candidates are added per call (mediasagectl.matching)
        params = filter_params(ns, now)
        for name in ("min_score", "alternatives"):
            if getattr(ns, name, None) is not None:
                params[name] = getattr(ns, name)
        return "tracks.match", params
    if command == "watch":
        return "events.subscribe", {"events": list(ALL_EVENTS)}
    if command == "call":
        return ns.method, getattr(ns, "call_params", None)
    raise UsageError(f"unknown command {command!r}")  # pragma: no cover - argparse prevents it
