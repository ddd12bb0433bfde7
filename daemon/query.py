"""tracks.query / tracks.get / library.stats: validation and SQL building (pure).

No I/O here and no sqlite3: each public function validates its params at once
(raising `InvalidParam` before anything touches the database) and returns a
function of a ``store.ReadContext`` that only calls ``ctx.run(sql, params)``.
SQL names tables through ``{tracks}``/``{genres}``/``{fts}`` (the store fills in
the live slot); every value is bound; column names come from the whitelists
below. Filters are small classes, each yielding one ``(sql, params)`` fragment,
combined with AND.
"""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .timeutil import iso, parse_iso

MAX_LIMIT = 10000
DEFAULT_LIMIT = 100
MAX_OFFSET = 10**9
MAX_RATING_KEYS = 10000
MAX_LIST = 100  # genres / exclude_genres / decades items
MAX_STRING = 1000
MAX_WORDS = 64  # words in `text`
SORTS = ("artist", "title", "album", "year", "duration", "rating", "added", "random")
ORDERS = ("asc", "desc")
GENRE_MODES = ("any", "all")
_DECADE = re.compile(r"^([0-9]{3})0s$")


def fold(s: str) -> str:
    """The match/sort key of a name: ``casefold(NFC(s))`` (Unicode-correct, "BJÖRK" == "Björk")."""
    return unicodedata.normalize("NFC", s).casefold()


class InvalidParam(Exception):
    """A bad request parameter; ``str()`` is ``"<param>: <message>"``."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


# --------------------------------------------------------------------------- filters


class Filter:
    """One condition on the tracks table (alias ``t``)."""

    pushable = False  # also expressible on the genre table (alias g), which copies year/user_rating/is_live

    def sql(self, push: Sequence[Filter] = (), alias: str = "t") -> tuple[str, list]:
        """The condition on the tracks row; ``alias`` "+t" keeps SQLite off this filter's index."""
        return self.cond(alias)

    def cond(self, alias: str) -> tuple[str, list]:
        raise NotImplementedError


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _and(parts: Sequence[tuple[str, list]]) -> tuple[str, list]:
    return " AND ".join(s for s, _ in parts) or "1", [v for _, p in parts for v in p]


@dataclass(frozen=True)
class YearRanges(Filter):
    ranges: tuple[tuple[int, int], ...]  # inclusive, merged, ascending
    pushable = True

    def cond(self, alias):
        parts = " OR ".join(f"{alias}.year BETWEEN ? AND ?" for _ in self.ranges)
        return f"({parts})", [v for r in self.ranges for v in r]


@dataclass(frozen=True)
class Compare(Filter):
    """``t.<column> <op> ?`` for a whitelisted column and operator."""

    column: str
    op: str
    value: Any

    @property
    def pushable(self) -> bool:
        return self.column in ("year", "user_rating", "is_live")

    def cond(self, alias):
        assert self.column in _COMPARABLE and self.op in ("=", ">", ">=", "<=")
        return f"{alias}.{self.column} {self.op} ?", [self.value]


_COMPARABLE = frozenset({"year", "user_rating", "is_live", "album_key", "added_at", "updated_at"})


@dataclass(frozen=True)
class GenresAny(Filter):
    keys: tuple[str, ...]

    def subquery(self, push: Sequence[Filter], distinct: bool = False, cols: str = "g.track_id"
                 ) -> tuple[str, list]:
        """SELECT ``cols`` (of alias g) FROM the genre table; ``distinct``: each track once."""
        where, params = _and([(f"g.genre_key IN ({_marks(len(self.keys))})", list(self.keys))]
                             + [f.cond("g") for f in push])
        dist = "DISTINCT " if distinct and len(self.keys) > 1 else ""
        return f"SELECT {dist}{cols} FROM {{genres}} g WHERE {where}", params

    def sql(self, push=(), alias="t"):
        sub, params = self.subquery(push)
        return f"{alias}.id IN ({sub})", params


@dataclass(frozen=True)
class GenresAll(GenresAny):
    def subquery(self, push, distinct=False, cols="g.track_id"):
        first, *rest = self.keys
        where, params = _and([("g.genre_key = ?", [first])] + [f.cond("g") for f in push] + [
            ("EXISTS (SELECT 1 FROM {genres} g2 WHERE g2.genre_key = ? AND g2.track_id = g.track_id)", [k])
            for k in rest])
        return f"SELECT {cols} FROM {{genres}} g WHERE {where}", params


@dataclass(frozen=True)
class ExcludeGenres(Filter):
    keys: tuple[str, ...]

    def cond(self, alias):
        return (f"NOT EXISTS (SELECT 1 FROM {{genres}} x WHERE x.track_id = {alias}.id "
                f"AND x.genre_key IN ({_marks(len(self.keys))}))", list(self.keys))


@dataclass(frozen=True)
class Artist(Filter):
    key: str

    def cond(self, alias):
        return f"({alias}.artist_key = ? OR {alias}.album_artist_key = ?)", [self.key, self.key]


@dataclass(frozen=True)
class Text(Filter):
    match: str  # an FTS5 query built by fts_query()

    def cond(self, alias):
        return f"{alias}.id IN (SELECT rowid FROM {{fts}} WHERE {{fts}} MATCH ?)", [self.match]


def where_sql(filters: Sequence[Filter], alias: str = "t") -> tuple[str, list]:
    """WHERE text for ``{tracks} t``; decade/rating/live conditions are also pushed into a genre filter."""
    push = [f for f in filters if f.pushable]
    return _and([f.sql(push, alias) for f in filters])


def genre_driven(filters: Sequence[Filter]) -> tuple[GenresAny, list[Filter]] | None:
    """(the genre filter, the rest) if the genre table alone can answer ``filters``."""
    genre = [f for f in filters if isinstance(f, GenresAny)]
    rest = [f for f in filters if not isinstance(f, GenresAny)]
    return (genre[0], rest) if len(genre) == 1 and all(f.pushable for f in rest) else None


def ids_source(filters: Sequence[Filter]) -> tuple[str, str, list]:
    """(column, FROM ... text, params) of the cheapest query yielding the matching track ids once each."""
    if len(filters) == 1 and isinstance(filters[0], Text):
        return "rowid", "FROM {fts} WHERE {fts} MATCH ?", [filters[0].match]
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
    _, source, params = ids_source(filters)
    return ctx.run(f"SELECT count(*) {source}", params)[0][0]


def plan(ctx: Any, filters: Sequence[Filter]) -> list[Filter]:
    """Filters tuned to the data: "all genres" starts from its rarest genre (capped counts)."""
    out = []
    for f in filters:
        if isinstance(f, GenresAll) and len(f.keys) > 1:
            sizes = {k: ctx.run("SELECT count(*) FROM (SELECT 1 FROM {genres} WHERE genre_key = ? LIMIT 2000)",
                                [k])[0][0] for k in f.keys}
            f = GenresAll(tuple(sorted(f.keys, key=sizes.__getitem__)))
        out.append(f)
    return out


def _is_word_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "LNM" or cat == "Co"


def split_words(text: str) -> list[str]:
    """Words as FTS5's unicode61 tokenizer sees them, near enough.

    Letters, numbers, marks and private-use characters make up words; anything
    else separates them. (unicode61 also splits at some combining marks; a word
    we keep whole is then matched as a phrase of its pieces, which is right.)
    A word of marks alone is dropped.
    """
    words, cur = [], []
    for ch in fold(text):
        if _is_word_char(ch):
            cur.append(ch)
        elif cur:
            words.append("".join(cur))
            cur = []
    if cur:
        words.append("".join(cur))
    return [w for w in words if any(unicodedata.category(c)[0] != "M" for c in w)]


def fts_query(text: str) -> str:
    """``"word1"* "word2"*``: every word must prefix-match a word of some column.

    Each word is an FTS5 string (double quotes doubled), so user text can never
    be read as FTS syntax (AND/OR/NEAR, column filters, ``^``...).
    """
    return " ".join('"' + w.replace('"', '""') + '"*' for w in split_words(text))


# --------------------------------------------------------------------------- validation


def _type_name(v: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object",
            type(None): "null"}.get(type(v), type(v).__name__)


class _Params:
    """A params object being validated: rejects unknown names; null = absent."""

    def __init__(self, params: Any, allowed: Sequence[str]):
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise InvalidParam("params", "must be an object (parameters by name)")
        for name in params:
            if name not in allowed:
                raise InvalidParam(str(name), f"unknown parameter (expected one of: {', '.join(allowed)})")
        self.p = params

    def get(self, name: str) -> Any:
        return self.p.get(name)

    def int(self, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
        v = self.p.get(name)
        if v is None:
            return default
        if type(v) is float and v.is_integer():
            v = int(v)
        if type(v) is not int or not lo <= v <= hi:
            raise InvalidParam(name, f"must be an integer between {lo} and {hi}")
        return v

    def any_int(self, name: str) -> int | None:
        v = self.p.get(name)
        if type(v) is float and v.is_integer():
            v = int(v)
        if v is not None and type(v) is not int:
            raise InvalidParam(name, f"must be an integer, not {_type_name(v)}")
        return v

    def number(self, name: str, lo: float, hi: float) -> float | None:
        v = self.p.get(name)
        if v is None:
            return None
        if type(v) not in (int, float) or not math.isfinite(v) or not lo <= v <= hi:
            raise InvalidParam(name, f"must be a number between {lo:g} and {hi:g}")
        return v

    def bool(self, name: str, default: bool = False) -> bool:
        v = self.p.get(name)
        if v is None:
            return default
        if type(v) is not bool:
            raise InvalidParam(name, f"must be true or false, not {_type_name(v)}")
        return v

    def str(self, name: str) -> str | None:
        v = self.p.get(name)
        if v is None:
            return None
        if type(v) is not str:
            raise InvalidParam(name, f"must be a string, not {_type_name(v)}")
        if len(v) > MAX_STRING:
            raise InvalidParam(name, f"must be at most {MAX_STRING} characters")
        return v

    def enum(self, name: str, choices: Sequence[str], default: str) -> str:
        v = self.p.get(name)
        if v is None:
            return default
        if v not in choices or type(v) is not str:
            raise InvalidParam(name, f"must be one of: {', '.join(choices)}")
        return v

    def str_list(self, name: str, max_items: int = MAX_LIST) -> list[str]:
        v = self.p.get(name)
        if v is None:
            return []
        if type(v) is not list:
            raise InvalidParam(name, f"must be an array of strings, not {_type_name(v)}")
        if len(v) > max_items:
            raise InvalidParam(name, f"must have at most {max_items} items")
        for item in v:
            if type(item) is not str:
                raise InvalidParam(name, f"must be an array of strings (found {_type_name(item)})")
            if len(item) > MAX_STRING:
                raise InvalidParam(name, f"items must be at most {MAX_STRING} characters")
        return v

    def time(self, name: str) -> int | None:
        v = self.p.get(name)
        if v is None:
            return None
        try:
            return parse_iso(v)
        except ValueError:
            raise InvalidParam(name, "must be an ISO 8601 time like 2026-02-05T10:30:00Z or 2026-02-05") from None


FILTER_PARAMS = ("genres", "genre_mode", "exclude_genres", "decades", "year_min", "year_max", "min_rating",
                 "exclude_live", "artist", "album", "text", "added_after", "updated_after")
PAGE_PARAMS = ("sort", "order", "seed", "limit", "offset")


def _genre_keys(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(fold(n.strip()) for n in names))


def _decade_ranges(decades: list[str]) -> tuple[tuple[int, int], ...]:
    starts = set()
    for d in decades:
        m = _DECADE.match(d)
        if not m:
            raise InvalidParam("decades", f"{d!r} is not a decade like \"1990s\"")
        starts.add(int(m.group(1)) * 10)
    ranges: list[list[int]] = []
    for s in sorted(starts):
        if ranges and ranges[-1][1] == s - 1:
            ranges[-1][1] = s + 9
        else:
            ranges.append([s, s + 9])
    return tuple((a, b) for a, b in ranges)


def parse_filters(p: _Params) -> list[Filter]:
    """The filter params of tracks.query / library.stats -> filters (AND)."""
    filters: list[Filter] = []
    genres = _genre_keys(p.str_list("genres"))
    mode = p.enum("genre_mode", GENRE_MODES, "any")
    if genres:
        filters.append(GenresAll(genres) if mode == "all" else GenresAny(genres))
    exclude = _genre_keys(p.str_list("exclude_genres"))
    if exclude:
        filters.append(ExcludeGenres(exclude))
    decades = _decade_ranges(p.str_list("decades"))
    if decades:
        filters.append(YearRanges(decades))
    year_min = p.int("year_min", 0, 9999)
    year_max = p.int("year_max", 0, 9999)
    if year_min is not None and year_max is not None and year_min > year_max:
        raise InvalidParam("year_max", "must not be less than year_min")
    if year_min is not None:
        filters.append(Compare("year", ">=", year_min))
    if year_max is not None:
        filters.append(Compare("year", "<=", year_max))
    min_rating = p.number("min_rating", 0, 10)
    if min_rating is not None:
        filters.append(Compare("user_rating", ">=", min_rating))
    if p.bool("exclude_live"):
        filters.append(Compare("is_live", "=", 0))
    artist = p.str("artist")
    if artist is not None:
        filters.append(Artist(fold(artist)))
    album = p.str("album")
    if album is not None:
        filters.append(Compare("album_key", "=", fold(album)))
    text = p.str("text")
    if text is not None and text.strip():
        words = split_words(text)
        if not words:
            raise InvalidParam("text", "has no words to search for (letters or digits)")
        if len(words) > MAX_WORDS:
            raise InvalidParam("text", f"has more than {MAX_WORDS} words")
        filters.append(Text(fts_query(text)))
    for name, column in (("added_after", "added_at"), ("updated_after", "updated_at")):
        ts = p.time(name)
        if ts is not None:
            filters.append(Compare(column, ">", ts))
    return filters


@dataclass(frozen=True)
class Page:
    sort: str
    order: str
    seed: int | None
    limit: int
    offset: int


def parse_page(p: _Params) -> Page:
    return Page(
        sort=p.enum("sort", SORTS, "artist"),
        order=p.enum("order", ORDERS, "asc"),
        seed=p.any_int("seed"),
        limit=p.int("limit", 0, MAX_LIMIT, DEFAULT_LIMIT),
        offset=p.int("offset", 0, MAX_OFFSET, 0),
    )


# --------------------------------------------------------------------------- rows

TRACK_COLUMNS = ("rating_key", "title", "artist", "album_artist", "album", "album_rating_key", "duration_ms",
                 "year", "genres", "user_rating", "is_live", "track_number", "disc_number", "view_count",
                 "last_viewed_at", "added_at", "updated_at")
_TIMES = ("last_viewed_at", "added_at", "updated_at")
# Times are formatted by SQLite (much cheaper than datetime); row_to_track takes either form.
_SELECT = ", ".join(f"strftime('%Y-%m-%dT%H:%M:%SZ', t.{c}, 'unixepoch')" if c in _TIMES else f"t.{c}"
                    for c in TRACK_COLUMNS)


_GENRE_LISTS: dict[str, tuple] = {}  # decoded genres JSON (it repeats album by album)


def _genre_list(text: str | None) -> list[str]:
    hit = _GENRE_LISTS.get(text) if text else ()
    if hit is None:
        if len(_GENRE_LISTS) > 4096:
            _GENRE_LISTS.clear()
        hit = _GENRE_LISTS[text] = tuple(json.loads(text))
    return list(hit)


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
        "genres": _genre_list(genres),
        "user_rating": user_rating,
        "is_live": bool(is_live),
        "track_number": track_number,
        "disc_number": disc_number,
        "view_count": view_count or 0,
        "last_viewed_at": _time(last_viewed_at),
        "added_at": _time(added_at),
        "updated_at": _time(updated_at),
    }


def fetch_tracks(ctx: Any, ids: list[int]) -> list[dict]:
    """The track objects of internal ``ids``, in that order."""
    if not ids:
        return []
    found = {r[-1]: r for r in ctx.run(
        f"SELECT {_SELECT}, t.id FROM {{tracks}} t WHERE t.id IN (SELECT value FROM json_each(?))",
        [json.dumps(ids)])}
    return [row_to_track(found[i]) for i in ids]


def _meta(ctx: Any) -> dict:
    return {"generation": ctx.state.generation, "synced_at": iso(ctx.state.synced_at)}


# --------------------------------------------------------------------------- sorting

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


# --------------------------------------------------------------------------- methods


SMALL_RESULT = 5000


def _page_by_rank(ctx: Any, driven: tuple[GenresAny, list[Filter]], page: Page) -> tuple[int | None, list[int]]:
    """(total, ids) for the default order from the genre index alone (it holds each track's artist_rank).

    Up to SMALL_RESULT matching rows come back packed as ``rank << 32 | id`` in
    one string and are deduplicated and sorted here; more, and SQLite counts and
    sorts (total None = count separately).
    """
    genre, rest = driven
    sub, params = genre.subquery(rest, cols="(g.artist_rank << 32) | g.track_id AS p")
    packed = ctx.run(f"SELECT group_concat(p) FROM ({sub} LIMIT {SMALL_RESULT + 1})", params)[0][0]
    found = packed.split(",") if packed else []
    if len(found) <= SMALL_RESULT:
        ranked = sorted(set(map(int, found)))
        return len(ranked), [v & 0xFFFFFFFF for v in ranked[page.offset:page.offset + page.limit]]
    group = " GROUP BY g.artist_rank" if len(genre.keys) > 1 and not isinstance(genre, GenresAll) else ""
    sub, params = genre.subquery(rest, cols="g.track_id")
    rows = ctx.run(f"{sub}{group} ORDER BY g.artist_rank LIMIT ? OFFSET ?", params + [page.limit, page.offset])
    return None, [r[0] for r in rows]


def tracks_query(params: dict) -> Callable[[Any], dict]:
    """Validate tracks.query params now; return ``fn(ctx) -> {total, tracks, generation, synced_at}``."""
    p = _Params(params, FILTER_PARAMS + PAGE_PARAMS)
    filters = parse_filters(p)
    page = parse_page(p)

    def run(ctx: Any) -> dict:
        planned = plan(ctx, filters)
        ids: list = []
        if page.sort == "random":
            column, source, sparams = ids_source(planned)
            found = (ctx.run(f"SELECT group_concat({column}) {source}", sparams)[0][0] or "").split(",")
            found = [] if found == [""] else found
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
            if total is None:
                total = count_matches(ctx, planned)
            if page.limit and page.offset < total and not by_rank:
                # Many matches: walk the sort order (an index) and stop after the page,
                # keeping SQLite off the filters' indexes ("+t"); few: filter, then sort.
                walk = total * total > (page.offset + page.limit) * max(ctx.state.track_count, total)
                where, wparams = where_sql(planned, "+t" if walk else "t")
                ids = [r[0] for r in ctx.run(
                    f"SELECT t.id FROM {{tracks}} t WHERE {where} "
                    f"ORDER BY {order_by_sql(page.sort, page.order)} LIMIT ? OFFSET ?",
                    wparams + [page.limit, page.offset])]
        return {"total": total, "tracks": fetch_tracks(ctx, ids), **_meta(ctx)}

    return run


def tracks_get(params: dict) -> Callable[[Any], dict]:
    """Validate tracks.get params now; return ``fn(ctx) -> {tracks, missing, generation, synced_at}``.

    Tracks come back in the order asked for, each once; ``missing`` lists the
    keys not in the library (also in order, each once).
    """
    p = _Params(params, ("rating_keys",))
    if p.get("rating_keys") is None:
        raise InvalidParam("rating_keys", "is required (an array of rating key strings)")
    keys = list(dict.fromkeys(p.str_list("rating_keys", MAX_RATING_KEYS)))

    def run(ctx: Any) -> dict:
        found: dict = {}
        if keys:
            found = {r[0]: r for r in ctx.run(
                f"SELECT {_SELECT} FROM {{tracks}} t WHERE t.rating_key IN (SELECT value FROM json_each(?))",
                [json.dumps(keys)])}
        return {"tracks": [row_to_track(found[k]) for k in keys if k in found],
                "missing": [k for k in keys if k not in found], **_meta(ctx)}

    return run


def library_stats(params: dict) -> Callable[[Any], dict]:
    """Validate library.stats params now; return ``fn(ctx) -> {track_count, ..., genres, decades, ...}``.

    Takes the tracks.query filters. sort/order/seed/limit/offset are accepted
    (and validated) so a client can pass the same object, but do not matter.
    """
    p = _Params(params, FILTER_PARAMS + PAGE_PARAMS)
    filters = parse_filters(p)
    parse_page(p)
    where, wparams = where_sql(filters)

    def run(ctx: Any) -> dict:
        base = f"FROM {{tracks}} t WHERE {where}"
        album = "coalesce('k' || t.album_rating_key, 'n' || t.album_artist_key || char(31) || t.album_key)"
        if filters:
            count, artists, albums, duration, live = ctx.run(
                f"SELECT count(*), count(DISTINCT t.artist_key), count(DISTINCT {album}), "
                f"coalesce(sum(t.duration_ms), 0), coalesce(sum(t.is_live), 0) {base}", wparams)[0]
            column, source, sparams = ids_source(filters)
            grows = ctx.run(f"SELECT g.genre_key, min(g.name), count(*) FROM {{genres}} g "
                            f"WHERE g.track_id IN (SELECT {column} {source}) GROUP BY g.genre_key", sparams)
        else:  # the whole library: let the indexes do the grouping
            count, albums, duration, live = ctx.run(
                f"SELECT count(*), count(DISTINCT {album}), coalesce(sum(t.duration_ms), 0), "
                "coalesce(sum(t.is_live), 0) FROM {tracks} t")[0]
            artists = ctx.run("SELECT count(*) FROM (SELECT DISTINCT artist_key FROM {tracks})")[0][0]
            grows = ctx.run("SELECT genre_key, min(name), count(*) FROM {genres} GROUP BY genre_key")
        grows.sort(key=lambda r: (-r[2], r[0], r[1]))
        decades: dict[int, int] = {}
        for year, n in ctx.run(f"SELECT t.year, count(*) {base} AND t.year IS NOT NULL GROUP BY t.year", wparams):
            decades[year // 10 * 10] = decades.get(year // 10 * 10, 0) + n
        drows = sorted(decades.items())
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


# --------------------------------------------------------------------------- JSON Schemas (OpenRPC)

_TIME = {"type": ["string", "null"], "format": "date-time"}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRINGS = {"type": ["array", "null"], "items": {"type": "string", "maxLength": MAX_STRING}, "maxItems": MAX_LIST}

FILTERS_SCHEMA: dict = {
    "genres": {**_STRINGS, "description": "case-insensitive; a track matches if it has any of them "
                                          "(genre_mode \"all\": all of them); [] = no filter"},
    "genre_mode": {"enum": list(GENRE_MODES) + [None], "default": "any"},
    "exclude_genres": {**_STRINGS, "description": "drop tracks with any of these genres"},
    "decades": {**_STRINGS, "items": {"type": "string", "pattern": _DECADE.pattern},
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
    "added_after": {**_TIME, "description": "ISO 8601 time or date (UTC if no offset); strictly after"},
    "updated_after": {**_TIME, "description": "ISO 8601 time or date (UTC if no offset); strictly after"},
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
QUERY_PARAMS_SCHEMA: dict = {"type": "object", "additionalProperties": False,
                             "properties": {**FILTERS_SCHEMA, **PAGE_SCHEMA}}
STATS_PARAMS_SCHEMA: dict = {"type": "object", "additionalProperties": False,
                             "properties": {**FILTERS_SCHEMA, **PAGE_SCHEMA},
                             "description": "the tracks.query filters; sort/order/seed/limit/offset are ignored"}
GET_PARAMS_SCHEMA: dict = {
    "type": "object", "additionalProperties": False, "required": ["rating_keys"],
    "properties": {"rating_keys": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_RATING_KEYS}},
}
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
