"""Candidate tracks for references, from the cache's match indexes (no sqlite3 here).

Never a scan of the library: every lookup is an index probe or a short index
range on the normalized columns that the sync stored (`normalize.match_keys`):

1. exact keys, for all references of a call at once (one query per column):
   the tracks whose ``m_artist`` or ``m_album_artist`` is a reference's artist
   key, and those whose ``m_title`` is its title key and whose artist key
   starts with the same letter. A typo in one of the two is found through the
   other.
2. only for references whose artist key found no track and that scored
   nothing through their title: key
   prefixes (the first half of the key, at least `PREFIX` characters) of the
   title and of the artist, the other key starting with the same letter, each
   capped at `RANGE_LIMIT` rows. This finds typos in both, or an unusual
   spelling of one and a typo in the other, as long as each sits in the second
   half of its key.

The filters of tracks.query are ANDed to every lookup, so they restrict the
tracks considered. SQL uses ``{tracks}`` like `query` does; ``ctx.run`` fills it.
"""

from __future__ import annotations

import json
from itertools import groupby
from operator import itemgetter
from typing import Any, Sequence

from .score import (ALTERNATIVE_FLOOR, NEAR_MISS, Reference, Row, Scored, artist_hits, ceiling, score_rows,
                    title_hits)

ROW_SQL = "t.id, t.m_title, t.m_tags, t.m_artist, t.m_album_artist, t.m_album, t.is_live"
PREFIX = 4
RANGE_LIMIT = 300
_TOP = "\U0010ffff"  # sorts after every other character (as UTF-8 bytes too)


BIG_ARTIST = 500  # more tracks than this: only titles starting with the reference's first letter are read


def _titles_by_artist(ctx: Any, refs: Sequence[Reference], where: tuple[str, list]) -> dict[tuple[str, str], list]:
    """Entries ending with (id, m_title, m_tags) of the tracks whose artist or album-artist key is a reference's,
    by `_artist_slice`.

    Read from the two artist indexes alone (they hold the title and tags), so
    these are index entries, not rows; `find` reads the rows of the titles that
    score. An artist with more than `BIG_ARTIST` tracks ("Various Artists", a
    composer) only gives the titles that start with the reference title's
    letter (keyed by artist and letter; other artists' letter is "").
    """
    out: dict[tuple[str, str], list] = {}
    keys = sorted({r.artist for r in refs if r.artist})
    if not keys:
        return out
    sizes = dict(ctx.run("SELECT j.value, (SELECT count(*) FROM (SELECT 1 FROM {tracks} t WHERE t.m_artist = j.value "
                         f"LIMIT {BIG_ARTIST + 1})) + (SELECT count(*) FROM (SELECT 1 FROM {{tracks}} t WHERE "
                         f"t.m_album_artist = j.value LIMIT {BIG_ARTIST + 1})) FROM json_each(?) j",
                         [json.dumps(keys, ensure_ascii=False)]))
    big = {k for k in keys if sizes.get(k, 0) > BIG_ARTIST}
    small = [k for k in keys if k not in big]
    # big artists: "<first letter of the title><artist key>" per reference
    letters = sorted({r.title[:1] + r.artist for r in refs if r.artist in big})
    for column, other in (("m_artist", ""), ("m_album_artist", " AND t.m_artist <> t.m_album_artist")):
        if small:  # (a track whose artist is its album artist is read once)
            rows = ctx.run(f"SELECT j.key, t.id, t.m_title, t.m_tags FROM json_each(?) j JOIN {{tracks}} t "
                           f"ON t.{column} = j.value WHERE 1{other} AND {where[0]}",
                           [json.dumps(small, ensure_ascii=False), *where[1]])
            for k, group in groupby(rows, key=itemgetter(0)):
                out.setdefault((small[k], ""), []).extend(group)
        if letters:
            rows = ctx.run(f"SELECT j.key, t.id, t.m_title, t.m_tags FROM json_each(?) j "
                           f"JOIN {{tracks}} t ON t.{column} = substr(j.value, 2) "
                           f"AND t.m_title >= substr(j.value, 1, 1) AND t.m_title < substr(j.value, 1, 1) || "
                           f"char(1114111) WHERE 1{other} AND {where[0]}",
                           [json.dumps(letters, ensure_ascii=False), *where[1]])
            for k, group in groupby(rows, key=itemgetter(0)):
                out.setdefault((letters[k][1:], letters[k][:1]), []).extend(group)
    return out


def _artist_slice(ref: Reference, by_artist: dict[tuple[str, str], list]) -> list:
    """The reference's entries of `_titles_by_artist` (its letter's, if its artist is a big one)."""
    return by_artist.get((ref.artist, ""), None) or by_artist.get((ref.artist, ref.title[:1]), [])


def _rows(ctx: Any, ids: set[int]) -> dict[int, Row]:
    if not ids:
        return {}
    return {r[0]: r for r in ctx.run(f"SELECT {ROW_SQL} FROM {{tracks}} t WHERE t.id IN (SELECT value FROM "
                                     "json_each(?))", [json.dumps(sorted(ids))])}


def _artists_by_title(ctx: Any, refs: Sequence[Reference], where: tuple[str, list]) -> dict[tuple[str, str], list]:
    """Entries ending with (id, m_artist, m_album_artist or None if the same) of the tracks with a reference's title
    key, by (title key, artist letter).

    From the title index alone (it holds both artist keys), and only the tracks
    whose artist key starts with the reference's letter: one seek per pair, so
    a common title ("Intro", "Love") is not every track of that name (a typo in
    an album-artist reference is found by the look-around instead). Each pair
    travels as one string, the letter first. References without artist get
    every track of their title.
    """
    out: dict[tuple[str, str], list] = {}
    pairs = sorted({(r.title, r.artist[:1]) for r in refs if r.artist})
    if pairs:
        rows = ctx.run("SELECT j.key, t.id, t.m_artist, nullif(t.m_album_artist, t.m_artist) FROM json_each(?) j "
                       "JOIN {tracks} t ON t.m_title = substr(j.value, 2) AND t.m_artist >= substr(j.value, 1, 1) "
                       f"AND t.m_artist < substr(j.value, 1, 1) || char(1114111) WHERE {where[0]}",
                       [json.dumps([f + t for t, f in pairs], ensure_ascii=False), *where[1]])
        for k, group in groupby(rows, key=itemgetter(0)):
            out.setdefault(pairs[k], []).extend(group)
    titles = sorted({r.title for r in refs if not r.artist})
    if titles:
        rows = ctx.run("SELECT j.key, t.id, t.m_artist, nullif(t.m_album_artist, t.m_artist) FROM json_each(?) j "
                       f"JOIN {{tracks}} t ON t.m_title = j.value WHERE {where[0]}",
                       [json.dumps(titles, ensure_ascii=False), *where[1]])
        for k, group in groupby(rows, key=itemgetter(0)):
            out.setdefault((titles[k], ""), []).extend(group)
    return out


def _exact(ctx: Any, refs: Sequence[Reference], where: tuple[str, list]) -> dict[tuple[str, str], list[Row]]:
    """Rows whose title key is a reference's and whose artist or album-artist key is too, by (title, artist) key.

    Index seeks only, in one statement: ``(m_title, m_artist)`` and
    ``(m_album_artist, m_title)``; a reference without artist gets every track of its title.
    """
    pairs = sorted({(r.title, r.artist) for r in refs})
    out: dict[tuple[str, str], list[Row]] = {}
    if not pairs:
        return out
    t, a = "json_extract(j.value, '$[0]')", "json_extract(j.value, '$[1]')"
    parts = (f"t.m_title = {t} AND t.m_artist = {a}",
             f"t.m_album_artist = {a} AND t.m_title = {t} AND t.m_artist <> {a}",
             f"{a} = '' AND t.m_title = {t}")
    sql = " UNION ALL ".join(f"SELECT {t}, {a}, {ROW_SQL} FROM json_each(?) j JOIN {{tracks}} t ON {p} "
                             f"WHERE {where[0]}" for p in parts)
    params = [json.dumps(pairs, ensure_ascii=False), *where[1]]
    for title, artist, *row in ctx.run(sql, params * len(parts)):
        out.setdefault((title, artist), []).append(row)
    return out


def _settled(ref: Reference, rows: Sequence[Row], floor: float) -> list[Scored] | None:
    """The best of a reference's exact rows when no other track can rank above or beside it, else None."""
    scored = score_rows(ref, rows, floor)
    if scored and ceiling(ref) < scored[0].score - scored[0].penalty:
        return scored[:1]
    return None


def _prefix(key: str) -> str:
    return key[: max(PREFIX, len(key) // 2)]


def _range(ctx: Any, column: str, key: str, columns: str, other: Sequence[str], first: str,
           where: tuple[str, list]) -> list[tuple]:
    """(id, ``columns``) of the tracks whose ``column`` starts with the key's first half and one of whose
    ``other`` keys starts with ``first``: at most `RANGE_LIMIT`, from the column's index (entries, not rows)."""
    p = _prefix(key)
    cond, params = "", []
    if first:
        cond = " AND (" + " OR ".join(f"(t.{o} >= ? AND t.{o} < ?)" for o in other) + ")"
        params = [first, first + _TOP] * len(other)
    return ctx.run(f"SELECT t.id, {columns} FROM {{tracks}} t WHERE t.{column} >= ? AND t.{column} < ?{cond} "
                   f"AND {where[0]} LIMIT {RANGE_LIMIT}", [p, p + _TOP, *params, *where[1]])


def _around(ctx: Any, ref: Reference, where: tuple[str, list], floor: float) -> set[int]:
    """Ids from the ranges of both keys' prefixes (`_range`) whose other key can still reach ``floor``."""
    ids = artist_hits(ref, _range(ctx, "m_title", ref.title, "t.m_artist, t.m_album_artist",
                                  ("m_artist", "m_album_artist"), ref.artist[:1], where), floor)
    if ref.artist:
        for column in ("m_artist", "m_album_artist"):
            ids |= title_hits(ref, _range(ctx, column, ref.artist, "t.m_title, t.m_tags", ("m_title",),
                                          ref.title[:1], where), floor)
    return ids


def find(ctx: Any, refs: Sequence[Reference], where: tuple[str, list], min_score: float,
         alternatives: int) -> list[list[Scored]]:
    """For each reference, its scored tracks best first (at most 1 + ``alternatives``)."""
    # below min_score: the score of a null match (NEAR_MISS), and alternatives
    every = refs
    floor = max(0.0, min_score - NEAR_MISS)
    if alternatives:
        floor = min(floor, ALTERNATIVE_FLOOR)
    keep = 1 + alternatives
    results: list[list[Scored] | None] = [None] * len(refs)
    if not alternatives:
        # Exact keys first: a track with both keys exact (and its version
        # penalty small enough) is the answer, and the fuzzy paths are skipped.
        exact = _exact(ctx, refs, where)
        for i, ref in enumerate(refs):
            rows = exact.get((ref.title, ref.artist))
            results[i] = _settled(ref, rows, floor) if rows else None
    todo = [i for i, r in enumerate(results) if r is None]
    refs = [every[i] for i in todo]
    by_artist = _titles_by_artist(ctx, refs, where)
    by_title = _artists_by_title(ctx, refs, where)
    wanted = []
    for ref in refs:
        same_title = by_title.get((ref.title, ref.artist[:1]), ())
        wanted.append(title_hits(ref, _artist_slice(ref, by_artist), floor) | artist_hits(ref, same_title, floor))
    rows_by_id = _rows(ctx, set().union(*wanted))
    around = []
    for pos, ref, ids in zip(todo, refs, wanted):
        rows = [rows_by_id[i] for i in ids]
        scored = score_rows(ref, rows, floor)
        results[pos] = scored[:keep]
        # Neither key found anything: look around both (typos in both, or one
        # spelled unusually and the other with a typo).
        if not scored and not _artist_slice(ref, by_artist):
            around.append((pos, ref, rows))
    if around:
        extra = [_around(ctx, ref, where, floor) for _, ref, _ in around]
        more = _rows(ctx, set().union(*extra))
        for (pos, ref, rows), ids in zip(around, extra):
            results[pos] = score_rows(ref, rows + [more[i] for i in ids], floor)[:keep]
    return results  # type: ignore[return-value]  # every item is set
