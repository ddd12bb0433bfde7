"""Track rows -> CONTRACT track objects, as Python dicts or as JSON text built by SQLite (pure).

The daemon answers with `RawJSON`: SQLite's ``json_object`` writes each track
object, so the hot path never builds (and the RPC layer never re-encodes) one
dict per track. `row_to_track` is the same shape in Python, for callers that
want objects; tests hold the two equal.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import unicodedata

from .timeutil import iso

TRACK_COLUMNS = ("rating_key", "title", "artist", "album_artist", "album", "album_rating_key", "duration_ms",
                 "year", "genres", "user_rating", "is_live", "track_number", "disc_number", "view_count",
                 "last_viewed_at", "added_at", "updated_at")
_TIMES = ("last_viewed_at", "added_at", "updated_at")


def _iso_sql(column: str) -> str:
    # Times are formatted by SQLite (much cheaper than datetime); row_to_track takes either form.
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', t.{column}, 'unixepoch')"


SELECT_SQL = ", ".join(_iso_sql(c) if c in _TIMES else f"t.{c}" for c in TRACK_COLUMNS)

_JSON_VALUE = {
    "genres": "json(coalesce(nullif(t.genres, ''), '[]'))",
    "is_live": "json(CASE WHEN t.is_live THEN 'true' ELSE 'false' END)",
    "view_count": "coalesce(t.view_count, 0)",
}
# One track object per row, in the key order of row_to_track.
TRACK_JSON_SQL = "json_object(" + ", ".join(
    f"'{c}', " + (_iso_sql(c) if c in _TIMES else _JSON_VALUE.get(c, f"t.{c}")) for c in TRACK_COLUMNS) + ")"


class RawJSON:
    """JSON text that the RPC serializer writes out as is (see rpc._to_json)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text[:60]!r})"


def _time(v: Any) -> str | None:
    return v if v is None or type(v) is str else iso(v)


def row_to_track(row: Sequence[Any]) -> dict:
    """A row in `TRACK_COLUMNS` order (times as unix seconds or ISO text) -> the CONTRACT track object."""
    (rating_key, title, artist, album_artist, album, album_rating_key, duration_ms, year, genres, user_rating,
     is_live, track_number, disc_number, view_count, last_viewed_at, added_at, updated_at) = row[:17]
    return {
        "rating_key": rating_key,
        "title": title,
        "artist": artist,
        "album_artist": album_artist,
        "album": album,
        "album_rating_key": album_rating_key,
        "duration_ms": duration_ms,
        "year": year,
        "genres": json.loads(genres) if genres else [],
        "user_rating": user_rating,
        "is_live": bool(is_live),
        "track_number": track_number,
        "disc_number": disc_number,
        "view_count": view_count or 0,
        "last_viewed_at": _time(last_viewed_at),
        "added_at": _time(added_at),
        "updated_at": _time(updated_at),
    }


def _json_array(items: list[str]) -> RawJSON:
    return RawJSON("[" + ",".join(items) + "]")


def fetch_tracks(ctx: Any, ids: list[int], as_json: bool = False) -> list[dict] | RawJSON:
    """The track objects of internal ``ids``, in that order (``as_json``: one JSON array)."""
    if not ids:
        return RawJSON("[]") if as_json else []
    select = TRACK_JSON_SQL if as_json else SELECT_SQL
    found = {r[-1]: r for r in ctx.run(
        f"SELECT {select}, t.id FROM {{tracks}} t WHERE t.id IN (SELECT value FROM json_each(?))",
        [json.dumps(ids)])}
    if as_json:
        return _json_array([found[i][0] for i in ids])
    return [row_to_track(found[i]) for i in ids]


def tracks_by_key(ctx: Any, keys: list[str], as_json: bool = False) -> tuple[list[dict] | RawJSON, list[str]]:
    """(the tracks of rating ``keys`` that exist, in that order; the keys that do not)."""
    found: dict = {}
    if keys:
        select = TRACK_JSON_SQL if as_json else SELECT_SQL
        found = {r[-1]: r for r in ctx.run(
            f"SELECT {select}, t.rating_key FROM {{tracks}} t "
            "WHERE t.rating_key IN (SELECT value FROM json_each(?))", [json.dumps(keys)])}
    present = [found[k] for k in keys if k in found]
    tracks = _json_array([r[0] for r in present]) if as_json else [row_to_track(r) for r in present]
    return tracks, [k for k in keys if k not in found]


# ---- folding and sorting ----------------------------------------------------------------

def fold(s: str) -> str:
    """The match/sort key of a name: ``casefold(NFC(s))`` (Unicode-correct, "BJÖRK" == "Björk")."""
    return unicodedata.normalize("NFC", s).casefold()


# (column, nullable); `order` applies to these. Other sorts continue with the
# artist keys ascending; the last tiebreak is always t.id ascending.
_SORT_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "artist": (("t.artist_key", False), ("t.album_key", False), ("t.disc_number", True), ("t.track_number", True)),
    "title": (("t.title_key", False),),
    "album": (("t.album_key", False), ("t.album_artist_key", False), ("t.disc_number", True),
              ("t.track_number", True)),
    "year": (("t.year", True),),
    "duration": (("t.duration_ms", True),),
    "rating": (("t.user_rating", True),),
    "added": (("t.added_at", True),),
}


def order_by_sql(sort: str, order: str) -> str:
    """ORDER BY text: NULLs last in both directions (SQLite puts NULLs last on DESC by itself)."""
    def term(col: str, nullable: bool, direction: str) -> str:
        return f"{col} {direction}" + (" NULLS LAST" if nullable and direction == "ASC" else "")

    direction = "DESC" if order == "desc" else "ASC"
    keys = _SORT_KEYS[sort]
    parts = [term(c, n, direction) for c, n in keys]
    if sort != "artist":
        parts += [term(c, n, "ASC") for c, n in _SORT_KEYS["artist"] if (c, n) not in keys]
    parts.append("t.id ASC")
    return ", ".join(parts)


# ---- the published Track schema ----------------------------------------------------------

_TIME = {"type": ["string", "null"], "format": "date-time"}
_INT_OR_NULL = {"type": ["integer", "null"]}

TRACK_SCHEMA: dict = {
    "type": "object",
    "required": list(TRACK_COLUMNS),
    "properties": {
        "rating_key": {"type": "string"}, "title": {"type": "string"}, "artist": {"type": "string"},
        "album_artist": {"type": "string"}, "album": {"type": "string"},
        "album_rating_key": {"type": ["string", "null"]}, "duration_ms": _INT_OR_NULL, "year": _INT_OR_NULL,
        "genres": {"type": "array", "items": {"type": "string"}},
        "user_rating": {"type": ["number", "null"], "minimum": 0, "maximum": 10},
        "is_live": {"type": "boolean"}, "track_number": _INT_OR_NULL, "disc_number": _INT_OR_NULL,
        "view_count": {"type": "integer"},
        "last_viewed_at": _TIME, "added_at": _TIME, "updated_at": _TIME,
    },
}
