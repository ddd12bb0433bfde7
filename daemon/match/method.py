"""tracks.match: params, the read function, the result shape and its JSON Schemas (no I/O).

Like the query methods, `tracks_match` validates everything at once (raising
`InvalidParam` naming the param, e.g. ``candidates[3].title``) and returns a
function of the store's read context. Tracks come out of SQLite as JSON text
(`TRACK_JSON_SQL`), so the ``matches`` array is spliced into the response as
one `RawJSON` value.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..query import FILTER_PARAMS, FILTERS_SCHEMA, TRACK_SCHEMA, InvalidParam, RawJSON, _Params, parse_filters
from ..query import SELECT_SQL, TRACK_JSON_SQL, row_to_track, where_sql
from ..query import _type_name
from ..timeutil import iso
from .lookup import find
from .score import Reference, Scored

MAX_CANDIDATES = 1000
MAX_ALTERNATIVES = 20
DEFAULT_MIN_SCORE = 85.0
MAX_FIELD = 1000
_FIELDS = ("title", "artist", "album")
MATCH_PARAMS = ("candidates", "min_score", "alternatives") + FILTER_PARAMS


def parse_candidates(value: Any) -> list[Reference]:
    if value is None:
        raise InvalidParam("candidates", "is required (an array of {title, artist?, album?} objects)")
    if type(value) is not list:
        raise InvalidParam("candidates", f"must be an array of objects, not {_type_name(value)}")
    if len(value) > MAX_CANDIDATES:
        raise InvalidParam("candidates", f"must have at most {MAX_CANDIDATES} items")
    refs = []
    for i, item in enumerate(value):
        name = f"candidates[{i}]"
        if type(item) is not dict:
            raise InvalidParam(name, f"must be an object with title, artist?, album?, not {_type_name(item)}")
        for key in item:
            if key not in _FIELDS:
                raise InvalidParam(f"{name}.{key}", "unknown field (expected title, artist, album)")
        fields = {}
        for key in _FIELDS:
            v = item.get(key)
            if v is not None and type(v) is not str:
                raise InvalidParam(f"{name}.{key}", f"must be a string, not {_type_name(v)}")
            if v is not None and len(v) > MAX_FIELD:
                raise InvalidParam(f"{name}.{key}", f"must be at most {MAX_FIELD} characters")
            fields[key] = v.strip() if v and v.strip() else None
        if fields["title"] is None:
            raise InvalidParam(f"{name}.title", "is required (a non-blank string)")
        refs.append(Reference.of(i, fields["title"], fields["artist"], fields["album"]))
    return refs


def _tracks(ctx: Any, ids: set[int], as_json: bool) -> dict[int, Any]:
    if not ids:
        return {}
    select = TRACK_JSON_SQL if as_json else SELECT_SQL
    rows = ctx.run(f"SELECT {select}, t.id FROM {{tracks}} t WHERE t.id IN (SELECT value FROM json_each(?))",
                   [json.dumps(sorted(ids))])
    return {r[-1]: (r[0] if as_json else row_to_track(r)) for r in rows}


def _shape(index: int, scored: list[Scored], min_score: float, alternatives: int) -> tuple:
    """(index, best or None, its score, alternatives) of one reference."""
    best = scored[0] if scored and scored[0].score >= min_score else None
    rest = scored[1:] if best else scored
    return index, best, (scored[0].score if scored else 0.0), rest[:alternatives]


def tracks_match(params: dict, *, as_json: bool = False) -> Callable[[Any], dict]:
    """Validate tracks.match params now; return ``fn(ctx) -> {matches, generation, synced_at}``."""
    p = _Params(params, MATCH_PARAMS)
    refs = parse_candidates(p.get("candidates"))
    min_score = p.number("min_score", 0, 100)
    min_score = DEFAULT_MIN_SCORE if min_score is None else float(min_score)
    alternatives = p.int("alternatives", 0, MAX_ALTERNATIVES, 0)
    where = where_sql(parse_filters(p))

    def run(ctx: Any) -> dict:
        found = find(ctx, refs, where, min_score, alternatives)
        shaped = [_shape(ref.index, s, min_score, alternatives) for ref, s in zip(refs, found)]
        ids = {s.id for _, best, _, alts in shaped for s in ([best] if best else []) + alts}
        tracks = _tracks(ctx, ids, as_json)
        meta = {"generation": ctx.state.generation, "synced_at": iso(ctx.state.synced_at)}
        if not as_json:
            return {"matches": [
                {"index": i, "track": tracks[best.id] if best else None, "score": score,
                 "alternatives": [{"track": tracks[a.id], "score": a.score} for a in alts]}
                for i, best, score, alts in shaped], **meta}
        items = []
        for i, best, score, alts in shaped:
            alt = ",".join(f'{{"track":{tracks[a.id]},"score":{json.dumps(a.score)}}}' for a in alts)
            items.append(f'{{"index":{i},"track":{tracks[best.id] if best else "null"},'
                         f'"score":{json.dumps(score)},"alternatives":[{alt}]}}')
        return {"matches": RawJSON("[" + ",".join(items) + "]"), **meta}

    return run


MATCH_PARAMS_SCHEMA: dict = {
    "type": "object", "additionalProperties": False, "required": ["candidates"],
    "properties": {
        "candidates": {"type": "array", "maxItems": MAX_CANDIDATES, "items": {
            "type": "object", "additionalProperties": False, "required": ["title"],
            "properties": {"title": {"type": "string", "maxLength": MAX_FIELD},
                           "artist": {"type": ["string", "null"], "maxLength": MAX_FIELD},
                           "album": {"type": ["string", "null"], "maxLength": MAX_FIELD}}},
            "description": "free-text references; artist matches a track's artist or album artist; album "
                           "only breaks ties"},
        "min_score": {"type": ["number", "null"], "minimum": 0, "maximum": 100, "default": DEFAULT_MIN_SCORE,
                      "description": "below it a reference's track is null"},
        "alternatives": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_ALTERNATIVES, "default": 0,
                         "description": "also return up to this many next-best tracks (score >= 50 or "
                                        "min_score, whichever is lower)"},
        **FILTERS_SCHEMA,
    },
}
_SNAPSHOT = {"generation": {"type": "integer"}, "synced_at": {"type": ["string", "null"], "format": "date-time"}}
MATCH_RESULT_SCHEMA: dict = {
    "type": "object", "required": ["matches", "generation", "synced_at"],
    "properties": {
        "matches": {"type": "array", "items": {
            "type": "object", "required": ["index", "track", "score", "alternatives"],
            "properties": {
                "index": {"type": "integer"},
                "track": {"oneOf": [TRACK_SCHEMA, {"type": "null"}]},
                "score": {"type": "number", "minimum": 0, "maximum": 100,
                          "description": "the best track's score (also when below min_score and null)"},
                "alternatives": {"type": "array", "items": {"type": "object", "properties": {
                    "track": TRACK_SCHEMA, "score": {"type": "number"}}}}}}},
        **_SNAPSHOT,
    },
}
