"""mediasagectl match: "Artist - Title" lines -> tracks.match candidates, and the table of results.

Pure except `print_matches` (which writes to the context's console). A
reference is split at its first " - ", " – " or " — " (artist before, title
after, so "Song - 2009 Remaster" stays in the title); a line without one is a
title alone. References beyond the daemon's 1,000 per call go in more calls.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from . import fmt

MAX_PER_CALL = 1000
_SEPARATOR = re.compile(r"\s+[-\u2013\u2014]\s+")


def parse_reference(text: str) -> dict | None:
    """``"Hall & Oates – Rich Girl"`` -> ``{"title": "Rich Girl", "artist": "Hall & Oates"}``; blank -> None."""
    text = text.strip()
    if not text:
        return None
    parts = _SEPARATOR.split(text, maxsplit=1)
    if len(parts) == 2 and parts[0].strip() and parts[1].strip():
        return {"title": parts[1].strip(), "artist": parts[0].strip()}
    return {"title": text}


def references(args: Iterable[str]) -> tuple[list[str], list[dict]]:
    """(the reference texts kept, their candidates), blank ones dropped."""
    texts, candidates = [], []
    for text in args:
        ref = parse_reference(text)
        if ref is not None:
            texts.append(text.strip())
            candidates.append(ref)
    return texts, candidates


def chunks(candidates: list[dict]) -> list[list[dict]]:
    return [candidates[i:i + MAX_PER_CALL] for i in range(0, len(candidates), MAX_PER_CALL)] or [[]]


def track_text(track: dict | None) -> str:
    if not track:
        return ""
    return f"{track.get('artist', '')} - {track.get('title', '')}"


def matches_table(texts: list[str], matches: list[dict], symbols: bool = True) -> Any:
    """reference, matched track (artist - title), album, live, score; an empty track reads "no match"."""
    from .output import _cell, _table

    table = _table()
    table.add_column("Reference", min_width=8, ratio=4)
    table.add_column("Track", min_width=8, ratio=4)
    table.add_column("Album", min_width=5, ratio=2)
    table.add_column("Live", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    for text, m in zip(texts, matches):
        track = m.get("track")
        table.add_row(_cell(text), _cell(track_text(track) if track else "no match", None if track else "red"),
                      _cell(track.get("album") if track else ""),
                      _cell("live" if track and track.get("is_live") else ""),
                      _cell(f"{m.get('score', 0):g}" if track or m.get("score") else ""))
        for alt in m.get("alternatives") or []:
            t = alt.get("track") or {}
            table.add_row(_cell(""), _cell("  or " + track_text(t), "dim"), _cell(t.get("album"), "dim"),
                          _cell("live" if t.get("is_live") else "", "dim"), _cell(f"{alt.get('score', 0):g}", "dim"))
    return table


def summary(matches: list[dict]) -> str:
    found = sum(1 for m in matches if m.get("track"))
    return f"{fmt.num(found)} of {fmt.num(len(matches))} matched"
