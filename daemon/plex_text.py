"""Plex text that must never leak the token, and notification frames: standard library only.

The daemon process uses this (plex_events.py) without loading requests, lxml or
plexapi, which only the sync worker needs; plex.py and plex_support.py use it too.
"""
from __future__ import annotations

import json
import urllib.parse


def _safe_url(url: str) -> str:
    """scheme://host[:port][/path] — no userinfo, no query (either may hold a secret)."""
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{p.port}" if p.port else host
        return urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))
    except ValueError:
        return "<invalid URL>"


def _redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "<token>")
        quoted = urllib.parse.quote(token, safe="")
        if quoted != token:
            text = text.replace(quoted, "<token>")
    return text


def _int(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            return None


# ---- notifications (ws://HOST/:/websockets/notifications) ------------------------------------

def notifications_url(url: str, token: str) -> str:
    """The websocket URL of Plex's notification stream. It carries the token in its query
    string (Plex takes it only there): never log or show it — log ``_safe_url(url)``."""
    p = urllib.parse.urlsplit(_safe_url(url))
    scheme = "wss" if p.scheme == "https" else "ws"
    query = urllib.parse.urlencode({"X-Plex-Token": token})
    return urllib.parse.urlunsplit((scheme, p.netloc, p.path + "/:/websockets/notifications",
                                    query, ""))


def timeline_entries(frame: str | bytes, section_id: str | None = None) -> list[dict]:
    """Library timeline entries of one notification frame, as
    ``{"item_id": str, "type": int (8 artist, 9 album, 10 track), "state": int (0 created,
    5 done, 9 deleted), "updated_at": int | None}``; other frames (activity, status, junk)
    give []."""
    try:
        nc = json.loads(frame)["NotificationContainer"]
    except (ValueError, KeyError, TypeError):
        return []
    if not isinstance(nc, dict) or nc.get("type") != "timeline":
        return []
    out = []
    for e in nc.get("TimelineEntry") or []:
        if not isinstance(e, dict) or e.get("identifier") != "com.plexapp.plugins.library":
            continue
        if section_id is not None and str(e.get("sectionID")) != str(section_id):
            continue
        try:
            out.append({"item_id": str(e["itemID"]), "type": int(e["type"]),
                        "state": int(e["state"]), "updated_at": _int(str(e.get("updatedAt") or ""))})
        except (KeyError, TypeError, ValueError):
            continue
    return out
