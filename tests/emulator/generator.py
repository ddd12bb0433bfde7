"""Deterministic synthetic music libraries for the Plex emulator.

``generate_library(n_tracks, seed)`` builds exactly ``n_tracks`` tracks (100k in a
couple of seconds) with the awkward cases the sync must survive: non-ASCII names,
compilations with per-track artists, "feat." credits, live and dated album titles,
albums without genre or year, albums with 3–4 genres (more than the 2 a listing
shows), half-star and missing ratings, multi-disc albums, tracks without a number
and XML-special characters in titles.
"""
from __future__ import annotations

import random

from .model import Album, Artist, Library, Track

SPECIAL_ARTISTS = [
    "Björk", "Beyoncé", "坂本龍一", "Sigur Rós", "Motörhead", "Mötley Crüe", "Zoë Keating",
    "Ólafur Arnalds", "Кино", "Αλκίνοος Ιωαννίδης", "宇多田ヒカル", "Café Tacvba",
    "Hüsker Dü", "Amadou & Mariam", "AC/DC", "Guns N' Roses", "The \"Quoted\" Band",
    "Måneskin", "BTS (방탄소년단)", "Fela Kuti", "Røyksopp", "Dvořák Ensemble",
]
_FIRST = ["Black", "Silver", "Neon", "Velvet", "Electric", "Crimson", "Golden", "Hollow",
          "Midnight", "Paper", "Iron", "Glass", "Wild", "Quiet", "Lunar", "Solar", "Static",
          "Broken", "Royal", "Stone", "Cosmic", "Frozen", "Burning", "Secret", "Last"]
_SECOND = ["Wolves", "Rivers", "Engines", "Dreams", "Foxes", "Kings", "Lights", "Saints",
           "Echoes", "Horses", "Signals", "Machines", "Ghosts", "Tides", "Harbors", "Birds",
           "Mirrors", "Owls", "Strangers", "Pilots"]
_WORDS = ["love", "night", "fire", "rain", "city", "heart", "road", "summer", "shadow", "dance",
          "river", "sky", "home", "gold", "ghost", "song", "blue", "light", "dream", "storm",
          "garden", "winter", "ocean", "mirror", "train", "angel", "stranger", "morning",
          "mañana", "cœur", "naïve", "señorita", "über", "café", "東京", "夜", "сердце"]
GENRES = ["Rock", "Pop", "Jazz", "Electronic", "Hip-Hop", "Classical", "Folk", "Blues",
          "Soul", "R&B", "Metal", "Punk", "Indie", "Ambient", "Country", "Reggae", "Funk",
          "Latin", "World", "Soundtrack", "Alternative", "Experimental", "Dance", "House",
          "Techno", "Trip Hop", "Post-Rock", "Singer/Songwriter", "J-Pop", "K-Pop",
          "Música Popular Brasileira", "Électronique", "Chanson française", "Krautrock",
          "Shoegaze", "Gospel", "Disco", "Bossa Nova", "Afrobeat", "Grunge", "alternative rock"]
_LIVE_TEMPLATES = ["{} (Live)", "Live at {}", "{} Unplugged", "{} in Concert", "Bootleg {}",
                   "{d} Concert", "Live {dd}", "MTV Unplugged", "Live in {}"]
_PLACES = ["Wembley", "Budokan", "Reykjavík", "Montréal", "the Fillmore", "Köln", "Red Rocks"]
VARIOUS = "Various Artists"


def _name(rnd: random.Random) -> str:
    return f"{rnd.choice(_FIRST)} {rnd.choice(_SECOND)}"


def _title(rnd: random.Random, words: int) -> str:
    t = " ".join(rnd.choice(_WORDS) for _ in range(words)).capitalize()
    r = rnd.random()
    if r < 0.01:
        t += " & <Reprise>"
    elif r < 0.02:
        t = f'"{t}"'
    elif r < 0.03:
        t += "'s Theme"
    return t


def _live_title(rnd: random.Random, tpl: str | None = None) -> str:
    tpl = tpl or rnd.choice(_LIVE_TEMPLATES)
    y, m, d = rnd.randint(1965, 2015), rnd.randint(1, 12), rnd.randint(1, 28)
    return tpl.format(rnd.choice(_PLACES) if "{}" in tpl and tpl.startswith("Live") else _title(rnd, 2),
                      d=f"{y}-{m:02d}-{d:02d}", dd=f"{d:02d}.{m:02d}.{y}")


def _genres(rnd: random.Random) -> list[str]:
    r = rnd.random()
    n = 0 if r < 0.08 else 1 if r < 0.45 else 2 if r < 0.75 else rnd.choice((3, 4))
    return rnd.sample(GENRES, n)


def generate_library(n_tracks: int = 1500, seed: int = 0, *, library: Library | None = None,
                     base_time: int = 1_500_000_000) -> Library:
    """Fill (or create) a Library with exactly n_tracks tracks, deterministic per seed.

    All timestamps are in [base_time - 10 years, base_time]: in the past, so that a
    mutation made "now" always moves updatedAt forward."""
    rnd = random.Random(seed)
    lib = library or Library()
    for g in GENRES:  # stable genre ids (tag keys) per library, whatever is asked first
        lib.genre_id(g)
    n_albums = max(1, n_tracks // 10)
    n_artists = max(1, n_albums // 3)
    # artists: the special (non-ASCII) ones first, then generated names (unique)
    names: list[str] = []
    seen: set[str] = set()
    for nm in SPECIAL_ARTISTS[: max(1, min(len(SPECIAL_ARTISTS), n_artists // 2))]:
        names.append(nm)
        seen.add(nm)
    while len(names) < n_artists:
        nm = _name(rnd)
        if nm in seen:
            nm = f"{nm} {len(names)}"
        seen.add(nm)
        names.append(nm)
    t_lo = base_time - 10 * 365 * 86400
    artists = []
    for nm in names:
        added = rnd.randint(t_lo, base_time - 86400)
        a = Artist(lib.new_key(), nm, added, added)
        lib.put_artist(a)
        artists.append(a)
    various = Artist(lib.new_key(), VARIOUS, t_lo, t_lo)
    lib.put_artist(various)

    # split n_tracks over albums: 1..20 tracks each, exact total
    sizes = [rnd.randint(4, 16) for _ in range(n_albums)]
    total = sum(sizes)
    sizes = [max(1, s * n_tracks // total) for s in sizes]
    diff = n_tracks - sum(sizes)
    i = 0
    while diff != 0:
        j = i % n_albums
        if diff > 0:
            sizes[j] += 1
            diff -= 1
        elif sizes[j] > 1:
            sizes[j] -= 1
            diff += 1
        i += 1

    for ai, size in enumerate(sizes):
        r = rnd.random()
        compilation = r < 0.06
        artist = various if compilation else artists[ai % len(artists)]
        if ai % 13 == 3:  # every live/dated template shows up, even in small libraries
            title = _live_title(rnd, _LIVE_TEMPLATES[(ai // 13) % len(_LIVE_TEMPLATES)])
        elif 0.06 <= r < 0.14:
            title = _live_title(rnd)
        else:
            title = _title(rnd, rnd.randint(1, 3))
            if compilation:
                title = f"{title}: Best of {rnd.randint(1970, 2020)}s"
        year = None if rnd.random() < 0.07 else rnd.randint(1960, 2024)
        added = rnd.randint(t_lo, base_time - 3600)
        updated = min(base_time, added + rnd.randint(0, 400 * 86400))
        al = Album(lib.new_key(), artist.rating_key, title, year, _genres(rnd), added, updated)
        lib.put_album(al)
        discs = rnd.choice((2, 2, 3)) if size >= 6 and rnd.random() < 0.1 else 1
        per_disc = -(-size // discs)
        for ti in range(size):
            disc, index = divmod(ti, per_disc)
            index += 1
            disc += 1
            orig = None
            if compilation:
                orig = rnd.choice(names)
            elif rnd.random() < 0.04:
                orig = f"{artist.title} feat. {rnd.choice(names)}"
            tt = _title(rnd, rnd.randint(1, 4))
            if rnd.random() < 0.02:
                tt += " (Live)"
            rr = rnd.random()
            rating = None if rr < 0.45 else float(rnd.randint(0, 10))
            vc = 0 if rnd.random() < 0.5 else rnd.randint(1, 60)
            last = rnd.randint(added, base_time) if vc else None
            t_upd = max(rnd.randint(added, base_time), last or 0)
            t = Track(lib.new_key(), al.rating_key, tt, orig,
                      None if rnd.random() < 0.01 else index,
                      None if (discs == 1 and rnd.random() < 0.01) else disc,
                      None if rnd.random() < 0.005 else rnd.randint(30_000, 900_000),
                      rating, vc, last, added, t_upd)
            lib.put_track(t)
    return lib
