"""Checked params -> filters: the filter classes, text words, the checks a schema can't make (pure).

Everything here is free of I/O: `parse_filters` / `parse_page` take a params
object already checked against its published schema (`schemas.py`), make the
checks a schema cannot express (raising `InvalidParam` naming the param) and
turn it into small filter objects, each yielding one ``(sql, params)`` fragment
on the tracks table (alias ``t``) or, for the pushable ones, on the genre table
(alias ``g``). `plans.py` plans and runs them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

from ..params import TIME_PARAM, InvalidParam
from ..timeutil import parse_iso
from ..track import fold

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


# --------------------------------------------------------------------------- filters


class Filter:
    """One condition on the tracks table (alias ``t``)."""

    pushable = False  # also expressible on the genre table (alias g), which copies year/user_rating/is_live

    @property
    def on_genre_rows(self) -> bool:
        """The genre table alone can test it (alias g): a genre filter's rows then answer the query
        (`plans.genre_driven`). The pushable ones, and text (through the rank the rows carry)."""
        return self.pushable

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
    # As ``year IN (each year)``: set by `plans.plan` when a rating condition follows. The indexes
    # on (year, user_rating, ...) then seek each year's rated tracks instead of reading every
    # track of the range (1M tracks, 1990s + min_rating 6: a count 6.5 -> 1.2 ms; two genres
    # 0.7 -> 0.3 ms). Never for more than YEAR_LIST_MAX years.
    listed: bool = False
    pushable = True

    def cond(self, alias):
        if self.listed:
            years = [y for a, b in self.ranges for y in range(a, b + 1)]
            return f"{alias}.year IN ({_marks(len(years))})", years
        parts = " OR ".join(f"{alias}.year BETWEEN ? AND ?" for _ in self.ranges)
        return f"({parts})", [v for r in self.ranges for v in r]

    def seeking(self) -> YearRanges:
        """The same years, listed one by one unless they are more than YEAR_LIST_MAX."""
        return YearRanges(self.ranges, listed=sum(b - a + 1 for a, b in self.ranges) <= YEAR_LIST_MAX)


YEAR_LIST_MAX = 200


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
        """SELECT ``cols`` (of alias g) FROM the genre table; ``distinct``: each track once (``cols``
        must then be g.track_id). A track in several of the genres is merged by GROUP BY, which
        SQLite sorts, rather than DISTINCT, which builds a B-tree: at a million tracks, three
        popular genres (139k rows) took 23 instead of 52 ms."""
        where, params = _and([(f"g.genre_key IN ({_marks(len(self.keys))})", list(self.keys))]
                             + [f.cond("g") for f in push])
        group = " GROUP BY g.track_id" if distinct and len(self.keys) > 1 else ""
        return f"SELECT {cols} FROM {{genres}} g WHERE {where}{group}", params

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
    # On a genre filter's rows: the ranks of the excluded genres' tracks, found once, instead of
    # a probe per row (1M tracks, one genre without another: ~52 -> ~35 ms, total and page).
    on_genre_rows = True

    def cond(self, alias):
        if alias == "g":
            return (f"g.artist_rank NOT IN (SELECT artist_rank FROM {{genres}} "
                    f"WHERE genre_key IN ({_marks(len(self.keys))}))", list(self.keys))
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

    # The FTS rowid is the track's rank in the default order; {ranks} maps it to the track id.
    SOURCE = "FROM {fts} JOIN {ranks} r ON r.rank = {fts}.rowid WHERE {fts} MATCH ?"
    # A genre row carries its track's rank (artist_rank): the FTS rowids test it as they are,
    # with no lookup of ranks or tracks (at 1M tracks, "love" in one genre: 18 instead of 90 ms).
    # Not pushed into a genre subquery beside its condition on the tracks (the matches would be
    # found twice): only a plan on the genre rows alone uses it.
    on_genre_rows = True

    def cond(self, alias):
        if alias == "g":
            return "g.artist_rank IN (SELECT rowid FROM {fts} WHERE {fts} MATCH ?)", [self.match]
        return f"{alias}.id IN (SELECT r.track_id {self.SOURCE})", [self.match]


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


# --------------------------------------------------------------------------- params -> filters
# The params arrive checked against the published schemas (`schemas.py`, `params.Params`):
# names, types, ranges, enums and patterns are right, and null members are gone.
# What follows are the checks a schema cannot express, and the conversions.


def _genre_keys(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(fold(n.strip()) for n in names))


def _decade_ranges(decades: list[str]) -> tuple[tuple[int, int], ...]:
    starts = {int(_DECADE.match(d).group(1)) * 10 for d in decades}  # the schema's pattern held
    ranges: list[list[int]] = []
    for s in sorted(starts):
        if ranges and ranges[-1][1] == s - 1:
            ranges[-1][1] = s + 9
        else:
            ranges.append([s, s + 9])
    return tuple((a, b) for a, b in ranges)


def _time(p: dict, name: str) -> int | None:
    """A time param as unix seconds; its pattern held, but the date may not exist (2026-02-30)."""
    if name not in p:
        return None
    try:
        return parse_iso(p[name])
    except ValueError:
        raise InvalidParam(name, f"must be {TIME_PARAM['title']}") from None


def parse_filters(p: dict) -> list[Filter]:
    """The filter params of tracks.query / library.stats (checked) -> filters (AND)."""
    filters: list[Filter] = []
    genres = _genre_keys(p.get("genres", []))
    if genres:
        filters.append(GenresAll(genres) if p.get("genre_mode") == "all" else GenresAny(genres))
    exclude = _genre_keys(p.get("exclude_genres", []))
    if exclude:
        filters.append(ExcludeGenres(exclude))
    decades = _decade_ranges(p.get("decades", []))
    if decades:
        filters.append(YearRanges(decades))
    year_min, year_max = p.get("year_min"), p.get("year_max")
    if year_min is not None and year_max is not None:
        if year_min > year_max:
            raise InvalidParam("year_max", "must not be less than year_min")
        filters.append(YearRanges(((year_min, year_max),)))
    elif year_min is not None:
        filters.append(Compare("year", ">=", year_min))
    elif year_max is not None:
        filters.append(Compare("year", "<=", year_max))
    if "min_rating" in p:
        filters.append(Compare("user_rating", ">=", p["min_rating"]))
    if p.get("exclude_live"):
        filters.append(Compare("is_live", "=", 0))
    if "artist" in p:
        filters.append(Artist(fold(p["artist"])))
    if "album" in p:
        filters.append(Compare("album_key", "=", fold(p["album"])))
    text = p.get("text")
    if text is not None and text.strip():
        words = split_words(text)
        if not words:
            raise InvalidParam("text", "has no words to search for (letters or digits)")
        if len(words) > MAX_WORDS:
            raise InvalidParam("text", f"has more than {MAX_WORDS} words")
        filters.append(Text(fts_query(text)))
    for name, column in (("added_after", "added_at"), ("updated_after", "updated_at")):
        ts = _time(p, name)
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


def parse_page(p: dict) -> Page:
    """The paging params (checked) with their defaults."""
    return Page(sort=p.get("sort", "artist"), order=p.get("order", "asc"), seed=p.get("seed"),
                limit=p.get("limit", DEFAULT_LIMIT), offset=p.get("offset", 0))
