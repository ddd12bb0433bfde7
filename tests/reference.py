"""The reference: CONTRACT §3's filter, sort and stats rules, one track at a time in plain Python.

Written from the contract, not from the daemon (nothing here imports mediasaged),
and shared by the query tests on a synthetic cache (tests/test_query.py) and the
end-to-end ones on the emulator's library (tests/test_query_e2e.py). A track is
a dict with the Track object's fields; times are unix seconds.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable


def fold(s: str) -> str:
    """Case-insensitive name key: "BJÖRK" == "Björk" (NFC, then casefold)."""
    return unicodedata.normalize("NFC", s).casefold()


def words(s: str) -> list[str]:
    """Text-search words: folded, accents dropped ("Beyoncé" -> "beyonce"), split at anything
    that is not a letter or digit."""
    plain = "".join(c for c in unicodedata.normalize("NFD", fold(s)) if not unicodedata.combining(c))
    return "".join(c if c.isalnum() else " " for c in plain).split()


def timestamp(text: str) -> int:
    """An ISO 8601 time or date (UTC when it has no offset) as unix seconds."""
    if len(text) == 10:
        d = date.fromisoformat(text)
        return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())
    moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return math.floor(moment.timestamp())


def text_matches(track: dict, text: str) -> bool:
    """Every word of ``text`` starts a word of the title, artist, album artist or album."""
    haystack = [w for f in ("title", "artist", "album_artist", "album") for w in words(track[f])]
    return all(any(h.startswith(w) for h in haystack) for w in words(text))


def matches(track: dict, p: dict) -> bool:
    """Whether ``track`` passes every filter of the tracks.query params ``p`` (AND)."""
    genres = {fold(g) for g in track["genres"]}
    wanted = {fold(g) for g in p.get("genres") or []}
    if wanted and (not wanted <= genres if p.get("genre_mode") == "all" else not wanted & genres):
        return False
    if genres & {fold(g) for g in p.get("exclude_genres") or []}:
        return False
    year = track["year"]
    if p.get("decades") and (year is None or f"{year // 10 * 10}s" not in p["decades"]):
        return False
    if p.get("year_min") is not None and (year is None or year < p["year_min"]):
        return False
    if p.get("year_max") is not None and (year is None or year > p["year_max"]):
        return False
    rating = track["user_rating"]
    if p.get("min_rating") is not None and (rating is None or rating < p["min_rating"]):
        return False
    if p.get("exclude_live") and track["is_live"]:
        return False
    if p.get("artist") is not None and fold(p["artist"]) not in (fold(track["artist"]), fold(track["album_artist"])):
        return False
    if p.get("album") is not None and fold(p["album"]) != fold(track["album"]):
        return False
    if (p.get("text") or "").strip() and not text_matches(track, p["text"]):
        return False
    for name, field in (("added_after", "added_at"), ("updated_after", "updated_at")):
        if p.get(name) is not None and not (track[field] is not None and track[field] > timestamp(p[name])):
            return False
    return True


def matching(tracks: Iterable[dict], p: dict) -> list[dict]:
    return [t for t in tracks if matches(t, p)]


_ARTIST_ORDER: list[Callable[[dict], Any]] = [
    lambda t: fold(t["artist"]), lambda t: fold(t["album"]), lambda t: t["disc_number"], lambda t: t["track_number"]]
SORT_KEYS: dict[str, list[Callable[[dict], Any]]] = {
    "artist": _ARTIST_ORDER,
    "title": [lambda t: fold(t["title"])],
    "album": [lambda t: fold(t["album"]), lambda t: fold(t["album_artist"]), lambda t: t["disc_number"],
              lambda t: t["track_number"]],
    "year": [lambda t: t["year"]], "duration": [lambda t: t["duration_ms"]],
    "rating": [lambda t: t["user_rating"]], "added": [lambda t: t["added_at"]],
}


def sort_tracks(tracks: Iterable[dict], sort: str = "artist", order: str = "asc",
                tiebreak: Callable[[dict], Any] = lambda t: t["_id"]) -> list[dict]:
    """Stable multi-pass sort: NULLs last in both orders; other sorts continue with the
    artist keys ascending; ``tiebreak`` (the order rows were stored in) last."""
    keys = [(k, order == "desc") for k in SORT_KEYS[sort]]
    if sort != "artist":
        keys += [(k, False) for k in _ARTIST_ORDER]
    out = sorted(tracks, key=tiebreak)
    for key, desc in reversed(keys):
        present = sorted((t for t in out if key(t) is not None), key=key, reverse=desc)
        out = present + [t for t in out if key(t) is None]
    return out


def stats(tracks: Iterable[dict]) -> dict:
    """library.stats over ``tracks`` (without generation / synced_at)."""
    chosen = list(tracks)
    names: dict[str, Counter] = {}  # folded genre -> display names and how often each is used
    for t in chosen:
        for key, name in {fold(g): g for g in reversed(t["genres"])}.items():
            names.setdefault(key, Counter())[name] += 1
    genres = sorted(((sum(c.values()), key, min(c)) for key, c in names.items()), key=lambda x: (-x[0], x[1]))
    decades = Counter(f"{t['year'] // 10 * 10}s" for t in chosen if t["year"] is not None)
    return {
        "track_count": len(chosen),
        "artist_count": len({fold(t["artist"]) for t in chosen}),
        "album_count": len({t["album_rating_key"] or (fold(t["album_artist"]), fold(t["album"])) for t in chosen}),
        "total_duration_ms": sum(t["duration_ms"] or 0 for t in chosen),
        "live_count": sum(t["is_live"] for t in chosen),
        "genres": [{"name": name, "count": n} for n, _, name in genres],
        "decades": [{"decade": d, "count": decades[d]} for d in sorted(decades)],
    }
