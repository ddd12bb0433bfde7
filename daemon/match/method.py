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

from ..params import InvalidParam, Params
from ..query.filters import parse_filters
from ..query.plans import where_sql
from ..query.schemas import FILTERS_SCHEMA
from ..track import SELECT_SQL, TIME_SCHEMA, TRACK_JSON_SQL, TRACK_SCHEMA, RawJSON, row_to_track
from ..timeutil import iso
from .lookup import find
from .score import Reference, Scored

MAX_CANDIDATES = 1000
MAX_ALTERNATIVES = 20
DEFAULT_MIN_SCORE = 85.0
MAX_FIELD = 1000

_CANDIDATE = {
    "type": "object", "additionalProperties": False, "required": ["title"],
    "properties": {"title": {"type": "string", "maxLength": MAX_FIELD},
                   "artist": {"type": ["string", "null"], "maxLength": MAX_FIELD},
                   "album": {"type": ["string", "null"], "maxLength": MAX_FIELD}},
}
MATCH_PARAMS = Params({
    "candidates": {"type": "array", "maxItems": MAX_CANDIDATES, "items": _CANDIDATE,
                   "title": f"an array of at most {MAX_CANDIDATES} objects {{title, artist?, album?}} "
                            f"(strings of at most {MAX_FIELD} characters; title not blank)",
                   "description": "free-text references; artist matches a track's artist or album artist; "
                                  "album only breaks ties"},
    "min_score": {"type": "number", "minimum": 0, "maximum": 100, "default": DEFAULT_MIN_SCORE,
                  "description": "below it a reference's track is null"},
    "alternatives": {"type": "integer", "minimum": 0, "maximum": MAX_ALTERNATIVES, "default": 0,
                     "description": "also return up to this many next-best tracks (score >= 50 or min_score, "
                                    "whichever is lower), best first"},
    **FILTERS_SCHEMA,
}, required=("candidates",))


def parse_candidates(items: list[dict]) -> list[Reference]:
    """Checked candidates -> references; a blank title is refused, blank artist/album count as absent."""
    refs = []
    for i, item in enumerate(items):
        title = (item.get("title") or "").strip()
        if not title:
            raise InvalidParam(f"candidates[{i}].title", "must not be blank")
        artist = (item.get("artist") or "").strip() or None
        album = (item.get("album") or "").strip() or None
        refs.append(Reference.of(i, title, artist, album))
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
    p = MATCH_PARAMS.check(params)
    refs = parse_candidates(p["candidates"])
    min_score = float(p.get("min_score", DEFAULT_MIN_SCORE))
    alternatives = p.get("alternatives", 0)
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


MATCH_PARAMS_SCHEMA: dict = MATCH_PARAMS.schema
_SNAPSHOT = {"generation": {"type": "integer"}, "synced_at": TIME_SCHEMA}
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
