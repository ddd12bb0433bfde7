"""Request params -> filters: validation, the filter classes, text words (pure).

Everything here is free of I/O: `parse_filters` / `parse_page` check a params
object (raising `InvalidParam` naming the param) and turn it into small filter
objects, each yielding one ``(sql, params)`` fragment on the tracks table
(alias ``t``) or, for the pushable ones, on the genre table (alias ``g``).
`plans.py` plans and runs them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

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
