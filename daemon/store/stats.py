"""library.stats kept ready per slot: the whole library (genre key '') and each single genre.

Three tables per slot (DDL in schema.py):

- ``genre_stats_S``: one row per genre key: track, artist and album counts, total
  duration, live count.
- ``genre_facets_S``: per genre key, kind ``'g'`` = a genre of those tracks (item = its
  key, name = one spelling of it, n = tracks spelling it so) and kind ``'d'`` = a
  decade (item = 1990, name = '', n). A reader sums over spellings and shows the
  smallest one.
- ``genre_members_S``: per genre key, how many of its tracks each artist (kind
  ``'a'``) and each album (kind ``'l'``) has; the artist and album counts are the
  number of such rows, so they can be kept exact one track at a time.

`build` fills them at the end of a full sync; `StatsDelta` applies an incremental
change set (each changed track's old contribution out, its new one in).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

from ..track import ALBUM_SQL, fold


def build(c: sqlite3.Connection, t: dict[str, str]) -> None:
    """Fill the slot's stats tables from its tracks.

    One pass groups the tracks by (genres, artist, album, decade) into a small temporary
    table (~5% of the library's size); each group's genres are folded once
    (``stat_names``) and the groups are listed once per genre and once for the whole
    library ('', ``stat_every``); every figure is a GROUP BY over that, and the artist and
    album counts are the members' rows. (Expanding and folding the genres in each of five
    statements instead took ~45% longer.)
    """
    for name in ("stat_every", "stat_names", "stat_groups"):
        c.execute(f"DROP TABLE IF EXISTS temp.{name}")
    c.execute(f"CREATE TEMP TABLE stat_groups AS SELECT t.genres AS genres, t.artist_key AS artist, "
              f"{ALBUM_SQL} AS album, t.year / 10 * 10 AS decade, count(*) AS n, "
              f"coalesce(sum(t.duration_ms), 0) AS duration, sum(t.is_live) AS live "
              f"FROM {t['tracks']} t GROUP BY 1, 2, 3, 4")
    c.execute("CREATE TEMP TABLE stat_names (grp INTEGER NOT NULL, g TEXT NOT NULL, name TEXT NOT NULL, "
              "PRIMARY KEY (grp, g)) WITHOUT ROWID")  # a group's genres: (genre key, display name)
    c.execute("INSERT INTO temp.stat_names SELECT s.rowid, mediasage_fold(j.value), j.value "
              "FROM temp.stat_groups s, json_each(s.genres) j")
    c.execute("CREATE TEMP TABLE stat_every AS "
              "SELECT '' AS g, s.rowid AS grp, s.artist, s.album, s.decade, s.n, s.duration, s.live "
              "FROM temp.stat_groups s UNION ALL "
              "SELECT x.g, s.rowid, s.artist, s.album, s.decade, s.n, s.duration, s.live "
              "FROM temp.stat_names x JOIN temp.stat_groups s ON s.rowid = x.grp")
    every = "temp.stat_every"
    c.execute(f"INSERT INTO {t['members']} SELECT g, 'a', artist, sum(n) FROM {every} GROUP BY 1, 3")
    c.execute(f"INSERT INTO {t['members']} SELECT g, 'l', album, sum(n) FROM {every} GROUP BY 1, 3")
    members = f"SELECT count(*) FROM {t['members']} m WHERE m.genre_key = s.g AND m.kind = "
    c.execute(f"INSERT INTO {t['stats']} SELECT s.g, s.n, ({members}'a'), ({members}'l'), s.duration, s.live "
              f"FROM (SELECT g, sum(n) AS n, sum(duration) AS duration, coalesce(sum(live), 0) AS live "
              f"FROM {every} GROUP BY 1) s")
    c.execute(f"INSERT INTO {t['facets']} SELECT g, 'd', decade, '', sum(n) FROM {every} "
              "WHERE decade IS NOT NULL GROUP BY 1, 3")
    c.execute(f"INSERT INTO {t['facets']} SELECT e.g, 'g', x.g, x.name, sum(e.n) "
              f"FROM {every} e JOIN temp.stat_names x ON x.grp = e.grp GROUP BY 1, 3, 4")
    for name in ("stat_every", "stat_names", "stat_groups"):
        c.execute(f"DROP TABLE temp.{name}")


# The stored columns a track's contribution depends on (`StatsDelta.add` reads these only):
# an update that leaves them alone leaves the stats alone.
STATS_COLUMNS = ("genres", "year", "duration_ms", "is_live", "artist_key", "album_rating_key", "album_artist_key",
                 "album_key")


def _album(v: dict) -> str:
    if v["album_rating_key"] is not None:
        return f"k{v['album_rating_key']}"
    return f"n{v['album_artist_key']}\x1f{v['album_key']}"


def album_counts(c: sqlite3.Connection, t: dict[str, str]) -> dict[str | None, int]:
    """album_rating_key -> the slot's tracks of it (None: the tracks without one), from the
    whole library's album rows (genre key '', kind 'l'; items as `_album` and ``ALBUM_SQL``
    make them)."""
    out: dict[str | None, int] = {}
    for item, n in c.execute(f"SELECT item, n FROM {t['members']} WHERE genre_key = '' AND kind = 'l'"):
        key = item[1:] if item[0] == "k" else None
        out[key] = out.get(key, 0) + n
    return out


class StatsDelta:
    """Collects tracks leaving and joining the slot, then writes the net change (`flush`)."""

    def __init__(self, conn: sqlite3.Connection, t: dict[str, str]):
        self.c, self.t = conn, t
        self.totals: dict[str, list[int]] = {}  # genre key -> [tracks, duration, live]
        self.members: Counter = Counter()  # (genre key, 'a'|'l', item) -> tracks
        self.facets: Counter = Counter()  # (genre key, 'g'|'d', item, name) -> tracks

    def add(self, v: dict, sign: int = 1) -> None:
        """Count track ``v`` (stored values by column name) in (+1) or out (-1)."""
        names = json.loads(v["genres"] or "[]")
        keys = [fold(n) for n in names]
        decade = v["year"] // 10 * 10 if isinstance(v["year"], int) else None
        album = _album(v)
        for g in ["", *keys]:
            total = self.totals.setdefault(g, [0, 0, 0])
            total[0] += sign
            total[1] += sign * (v["duration_ms"] or 0)
            total[2] += sign * (1 if v["is_live"] else 0)
            self.members[(g, "a", v["artist_key"])] += sign
            self.members[(g, "l", album)] += sign
            if decade is not None:
                self.facets[(g, "d", decade, "")] += sign
            for key, name in zip(keys, names):
                self.facets[(g, "g", key, name)] += sign

    def flush(self) -> None:
        c, t = self.c, self.t
        counted: dict[str, list[int]] = {}  # genre key -> [artists, albums] change
        for (g, kind, item), d in self.members.items():
            if not d:
                continue
            row = c.execute(f"SELECT n FROM {t['members']} WHERE genre_key = ? AND kind = ? AND item = ?",
                            (g, kind, item)).fetchone()
            before = row[0] if row else 0
            after = before + d
            if after > 0:
                c.execute(f"INSERT OR REPLACE INTO {t['members']} VALUES (?, ?, ?, ?)", (g, kind, item, after))
            else:
                c.execute(f"DELETE FROM {t['members']} WHERE genre_key = ? AND kind = ? AND item = ?",
                          (g, kind, item))
            if (before > 0) != (after > 0):
                counted.setdefault(g, [0, 0])[0 if kind == "a" else 1] += 1 if after > 0 else -1
        for g in self.totals.keys() | counted.keys():
            tracks, duration, live = self.totals.get(g, (0, 0, 0))
            artists, albums = counted.get(g, (0, 0))
            row = c.execute(f"SELECT track_count, artist_count, album_count, total_duration_ms, live_count "
                            f"FROM {t['stats']} WHERE genre_key = ?", (g,)).fetchone() or (0, 0, 0, 0, 0)
            new = (row[0] + tracks, row[1] + artists, row[2] + albums, row[3] + duration, row[4] + live)
            if new[0] > 0:
                c.execute(f"INSERT OR REPLACE INTO {t['stats']} VALUES (?, ?, ?, ?, ?, ?)", (g, *new))
            else:
                c.execute(f"DELETE FROM {t['stats']} WHERE genre_key = ?", (g,))
        for (g, kind, item, name), d in self.facets.items():
            if not d:
                continue
            where = "genre_key = ? AND kind = ? AND item = ? AND name = ?"
            row = c.execute(f"SELECT n FROM {t['facets']} WHERE {where}", (g, kind, item, name)).fetchone()
            after = (row[0] if row else 0) + d
            if after > 0:
                if row:
                    c.execute(f"UPDATE {t['facets']} SET n = ? WHERE {where}", (after, g, kind, item, name))
                else:
                    c.execute(f"INSERT INTO {t['facets']} VALUES (?, ?, ?, ?, ?)", (g, kind, item, name, after))
            else:
                c.execute(f"DELETE FROM {t['facets']} WHERE {where}", (g, kind, item, name))
        self.totals.clear()
        self.members.clear()
        self.facets.clear()
