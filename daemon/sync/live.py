"""Decide whether a track is a live recording, from its title and album.

A track is live when its title or its album contains one of the configured
keywords as whole words (case-insensitive, any Unicode letters count as word
characters), or -- with ``sync.dated_titles_are_live`` -- a calendar date such
as ``1994-05-12``, ``1994.05.12``, ``12.05.1994`` or ``12/05/1994``, the usual
mark of a concert recording or a bootleg.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

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
