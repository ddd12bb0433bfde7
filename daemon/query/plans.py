"""tracks.query / tracks.get / library.stats: plans, SQL and results (pure).

No I/O here and no sqlite3: each public function checks its params at once
(against the published schema, `schemas`, then what `filters` checks; raising
`InvalidParam` before anything touches the database) and returns a function of
a ``store.ReadContext`` that only calls ``ctx.run(sql, params)``. Over RPC,
dispatch has checked the params with the same `Params` already; checking checked
params again gives the same params, costs a microsecond or two, and keeps these
functions safe to call directly (tests, benchmarks). SQL names tables through
``{tracks}``/``{genres}``/``{fts}`` (the store fills in the live slot); every value
is bound; column names come from whitelists. How each kind of request is answered
is described in docs/DESIGN.md, "Queries".
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from typing import Any, Callable, Sequence

from ..timeutil import iso
from ..track import ALBUM_SQL, fetch_tracks, fold, order_by_sql, tracks_by_key
from .filters import (Compare, ExcludeGenres, Filter, GenresAll, GenresAny, Page, Text, YearRanges, _and,
                      parse_filters, parse_page)
from .schemas import GET_PARAMS, QUERY_PARAMS, STATS_PARAMS

# --------------------------------------------------------------------------- plans


def where_sql(filters: Sequence[Filter], alias: str = "t") -> tuple[str, list]:
    """WHERE text for ``{tracks} t``; decade/rating/live conditions are also pushed into a genre filter."""
    push = [f for f in filters if f.pushable]
    return _and([f.sql(push, alias) for f in filters])


def genre_driven(filters: Sequence[Filter]) -> tuple[GenresAny, list[Filter]] | None:
    """(the genre filter, the rest) if the genre table alone can answer ``filters``."""
    genre = [f for f in filters if isinstance(f, GenresAny)]
    rest = [f for f in filters if not isinstance(f, GenresAny)]
    return (genre[0], rest) if len(genre) == 1 and all(f.on_genre_rows for f in rest) else None


def ids_source(filters: Sequence[Filter]) -> tuple[str, str, list]:
    """(column, FROM ... text, params) of the cheapest query yielding the matching track ids once each."""
    if len(filters) == 1 and isinstance(filters[0], Text):
        return "r.track_id", Text.SOURCE, [filters[0].match]
    if driven := genre_driven(filters):
        sub, params = driven[0].subquery(driven[1], distinct=True)
        return "track_id", f"FROM ({sub})", params
    if not filters:
        return "t.id", "FROM {tracks} t", []
    where, params = where_sql(filters)
    return "t.id", f"FROM {{tracks}} t WHERE {where}", params


def count_matches(ctx: Any, filters: Sequence[Filter]) -> int:
    """How many tracks match. Excluded genres are subtracted when that avoids probing every track."""
    ex = next((f for f in filters if isinstance(f, ExcludeGenres)), None)
    if ex is not None:
        rest = [f for f in filters if f is not ex]
        if all(f.pushable for f in rest):
            return count_matches(ctx, rest) - count_matches(ctx, [*rest, GenresAny(ex.keys)])
    if len(filters) == 1 and isinstance(filters[0], Text):  # the full-text index alone
        return ctx.run("SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", [filters[0].match])[0][0]
    _, source, params = ids_source(filters)
    return ctx.run(f"SELECT count(*) {source}", params)[0][0]


def plan(ctx: Any, filters: Sequence[Filter]) -> list[Filter]:
    """Filters tuned to the data: "all genres" starts from its rarest genre (capped counts); with a
    rating condition, years are listed one by one where they are few (`filters.YearRanges`), and a
    year bound on one side becomes the range up to the library's last (or from its first) year."""
    rated = any(isinstance(f, Compare) and f.column == "user_rating" for f in filters)
    out = []
    for f in filters:
        if isinstance(f, GenresAll) and len(f.keys) > 1:
            sizes = {k: ctx.run("SELECT count(*) FROM (SELECT 1 FROM {genres} WHERE genre_key = ? LIMIT 2000)",
                                [k])[0][0] for k in f.keys}
            f = GenresAll(tuple(sorted(f.keys, key=sizes.__getitem__)))
        elif rated and isinstance(f, YearRanges):
            f = f.seeking()
        elif rated and isinstance(f, Compare) and f.column == "year" and f.op in (">=", "<="):
            first, last = ctx.run("SELECT (SELECT min(year) FROM {tracks}), (SELECT max(year) FROM {tracks})")[0]
            lo, hi = (f.value, last) if f.op == ">=" else (first, f.value)
            if first is not None and lo <= hi:
                f = YearRanges(((lo, hi),)).seeking()
        out.append(f)
    return out


def _meta(ctx: Any) -> dict:
    return {"generation": ctx.state.generation, "synced_at": iso(ctx.state.synced_at)}


# --------------------------------------------------------------------------- sorting

def shuffled_prefix(ids: list, k: int, rng: random.Random) -> list:
    """The first ``k`` items of a uniform random permutation of ``ids`` (partial Fisher-Yates).

    The first k items only depend on the first k draws, so paging through with
    the same seed (offset 0, 100, ...) walks one consistent permutation.
    """
    n = len(ids)
    moved: dict[int, int] = {}  # the positions a full Fisher-Yates would have swapped so far
    out = []
    for i in range(min(k, n)):
        j = rng.randrange(i, n)
        out.append(ids[moved.get(j, j)])
        moved[j] = moved.get(i, i)
    return out


def matching_ids(ctx: Any, filters: Sequence[Filter]) -> Sequence:
    """The ids of the matching tracks (as int or str), each once, in a fixed order.

    The whole library, numbered without gaps (a full sync numbers rows 1..n),
    is just ``range(lo, hi + 1)``: three index lookups instead of reading 100k ids.
    """
    if not filters:
        # sync_state's track_count is the live slot's (no count(*): that reads every page of the table)
        n = ctx.state.track_count
        lo, hi = ctx.run("SELECT (SELECT min(id) FROM {tracks}), (SELECT max(id) FROM {tracks})")[0]
        if n == 0 or lo is None:
            return []
        if hi - lo + 1 == n:
            return range(lo, hi + 1)
    column, source, params = ids_source(filters)
    found = (ctx.run(f"SELECT group_concat({column}) {source}", params)[0][0] or "").split(",")
    return [] if found == [""] else found


# --------------------------------------------------------------------------- methods


PACKED_LIMIT = 50_000  # matches of several genres deduplicated here, at most (see _page_by_rank)
ID_MASK = (1 << 31) - 1  # a packed match's track id (see _page_by_rank)


def _genre_rows(ctx: Any, keys: Sequence[str]) -> int:
    """How many genre rows these genres have (their stored track counts, `store/stats.py`)."""
    return ctx.run(f"SELECT coalesce(sum(track_count), 0) FROM {{stats}} WHERE genre_key IN "
                   f"({', '.join('?' * len(keys))})", list(keys))[0][0]


def _page_by_rank(ctx: Any, driven: tuple[GenresAny, list[Filter]], page: Page) -> tuple[int | None, list[int]]:
    """(total, ids) for the default order from the genre index alone (it holds each track's artist_rank);
    total None: count separately (`count_matches`).

    One genre (or "all of them"): each track matches once, so SQLite keeps the first rows in
    rank order while it scans and stops there. Several genres: a track in two of them matches
    twice. Up to PACKED_LIMIT matching rows come back packed in one string, each as
    ``1 << 62 | rank << 31 | id`` (rank < 2**31, id < 2**31): 19 decimal digits each, so their
    text sorts as their numbers do, and they are deduplicated, counted and the page taken
    without converting them all (~0.4 µs a match). Past that (or when the genres' stored
    counts say so before any filter), SQLite counts (`count_matches`, grouped: ~0.2 µs a row)
    and keeps the first (offset + limit) * len(keys) rows by rank, which hold the page: a
    track's rows share its rank. At a million tracks, three popular genres (139k rows): ~34 ms,
    against ~44 packed and 63 as it was (SQLite's DISTINCT and GROUP BY rank).
    Text narrows the genre rows by their rank (the FTS rowid, `Text.cond`); finding those
    matches is then the dear part, so the packed pass serves one genre too (total and page
    in one pass: at 1M, "love" in the largest genre ~20 ms, where counting and paging
    through the tracks table took ~160).
    """
    genre, rest = driven
    sub, params = genre.subquery(rest, cols="g.track_id")
    wanted = page.offset + page.limit
    # A filter on the genre rows that is not a copied column (text, excluded genres) makes finding
    # the matches the dear part (the FTS rowids, the excluded ranks): found once, for total and page.
    once = (len(genre.keys) == 1 or isinstance(genre, GenresAll)) and all(f.pushable for f in rest)
    if once:  # each track matches once: SQLite keeps the first rows by rank, count_matches counts
        rows = ctx.run(f"{sub} ORDER BY g.artist_rank LIMIT ? OFFSET ?", params + [page.limit, page.offset])
        return None, [r[0] for r in rows]
    if rest or _genre_rows(ctx, genre.keys) <= PACKED_LIMIT:
        psub, pparams = genre.subquery(rest, cols="(1 << 62) | (g.artist_rank << 31) | g.track_id AS p")
        packed = ctx.run(f"SELECT group_concat(p) FROM ({psub} LIMIT {PACKED_LIMIT + 1})", pparams)[0][0]
        matches = packed.split(",") if packed else []
        if len(matches) <= PACKED_LIMIT:
            found = set(matches)  # a track in two of the genres matched twice
            return len(found), [int(v) & ID_MASK for v in heapq.nsmallest(wanted, found)[page.offset:]]
    rows = ctx.run(f"{sub} ORDER BY g.artist_rank LIMIT ?", params + [wanted * len(genre.keys)])
    return None, list(dict.fromkeys(r[0] for r in rows))[page.offset:wanted]


def tracks_query(params: dict, *, as_json: bool = False) -> Callable[[Any], dict]:
    """Validate tracks.query params now; return ``fn(ctx) -> {total, tracks, generation, synced_at}``.

    ``as_json``: ``tracks`` is one `RawJSON` array (what the daemon sends) instead of dicts.
    """
    p = QUERY_PARAMS.check(params)
    filters = parse_filters(p)
    page = parse_page(p)

    def run(ctx: Any) -> dict:
        planned = plan(ctx, filters)
        ids: list = []
        if page.sort == "random":
            found = matching_ids(ctx, planned)
            total = len(found)
            if page.limit and page.offset < total:
                rng = random.Random(page.seed) if page.seed is not None else random.Random()
                ids = [int(i) for i in shuffled_prefix(found, page.offset + page.limit, rng)[page.offset:]]
        else:
            total = None
            driven = genre_driven(planned)
            by_rank = driven is not None and (page.sort, page.order) == ("artist", "asc")
            if by_rank and page.limit:
                total, ids = _page_by_rank(ctx, driven, page)
            if total is None:  # the same for every page of these filters: counted once a snapshot
                total = ctx.cached(("tracks.query total", tuple(filters)), lambda: count_matches(ctx, planned))
            by_text = (len(planned) == 1 and isinstance(planned[0], Text)
                       and (page.sort, page.order) == ("artist", "asc"))
            if by_text and page.limit and page.offset < total:
                # The FTS rowid is the default-order rank: the index yields matches in
                # that order and the page stops after `limit`.
                ids = [r[0] for r in ctx.run(f"SELECT r.track_id {Text.SOURCE} ORDER BY {{fts}}.rowid LIMIT ? OFFSET ?",
                                             [planned[0].match, page.limit, page.offset])]
            elif page.limit and page.offset < total and not by_rank:
                # Many matches: walk the sort order (an index) and stop after the page,
                # keeping SQLite off the filters' indexes ("+t"); few: filter, then sort.
                walk = total * total > (page.offset + page.limit) * max(ctx.state.track_count, total)
                where, wparams = where_sql(planned, "+t" if walk else "t")
                ids = [r[0] for r in ctx.run(
                    f"SELECT t.id FROM {{tracks}} t WHERE {where} "
                    f"ORDER BY {order_by_sql(page.sort, page.order)} LIMIT ? OFFSET ?",
                    wparams + [page.limit, page.offset])]
        return {"total": total, "tracks": fetch_tracks(ctx, ids, as_json), **_meta(ctx)}

    return run


def tracks_get(params: dict, *, as_json: bool = False) -> Callable[[Any], dict]:
    """Validate tracks.get params now; return ``fn(ctx) -> {tracks, missing, generation, synced_at}``.

    Tracks come back in the order asked for, each once; ``missing`` lists the
    keys not in the library (also in order, each once).
    """
    keys = list(dict.fromkeys(GET_PARAMS.check(params)["rating_keys"]))

    def run(ctx: Any) -> dict:
        tracks, missing = tracks_by_key(ctx, keys, as_json)
        return {"tracks": tracks, "missing": missing, **_meta(ctx)}

    return run


def library_stats(params: dict) -> Callable[[Any], dict]:
    """Validate library.stats params now; return ``fn(ctx) -> {track_count, ..., genres, decades, ...}``.

    Takes the tracks.query filters. sort/order/seed/limit/offset are accepted
    (and validated) so a client can pass the same object, but do not matter.
    """
    filters = parse_filters(STATS_PARAMS.check(params))

    # The whole library, or one genre alone: precomputed at the end of each sync.
    single = len(filters) == 1 and isinstance(filters[0], GenresAny) and len(filters[0].keys) == 1
    stored_key = "" if not filters else filters[0].keys[0] if single else None

    def stored(ctx: Any) -> tuple:
        row = ctx.run("SELECT track_count, artist_count, album_count, total_duration_ms, live_count "
                      "FROM {stats} WHERE genre_key = ?", [stored_key])
        count, artists, albums, duration, live = row[0] if row else (0, 0, 0, 0, 0)
        facets = ctx.run("SELECT kind, item, min(name), sum(n) FROM {facets} WHERE genre_key = ? "
                         "GROUP BY kind, item", [stored_key])
        grows = sorted(((k, name, n) for kind, k, name, n in facets if kind == "g"), key=lambda r: (-r[2], r[0], r[1]))
        drows = sorted((d, n) for kind, d, _, n in facets if kind == "d")
        return count, artists, albums, duration, live, tuple(grows), tuple(drows)

    def compute(ctx: Any) -> tuple:
        """The stored rows, or the figures of the matching tracks, remembered for the snapshot
        (`ReadContext.cached`: a client asking the same again, as a view is shown again, gets
        them at once; at 1M tracks three genres take ~0.2 s to compute)."""
        if stored_key is not None:
            return stored(ctx)
        return ctx.cached(("library.stats", tuple(filters)), lambda: from_matches(ctx),
                          lambda figures: len(figures[5]) + len(figures[6]))  # genres and decades

    def from_matches(ctx: Any) -> tuple:
        """One pass over the matching tracks, grouped by what the figures need (an album's
        tracks mostly share all four); the groups are summed here. (Three statements, each
        finding the matches again and looking up each one, took up to 1.8x as long: at 1M
        tracks, three genres' 134k tracks, 0.38 s against 0.23 s.)"""
        column, source, sparams = ids_source(plan(ctx, filters))
        groups = ctx.run(f"SELECT t.genres, t.artist_key, {ALBUM_SQL}, t.year, count(*), "
                         f"coalesce(sum(t.duration_ms), 0), coalesce(sum(t.is_live), 0) FROM {{tracks}} t "
                         f"WHERE t.id IN (SELECT {column} {source}) GROUP BY 1, 2, 3, 4", sparams)
        count = duration = live = 0
        artists, albums, decades = set(), set(), Counter()
        genres: dict[str, list] = {}  # key -> [tracks, the smallest spelling]
        lists: dict[str | None, list] = {}  # a stored genre list (JSON text) -> (key, name)s: few differ
        for names, artist, album, year, n, d, lv in groups:
            count, duration, live = count + n, duration + d, live + lv
            artists.add(artist)
            albums.add(album)
            if year is not None:
                decades[year // 10 * 10] += n
            if names not in lists:
                lists[names] = [(fold(name), name) for name in (json.loads(names) if names else [])]
            for key, name in lists[names]:
                g = genres.setdefault(key, [0, name])
                g[0] += n
                g[1] = min(g[1], name)
        grows = sorted(((k, name, n) for k, (n, name) in genres.items()), key=lambda r: (-r[2], r[0], r[1]))
        artists.discard(None)
        albums.discard(None)
        return count, len(artists), len(albums), duration, live, tuple(grows), tuple(sorted(decades.items()))

    def run(ctx: Any) -> dict:
        stats = compute(ctx)
        count, artists, albums, duration, live, grows, drows = stats
        return {
            "track_count": count,
            "artist_count": artists,
            "album_count": albums,
            "total_duration_ms": duration,
            "live_count": live,
            "genres": [{"name": name, "count": n} for _, name, n in grows],
            "decades": [{"decade": f"{d}s", "count": n} for d, n in drows],
            **_meta(ctx),
        }

    return run
