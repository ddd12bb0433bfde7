"""Candidate tracks for references, from the cache's match indexes (no sqlite3 here).

Never a scan of the library: every lookup is an index probe or a short index
range on the normalized columns that the sync stored (`normalize.match_keys`):

1. exact keys, for all references of a call at once (one query per column):
   the tracks whose ``m_artist`` or ``m_album_artist`` is a reference's artist
   key, and those whose ``m_title`` is its title key. A typo in one of the two
   is found through the other.
2. only for references still without a track scoring ``min_score``: key
   prefixes (the first half of the key, at least `PREFIX` characters), of the
   title and of the artist, each capped at `RANGE_LIMIT` rows. This finds
   typos in both, or an unusual spelling of one and a typo in the other, as
   long as each sits in the second half of its key.

The filters of tracks.query are ANDed to every lookup, so they restrict the
tracks considered. SQL uses ``{tracks}`` like `query` does; ``ctx.run`` fills it.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from .score import ALTERNATIVE_FLOOR, Reference, Row, Scored, score_rows

ROW_SQL = "t.id, t.m_title, t.m_tags, t.m_artist, t.m_album_artist, t.m_album, t.is_live"
PREFIX = 4
RANGE_LIMIT = 500
_TOP = "\U0010ffff"  # sorts after every other character (as UTF-8 bytes too)


def _by_key(ctx: Any, column: str, keys: set[str], where: tuple[str, list]) -> dict[str, list[Row]]:
    """Rows whose ``column`` is one of ``keys``, grouped by that key."""
    out: dict[str, list[Row]] = {}
    if not keys:
        return out
    col = {"m_title": 1, "m_artist": 3, "m_album_artist": 4}[column]
    rows = ctx.run(f"SELECT {ROW_SQL} FROM {{tracks}} t WHERE t.{column} IN (SELECT value FROM json_each(?)) "
                   f"AND {where[0]}", [json.dumps(sorted(keys), ensure_ascii=False), *where[1]])
    for r in rows:
        out.setdefault(r[col], []).append(r)
    return out


def _prefix(key: str) -> str:
    return key[: max(PREFIX, len(key) // 2)]


def _range(ctx: Any, column: str, key: str, where: tuple[str, list]) -> list[Row]:
    p = _prefix(key)
    return ctx.run(f"SELECT {ROW_SQL} FROM {{tracks}} t WHERE t.{column} >= ? AND t.{column} < ? AND {where[0]} "
                   f"LIMIT {RANGE_LIMIT}", [p, p + _TOP, *where[1]])


def find(ctx: Any, refs: Sequence[Reference], where: tuple[str, list], min_score: float,
         alternatives: int) -> list[list[Scored]]:
    """For each reference, its scored tracks best first (at most 1 + ``alternatives``)."""
    floor = min(min_score, ALTERNATIVE_FLOOR)  # below min_score: the score of a null match, alternatives
    keep = 1 + alternatives
    artists = {r.artist for r in refs if r.artist}
    by_artist = _by_key(ctx, "m_artist", artists, where)
    by_album_artist = _by_key(ctx, "m_album_artist", artists, where)
    by_title = _by_key(ctx, "m_title", {r.title for r in refs}, where)
    results: list[list[Scored]] = []
    for ref in refs:
        rows = by_title.get(ref.title, []) + by_artist.get(ref.artist, []) + by_album_artist.get(ref.artist, [])
        scored = score_rows(ref, rows, floor)
        if not scored or scored[0].score < min_score:
            more = _range(ctx, "m_title", ref.title, where)
            if ref.artist:
                more += _range(ctx, "m_artist", ref.artist, where) + _range(ctx, "m_album_artist", ref.artist, where)
            scored = score_rows(ref, rows + more, floor)
        results.append(scored[:keep])
    return results
