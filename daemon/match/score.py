"""Scoring a reference against library tracks (pure; rapidfuzz does the string work).

A reference's score against a track, 0-100:

- ``t``: similarity of the title keys, ``a``: the better similarity of the
  artist key to the track's artist and album-artist keys: 1 - (OSA edit
  distance / the longer key's length), on the compact keys of `normalize`. A
  typo (or two swapped letters) is one edit; a missing word is as many edits
  as it has letters. A track title with version tags is also compared with the
  tags as words ("Home Live" against "Home (Live)"). Keys whose
  numbers differ ("Song 2" / "Song", "Wolves 12" / "Wolves 21") lose
  `DIGIT_PENALTY`: a number is never a typo.
- With an artist: ``0.85 * min(t, a) + 0.15 * max(t, a)``, so a right title by
  another artist (or the artist's other song) stays well below 85, while one
  small typo in a name of 5+ characters still clears it. Without: ``t``.
- Version suffixes do not change the score (they are ignored), but they rank:
  every tag the reference and the track do not share costs `DISTINCT_PENALTY`
  points of rank when it names another recording (live, acoustic, remix, ...)
  and `DRESS_PENALTY` otherwise (remaster, edit, explicit, mono, ...). A track
  is live when its title says so or `is_live` is set (its album is a live
  one). So a version the library has only once matches as well as the exact
  title, and when the library has several, the one the reference names wins
  (no version named: the studio one).

Tracks rank by score less version penalty, then by album similarity (when
the reference names an album), then by the lower internal id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from rapidfuzz import process
from rapidfuzz.distance import OSA

from .normalize import DISTINCT_TAGS, TAGS, album_key, artist_key, title_key

DIGIT_PENALTY = 30.0
DISTINCT_PENALTY = 3.0
DRESS_PENALTY = 1.0
MIN_WEIGHT = 0.85
ALTERNATIVE_FLOOR = 50.0  # alternatives score at least this (or min_score, if lower)
NEAR_MISS = 15.0  # a null match reports the best score down to this far below min_score (else 0)

_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Reference:
    """One candidate of a tracks.match call, normalized."""

    index: int
    title: str  # title key
    tags: frozenset[str]
    artist: str  # artist key, "" when the reference names none
    album: str  # album key, "" when none

    @classmethod
    def of(cls, index: int, title: str, artist: str | None = None, album: str | None = None) -> Reference:
        key, tags = title_key(title)
        return cls(index, key, tags, artist_key(artist) if artist else "", album_key(album) if album else "")

    @property
    def title_digits(self) -> list[str]:
        return _DIGITS.findall(self.title)


# A candidate row from the cache: (id, m_title, m_tags, m_artist, m_album_artist, m_album, is_live)
Row = Sequence


def _osa(a: str, b: str) -> float:
    """100 * (1 - OSA distance / longer length): an edit or a swap of two letters is one step."""
    return OSA.normalized_similarity(a, b) * 100


def similarity(a: str, b: str, a_digits: list[str] | None = None) -> float:
    """`_osa` of two keys, less DIGIT_PENALTY when their numbers differ."""
    if a == b:
        return 100.0
    r = _osa(a, b)
    if r > DIGIT_PENALTY:
        if (a_digits if a_digits is not None else _DIGITS.findall(a)) != _DIGITS.findall(b):
            r -= DIGIT_PENALTY
    return r


def combine(t: float, a: float | None) -> float:
    if a is None:
        return t
    lo, hi = (t, a) if t <= a else (a, t)
    return MIN_WEIGHT * lo + (1 - MIN_WEIGHT) * hi


def _near(n: int) -> float:
    """The highest similarity of a key of ``n`` characters to any other key: one edit, the other a letter longer."""
    return 100.0 * n / (n + 1)


def ceiling(ref: Reference) -> float:
    """The highest score a track whose keys are not exactly the reference's can reach.

    Such a track differs in its title key (at most `_near`, unless its title
    plus its tags as words can spell the reference's title: then 100) or in
    both artist keys (at most `_near` of the artist key).
    """
    t = 100.0 if ref.title.endswith(TAGS) else _near(len(ref.title))
    if not ref.artist:
        return round(t, 1)
    return round(max(combine(t, 100.0), combine(100.0, _near(len(ref.artist)))), 1)


def field_floor(min_score: float) -> float:
    """The lowest title (or artist) similarity that can still reach ``min_score``."""
    return max(0.0, (min_score - (1 - MIN_WEIGHT) * 100) / MIN_WEIGHT)


def version_penalty(ref_tags: frozenset[str], track_tags: str, is_live: bool) -> float:
    tags = set(track_tags.split()) if track_tags else set()
    if is_live:
        tags.add("live")
    if not tags and not ref_tags:
        return 0.0
    diff = ref_tags.symmetric_difference(tags)
    distinct = len(diff & DISTINCT_TAGS)
    return DISTINCT_PENALTY * distinct + DRESS_PENALTY * (len(diff) - distinct)


@dataclass(frozen=True)
class Scored:
    score: float  # reported: title and artist only
    penalty: float  # version mismatch: ranks, never lowers the score
    album: float
    id: int

    def rank(self) -> tuple:
        return (self.penalty - self.score, -self.album, self.id)


def _cutoff(similarity: float) -> float:
    """rapidfuzz's score_cutoff (0-1) for a similarity floor, a hair low: pruning keeps the floor itself."""
    return max(0.0, similarity / 100 - 1e-6)


def title_hits(ref: Reference, titles: Sequence[tuple], floor: float) -> set[int]:
    """Ids of entries ending with ``(id, m_title, m_tags)`` whose title can still reach ``floor`` (an exact artist
    assumed)."""
    if not titles:
        return set()
    cutoff = _cutoff(field_floor(floor) if ref.artist else floor)
    osa = OSA.normalized_similarity
    hits = {titles[i][-3] for _, _, i in process.extract(ref.title, [t[-2] for t in titles], scorer=osa,
                                                         score_cutoff=cutoff, limit=None)}
    tagged = [t for t in titles if t[-1] and t[-3] not in hits]
    if tagged:
        hits.update(tagged[j][-3] for _, _, j in process.extract(
            ref.title, [t[-2] + t[-1].replace(" ", "") for t in tagged], scorer=osa, score_cutoff=cutoff, limit=None))
    return hits


def artist_hits(ref: Reference, artists: Sequence[tuple], floor: float) -> set[int]:
    """Ids of entries ending with ``(id, m_artist, m_album_artist)`` (of an exact title, or a title's range) whose
    artist can still reach ``floor``; an album artist of None is the artist."""
    if not artists:
        return set()
    if not ref.artist:
        return {a[-3] for a in artists}
    cutoff, osa = _cutoff(field_floor(floor)), OSA.normalized_similarity
    hits = {artists[i][-3] for _, _, i in process.extract(ref.artist, [a[-2] for a in artists], scorer=osa,
                                                          score_cutoff=cutoff, limit=None)}
    other = [a for a in artists if a[-1] is not None and a[-1] != a[-2] and a[-3] not in hits]
    if other:
        hits.update(other[j][-3] for _, _, j in process.extract(ref.artist, [a[-1] for a in other], scorer=osa,
                                                                score_cutoff=cutoff, limit=None))
    return hits


def score_rows(ref: Reference, rows: Iterable[Row], floor: float) -> list[Scored]:
    """Every row scoring ``floor`` or more, best first (each track once)."""
    rows = {r[0]: r for r in rows}
    if not rows:
        return []
    cut = field_floor(floor) if ref.artist else floor
    items = list(rows.values())
    # Titles first, in one vectorized pass: most rows fail here. A title with
    # version tags is also tried with them as words ("Home Live" = "Home (Live)").
    osa, cutoff = OSA.normalized_similarity, _cutoff(cut)
    hits = {i for _, _, i in process.extract(ref.title, [r[1] for r in items], scorer=osa, score_cutoff=cutoff,
                                               limit=None)}
    tagged = [i for i, r in enumerate(items) if r[2] and i not in hits]
    if tagged:
        hits.update(tagged[j] for _, _, j in process.extract(
            ref.title, [items[i][1] + items[i][2].replace(" ", "") for i in tagged], scorer=osa,
            score_cutoff=cutoff, limit=None))
    digits = ref.title_digits
    out = []
    for i in hits:
        r = items[i]
        t = similarity(ref.title, r[1], digits)
        if r[2] and t < 100:
            t = max(t, similarity(ref.title, r[1] + r[2].replace(" ", ""), digits))
        a = None
        if ref.artist:
            a = similarity(ref.artist, r[3])
            if r[4] != r[3]:
                a = max(a, similarity(ref.artist, r[4]))
        s = combine(t, a)
        if s >= floor:
            alb = similarity(ref.album, r[5]) if ref.album else 0.0
            out.append(Scored(round(s, 1), version_penalty(ref.tags, r[2], bool(r[6])), alb, r[0]))
    out.sort(key=Scored.rank)
    return out
