"""The query methods' params (`params.Params`: published by rpc.discover and enforced) and results."""

from __future__ import annotations

from ..params import TIME_PARAM, Params
from ..track import TIME_SCHEMA as _TIME, TRACK_SCHEMA
from .filters import (_DECADE, DEFAULT_LIMIT, GENRE_MODES, MAX_LIMIT, MAX_LIST, MAX_OFFSET, MAX_RATING_KEYS,
                      MAX_STRING, ORDERS, SORTS)

# --------------------------------------------------------------------------- JSON Schemas (OpenRPC)

_STRINGS = {"type": ["array", "null"], "items": {"type": "string", "maxLength": MAX_STRING}, "maxItems": MAX_LIST}

FILTERS_SCHEMA: dict = {
    "genres": {**_STRINGS, "description": "case-insensitive; a track matches if it has any of them "
                                          "(genre_mode \"all\": all of them); [] = no filter"},
    "genre_mode": {"enum": list(GENRE_MODES) + [None], "default": "any"},
    "exclude_genres": {**_STRINGS, "description": "drop tracks with any of these genres"},
    "decades": {**_STRINGS, "items": {"type": "string", "pattern": _DECADE.pattern,
                                      "title": "a decade like \"1990s\""},
                "description": "e.g. [\"1990s\", \"2000s\"]: year within any of them"},
    "year_min": {"type": ["integer", "null"], "minimum": 0, "maximum": 9999, "description": "inclusive"},
    "year_max": {"type": ["integer", "null"], "minimum": 0, "maximum": 9999, "description": "inclusive"},
    "min_rating": {"type": ["number", "null"], "minimum": 0, "maximum": 10,
                   "description": "user_rating >= it; unrated tracks are excluded when set"},
    "exclude_live": {"type": ["boolean", "null"], "default": False},
    "artist": {"type": ["string", "null"], "maxLength": MAX_STRING,
               "description": "case-insensitive exact match of artist or album_artist"},
    "album": {"type": ["string", "null"], "maxLength": MAX_STRING, "description": "case-insensitive exact match"},
    "text": {"type": ["string", "null"], "maxLength": MAX_STRING,
             "description": "every word must prefix-match a word of title, artist, album artist or album; case- "
                            "and accent-insensitive. Blank = no filter; text without letters or digits is an error"},
    "added_after": {**TIME_PARAM, "description": "ISO 8601 time or date (UTC if no offset); strictly after"},
    "updated_after": {**TIME_PARAM, "description": "ISO 8601 time or date (UTC if no offset); strictly after"},
}
PAGE_SCHEMA: dict = {
    "sort": {"enum": list(SORTS) + [None], "default": "artist",
             "description": "artist = artist, album, disc, track; others continue with those; "
                            "NULLs last in both orders; final tiebreak: internal id"},
    "order": {"enum": list(ORDERS) + [None], "default": "asc"},
    "seed": {"type": ["integer", "null"], "description": "makes sort \"random\" reproducible (and pageable)"},
    "limit": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
              "description": "0 returns only total"},
    "offset": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
}
QUERY_PARAMS = Params({**FILTERS_SCHEMA, **PAGE_SCHEMA})
STATS_PARAMS = Params({**FILTERS_SCHEMA, **PAGE_SCHEMA},
                      description="the tracks.query filters; sort/order/seed/limit/offset are ignored")
GET_PARAMS = Params({"rating_keys": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_RATING_KEYS}},
                    required=("rating_keys",))
_SNAPSHOT = {"generation": {"type": "integer"}, "synced_at": _TIME}
QUERY_RESULT_SCHEMA: dict = {
    "type": "object", "required": ["total", "tracks", "generation", "synced_at"],
    "properties": {"total": {"type": "integer"}, "tracks": {"type": "array", "items": TRACK_SCHEMA}, **_SNAPSHOT},
}
GET_RESULT_SCHEMA: dict = {
    "type": "object", "required": ["tracks", "missing", "generation", "synced_at"],
    "properties": {"tracks": {"type": "array", "items": TRACK_SCHEMA},
                   "missing": {"type": "array", "items": {"type": "string"}}, **_SNAPSHOT},
}
STATS_RESULT_SCHEMA: dict = {
    "type": "object",
    "required": ["track_count", "artist_count", "album_count", "total_duration_ms", "live_count", "genres",
                 "decades", "generation", "synced_at"],
    "properties": {
        "track_count": {"type": "integer"}, "artist_count": {"type": "integer"},
        "album_count": {"type": "integer"}, "total_duration_ms": {"type": "integer"},
        "live_count": {"type": "integer"},
        "genres": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "count": {"type": "integer"}}}},
        "decades": {"type": "array", "items": {"type": "object", "properties": {
            "decade": {"type": "string"}, "count": {"type": "integer"}}}},
        **_SNAPSHOT,
    },
}
