"""The Track: one ordered table of its fields, and everything derived from it (pure).

`FIELDS` is the only list of a Track's fields. From it come the slot table's
columns (`columns_ddl`), the values a row is stored as (`RowEncoder`), the
SELECT list and the SQLite-built JSON the daemon answers with (`SELECT_SQL`,
`TRACK_JSON_SQL`), the Python object (`row_to_track`) and the published JSON
Schema (`TRACK_SCHEMA`). The order of `FIELDS` is the key order of a track
object on the wire. Adding a field = one `Field` here, its reading from Plex
(``plex/xml.py``), a migration (``store/schema.py``) and, if people should see
it, the client's column.

Also here: how names are folded for matching and sorting (`fold`) and the sort
orders (`order_by_sql`). The daemon answers with `RawJSON`: SQLite's
``json_object`` writes each track object, so the hot path never builds (and the
RPC layer never re-encodes) one dict per track.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Sequence

from .match.normalize import MATCH_COLUMNS, TrackKeys, match_keys  # noqa: F401 - match_keys: re-exported
from .memo import Memo
from .timeutil import iso

# Wire kinds: how a stored value becomes a JSON value.
TEXT, TEXT_OR_NULL, INT_OR_NULL, NUMBER_OR_NULL, BOOL, COUNT, TIME, NAMES = (
    "text", "text_or_null", "int_or_null", "number_or_null", "bool", "count", "time", "names")

TIME_SCHEMA = {"type": ["string", "null"], "format": "date-time"}
_SCHEMA = {
    TEXT: {"type": "string"},
    TEXT_OR_NULL: {"type": ["string", "null"]},
    INT_OR_NULL: {"type": ["integer", "null"]},
    NUMBER_OR_NULL: {"type": ["number", "null"]},
    BOOL: {"type": "boolean"},
    COUNT: {"type": "integer"},
    TIME: TIME_SCHEMA,
    NAMES: {"type": "array", "items": {"type": "string"}},
}
_SQL_TYPE = {TEXT: "TEXT NOT NULL", TEXT_OR_NULL: "TEXT", INT_OR_NULL: "INTEGER", NUMBER_OR_NULL: "REAL",
             BOOL: "INTEGER NOT NULL", COUNT: "INTEGER NOT NULL DEFAULT 0", TIME: "INTEGER",
             NAMES: "TEXT NOT NULL"}


@dataclass(frozen=True)
class Field:
    """One field of a Track.

    ``kind`` says how it is stored and shown (times are unix seconds in the
    database, ISO 8601 on the wire; ``names`` is a JSON array in one column).
    ``key`` names a second column holding ``fold(value)``, used to match and
    sort case- and accent-insensitively (and for the full-text index).
    """

    name: str
    kind: str
    plex: str  # where Plex has it (documentation; plex/xml.py reads it)
    key: str | None = None
    repeats: bool = False  # its values repeat across tracks: fold each distinct value once
    schema_extra: tuple[tuple[str, Any], ...] = ()

    @property
    def sql(self) -> str:
        return f"{self.name} {_SQL_TYPE[self.kind]}"

    @property
    def schema(self) -> dict:
        return {**_SCHEMA[self.kind], **dict(self.schema_extra)}


FIELDS: tuple[Field, ...] = (
    Field("rating_key", TEXT, "ratingKey"),  # unique in a slot: its index, store/schema.py
    Field("title", TEXT, "title", key="title_key"),
    Field("artist", TEXT, "originalTitle, else grandparentTitle", key="artist_key", repeats=True),
    Field("album_artist", TEXT, "grandparentTitle", key="album_artist_key", repeats=True),
    Field("album", TEXT, "parentTitle", key="album_key", repeats=True),
    Field("album_rating_key", TEXT_OR_NULL, "parentRatingKey"),
    Field("duration_ms", INT_OR_NULL, "duration"),
    Field("year", INT_OR_NULL, "year, else parentYear, else the album's year"),
    Field("genres", NAMES, "the track's Genre tags, else the album's (full list)"),
    Field("user_rating", NUMBER_OR_NULL, "userRating", schema_extra=(("minimum", 0), ("maximum", 10))),
    Field("is_live", BOOL, "computed at sync time (sync.live_keywords)"),
    Field("track_number", INT_OR_NULL, "index"),
    Field("disc_number", INT_OR_NULL, "parentIndex"),
    Field("view_count", COUNT, "viewCount (0 if absent)"),
    Field("last_viewed_at", TIME, "lastViewedAt"),
    Field("added_at", TIME, "addedAt"),
    Field("updated_at", TIME, "updatedAt"),
)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
KEY_COLUMNS: tuple[str, ...] = tuple(f.key for f in FIELDS if f.key)
# tracks.match's normalized columns (m_title, m_tags, m_artist, m_album_artist,
# m_album): `match_keys` of the title, artist, album artist and album, computed
# here for every track the sync writes (see match/normalize.py).
# Every stored column of a track row, in the order `RowEncoder` gives them.
STORED_COLUMNS: tuple[str, ...] = FIELD_NAMES + KEY_COLUMNS + MATCH_COLUMNS


_BLANK = {TEXT: "", TEXT_OR_NULL: None, INT_OR_NULL: None, NUMBER_OR_NULL: None, BOOL: False, COUNT: 0,
          TIME: None, NAMES: ()}


def track_with(**values: Any) -> dict:
    """A track object with every field, in wire order: ``values``, and the rest blank (``""``,
    None, false, 0, []). Unknown names are an error (for examples and test rows)."""
    unknown = set(values) - set(FIELD_NAMES)
    if unknown:
        raise TypeError(f"not Track fields: {sorted(unknown)}")
    return {f.name: values[f.name] if f.name in values else _blank(f.kind) for f in FIELDS}


def _blank(kind: str) -> Any:
    value = _BLANK[kind]
    return list(value) if isinstance(value, tuple) else value


def columns_ddl() -> str:
    """The column definitions of a slot's tracks table (after ``id INTEGER PRIMARY KEY``)."""
    return ", ".join([f.sql for f in FIELDS] + [f"{k} TEXT NOT NULL" for k in KEY_COLUMNS + MATCH_COLUMNS])


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


# How library.stats tells albums apart (alias t): by rating key, else by album artist + title.
ALBUM_SQL = "coalesce('k' || t.album_rating_key, 'n' || t.album_artist_key || char(31) || t.album_key)"


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


# ---- a row from Plex -> stored values ----------------------------------------------------

def _text(v: Any) -> str:
    return v if type(v) is str else "" if v is None else str(v)


def _text_or_null(v: Any) -> str | None:
    return v if v is None or type(v) is str else str(v)


def _flag(v: Any) -> int:
    return 1 if v else 0


def _count(v: Any) -> int:
    return v or 0


_STORE: dict[str, Callable[[Any], Any] | None] = {
    TEXT: _text, TEXT_OR_NULL: _text_or_null, BOOL: _flag, COUNT: _count, NAMES: None,  # NAMES: see below
}


class RowEncoder:
    """Track rows (dicts of `FIELDS`, unix-second times, genres as a list) -> stored values.

    One per writer: it remembers folded names and genre lists, which repeat
    across a library's tracks (the hot loop of a sync). Missing fields are None.
    """

    def __init__(self) -> None:
        self.folded = Memo(fold)  # names repeat: tracks come artist by artist
        self._genres = Memo(self._genres_json)
        self._encode = json.JSONEncoder(ensure_ascii=False).encode
        self._pick = itemgetter(*FIELD_NAMES)
        self._text = [i for i, f in enumerate(FIELDS) if f.kind == TEXT]
        self._convert = [(i, _STORE[f.kind]) for i, f in enumerate(FIELDS) if f.kind != TEXT and _STORE.get(f.kind)]
        self._names = [i for i, f in enumerate(FIELDS) if f.kind == NAMES]
        self._keys = [(i, self.folded if f.repeats else fold) for i, f in enumerate(FIELDS) if f.key]
        self._match_keys = TrackKeys()
        self._match_of = itemgetter(*(FIELD_NAMES.index(n) for n in ("title", "artist", "album_artist", "album")))
        # the fields the folded and match keys come from (`__call__`'s ``like``)
        self._sources = itemgetter(*sorted({i for i, _ in self._keys} | {FIELD_NAMES.index(n) for n in (
            "title", "artist", "album_artist", "album")}))

    def genres_json(self, raw: Any) -> str:
        """Names -> JSON array of display names, deduplicated by folded key, sorted by key."""
        return self._genres(tuple(raw) if raw else ())

    def _genres_json(self, raw: tuple) -> str:
        names: dict[str, str] = {}
        for g in raw:
            g = _text(g).strip()
            if g:
                names.setdefault(self.folded(g), g)
        return self._encode([names[k] for k in sorted(names)])

    def __call__(self, row: dict, like: tuple | None = None) -> tuple:
        """The values of `STORED_COLUMNS` for one row. ``like``: the values stored for it; its folded
        and match keys are kept when the names they come from are the same (an incremental
        sync's rating edit: computing them is most of the work)."""
        try:
            v = list(self._pick(row))
        except KeyError:
            v = [row.get(name) for name in FIELD_NAMES]
        for i in self._text:  # usually str already: only a type check
            if type(v[i]) is not str:
                v[i] = _text(v[i])
        for i, convert in self._convert:
            v[i] = convert(v[i])
        for i in self._names:
            v[i] = self.genres_json(v[i])
        if like is not None and self._sources(v) == self._sources(like):
            return (*v, *like[len(v):])
        return (*v, *[key(v[i]) for i, key in self._keys], *self._match_keys(*self._match_of(v)))


# ---- stored row -> CONTRACT track object -------------------------------------------------

def _iso_sql(column: str) -> str:
    # Times are formatted by SQLite (much cheaper than datetime); row_to_track takes either form.
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', t.{column}, 'unixepoch')"


_JSON_SQL = {
    NAMES: "json(coalesce(nullif(t.{c}, ''), '[]'))",
    BOOL: "json(CASE WHEN t.{c} THEN 'true' ELSE 'false' END)",
    COUNT: "coalesce(t.{c}, 0)",
}


def _select(f: Field) -> str:
    return _iso_sql(f.name) if f.kind == TIME else f"t.{f.name}"


SELECT_SQL = ", ".join(_select(f) for f in FIELDS)
# One track object per row, in the key order of `FIELDS`.
TRACK_JSON_SQL = "json_object(" + ", ".join(
    f"'{f.name}', " + (_JSON_SQL[f.kind].format(c=f.name) if f.kind in _JSON_SQL else _select(f))
    for f in FIELDS) + ")"


def _time(v: Any) -> str | None:
    return v if v is None or type(v) is str else iso(v)


_FROM_SQL: dict[str, Callable[[Any], Any]] = {
    NAMES: lambda v: json.loads(v) if v else [], BOOL: bool, COUNT: _count, TIME: _time,
}
_READ = [(f.name, _FROM_SQL.get(f.kind)) for f in FIELDS]


def row_to_track(row: Sequence[Any]) -> dict:
    """A row selected with `SELECT_SQL` (times as unix seconds or ISO text) -> the CONTRACT track object."""
    return {name: (read(v) if read else v) for (name, read), v in zip(_READ, row)}


TRACK_SCHEMA: dict = {
    "type": "object",
    "required": list(FIELD_NAMES),
    "properties": {f.name: f.schema for f in FIELDS},
}


class RawJSON:
    """JSON text that the RPC serializer writes out as is (see rpc/dispatch.py)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({self.text[:60]!r})"


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
