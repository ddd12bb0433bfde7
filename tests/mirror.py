"""The reference for sync tests: what the cache must hold for an emulator library, and what it holds."""

from __future__ import annotations

import re
from datetime import datetime

from tests.rows import as_track

KEYWORDS = ["live", "concert", "unplugged", "in concert", "bootleg"]
DATE = re.compile(r"(?<!\d)(?:(?:19|20)\d\d[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:19|20)\d\d)(?!\d)")


def expected_is_live(title: str, album: str) -> bool:
    """The live rule, written independently of the daemon: whole-word runs or a date."""
    for text in (title, album):
        words = re.findall(r"\w+", text.casefold())
        for keyword in KEYWORDS:
            kw = keyword.split()
            if any(words[i:i + len(kw)] == kw for i in range(len(words))):
                return True
        if DATE.search(text):
            return True
    return False


def plexapi_library(emu) -> dict[str, dict]:
    """The tracks plexapi reads from ``emu`` over HTTP (tests/plex_oracle.py), with our is_live
    rule applied: the oracle for real answers, never the emulator's model."""
    from tests.plex_oracle import plexapi_tracks

    tracks = plexapi_tracks(emu.url, emu.token)
    for t in tracks.values():
        t["is_live"] = expected_is_live(t["title"], t["album"])
    return tracks


def expected_library(emu) -> dict[str, dict]:
    tracks = emu.library.expected_tracks()
    for t in tracks.values():
        t["is_live"] = expected_is_live(t["title"], t["album"])
    return {k: as_track(t) for k, t in tracks.items()}


def iso_to_unix(value):
    return None if value is None else int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


async def cached_library(daemon) -> dict[str, dict]:
    result = await daemon.call("tracks.query", limit=10000)
    assert result["total"] == len(result["tracks"])
    tracks = {}
    for t in result["tracks"]:
        t = dict(t)
        for key in ("last_viewed_at", "added_at", "updated_at"):
            t[key] = iso_to_unix(t[key])
        tracks[t["rating_key"]] = t
    return tracks


def assert_mirror(cached: dict, expected: dict) -> None:
    missing = expected.keys() - cached.keys()
    phantom = cached.keys() - expected.keys()
    wrong = {k: (cached[k], expected[k]) for k in expected.keys() & cached.keys() if cached[k] != expected[k]}
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:5]}"
    assert not phantom, f"{len(phantom)} phantom, e.g. {sorted(phantom)[:5]}"
    assert not wrong, f"{len(wrong)} wrong, e.g. {next(iter(wrong.values()))}"


def full_track_listings(emu) -> int:
    """Track listings without a "changed since" filter (a full paging, or the track count)."""
    return sum(1 for p in emu.request_log if "/all?" in p and "type=10" in p and not changed_since(p))


def changed_since(path: str) -> bool:
    """Whether a track listing's path has an "edited / played / rated since" filter (the fields of
    daemon/plex/rows.py's CHANGE_FIELDS, written here again)."""
    return re.search(r"track\.(updatedAt|lastViewedAt|lastRatedAt)", path) is not None
