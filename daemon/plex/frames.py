"""Plex's notification stream: its URL and the library timeline entries of one frame.

Standard library only: the daemon process uses it without loading requests, lxml or plexapi.
"""
from __future__ import annotations

import json
import urllib.parse

from .attrs import to_int
from .redact import safe_url


# The type of a deleted item's entry on servers that no longer say what it was (clients written
# against current servers report it; captures of 2018-2019 show the item's own type). Followed
# too: the cache tells whether it was a track or an album (sync/targeted.py).
UNKNOWN_KIND = -1


def notifications_url(url: str, token: str) -> str:
    """The websocket URL of Plex's notification stream. It carries the token in its query
    string (Plex takes it only there): never log or show it — log ``safe_url(url)``."""
    p = urllib.parse.urlsplit(safe_url(url))
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
                        "state": int(e["state"]), "updated_at": to_int(str(e.get("updatedAt") or ""))})
        except (KeyError, TypeError, ValueError):
            continue
    return out
