"""Decide whether a track is a live recording, from its title and album.

A track is live when its title or its album contains one of the configured
keywords as whole words (case-insensitive, any Unicode letters count as word
characters), or -- with ``sync.dated_titles_are_live`` -- a calendar date such
as ``1994-05-12``, ``1994.05.12``, ``12.05.1994`` or ``12/05/1994``, the usual
mark of a concert recording or a bootleg.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from ..memo import Memo

_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)\d{2}"
_DATE = (
    rf"(?<!\d)(?:{_YEAR}[-./]{_MONTH}[-./]{_DAY}|{_DAY}[-./]{_MONTH}[-./]{_YEAR})(?!\d)"
)


def live_pattern(keywords: Iterable[str], dated_titles_are_live: bool) -> re.Pattern[str] | None:
    """The compiled rule, or None when nothing can ever match."""
    alternatives = []
    for keyword in keywords:
        words = keyword.split()
        if words:
            alternatives.append(r"\s+".join(re.escape(w) for w in words))
    parts = []
    if alternatives:
        parts.append(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")
    if dated_titles_are_live:
        parts.append(_DATE)
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def live_matcher(keywords: Iterable[str], dated_titles_are_live: bool) -> Callable[[str, str], bool]:
    """A function ``(title, album) -> bool`` implementing the rule above."""
    pattern = live_pattern(keywords, dated_titles_are_live)
    if pattern is None:
        return lambda title, album: False
    search = pattern.search
    return lambda title, album: bool(search(title or "") or search(album or ""))


class Decorate:
    """Completes track rows as they leave Plex: ``is_live``; genres -- the track's own
    ``Genre`` tags where the listing has them, else its album's full list; and the year
    of tracks whose listing has neither ``year`` nor ``parentYear`` (older servers): the
    album's, fetched in batches for the albums a page needs (``plex`` given)."""

    def __init__(self, spec: dict, genres: dict[str, list[str]], plex: Any = None):
        self.genres = genres  # album rating key -> genres; may still be filling up
        self._plex = plex
        self._years: dict[str, int | None] = {}  # album rating key -> year (None: it has none)
        self._is_live_title = live_matcher(spec["live_keywords"], spec["dated_titles_are_live"])
        self._album_live = Memo(lambda album: self._is_live_title("", album))  # tracks come album by album

    def __call__(self, rows: list[dict]) -> list[dict]:
        self._fill_years(rows)
        for row in rows:
            row["is_live"] = self._album_live(row["album"]) or self._is_live_title(row["title"], "")
            own = row.pop("track_genres", None)
            row["genres"] = sorted(own, key=str.casefold) if own \
                else self.genres.get(row["album_rating_key"], [])
        return rows

    def _fill_years(self, rows: list[dict]) -> None:
        need = sorted({r["album_rating_key"] for r in rows if r["year"] is None and r.get("album_rating_key")}
                      - self._years.keys())
        if need and self._plex is not None:
            if len(self._years) >= 4096:  # tracks come album by album: keep the memo small
                self._years.clear()
            found = self._plex.album_years(need)
            self._years.update({k: found.get(k) for k in need})
        for row in rows:
            if row["year"] is None and row.get("album_rating_key"):
                row["year"] = self._years.get(row["album_rating_key"])
