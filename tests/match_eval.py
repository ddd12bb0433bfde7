"""A labelled evaluation set for tracks.match, built from the emulator's generated library.

`with_versions(lib, n)` adds what a generated library lacks: the same song in
several forms (studio, a live album's take, a 2011 remaster) for ``n``
tracks. `build_cases(lib, per_category)` then writes references the way people
and LLMs do, each labelled with the rating keys it must resolve to:

- variants of library tracks, one category per normalization rule, and
  "llm" (several at once: lower case, "and", accents dropped, a version suffix);
- absent tracks (expected: nothing): ``absent_title`` (a library title by
  another library artist), ``absent_artist`` (a library artist with a title it
  does not have) and ``absent_both``.

The transformations here are written independently of the daemon's
normalization (`mediasaged.match.normalize`): only `is_live` comes from the
daemon's rule (`sync.live`), since the live/studio labels depend on it. A
variant's right answers are the expected track and its exact duplicates
(same title, artist, album artist and liveness: a generated artist may have
"Rain" on two albums).
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from mediasaged.sync.live import live_matcher
from tests.emulator.generator import _FIRST, _SECOND, _WORDS
from tests.emulator.model import Album, Library, Track

LIVE_KEYWORDS = ["live", "concert", "unplugged", "in concert", "bootleg"]
_is_live = live_matcher(LIVE_KEYWORDS, True)
VERSION_SUFFIXES = ["(Remastered 2011)", " - 2009 Remaster", "(Radio Edit)", "(Album Version)", "[Explicit]",
                    "(Mono)", " - Remastered", "(2015 Remaster)"]
FEAT_FORMS = ["{t} (feat. {x})", "{t} ft. {x}", "{t} featuring {x}", "{t} (with {x})", "{t} [feat. {x}]"]
_BRACKETED = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
_NO_DECOMPOSITION = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "ß": "ss", "œ": "oe", "ł": "l"})


@dataclass(frozen=True)
class Case:
    category: str
    ref: dict  # {title, artist?, album?}
    expected: frozenset[str]  # rating keys that are right; empty = must find nothing
    note: str = ""

    @property
    def absent(self) -> bool:
        return not self.expected

    def text(self) -> str:
        return f"{self.ref.get('artist') or '?'} - {self.ref['title']}"


# Every combining character (combining class > 0) -> removed.
_COMBINING = dict.fromkeys(i for i in range(0x300, 0x110000) if unicodedata.combining(chr(i)))
# A character neither alphanumeric nor white space (as str.isalnum and str.isspace say).
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def _plain(s: str) -> str:
    """What a person without an accent key types."""
    if s.isascii():  # (the common case: a million-track library is labelled in seconds)
        return s
    return unicodedata.normalize("NFKD", s.translate(_NO_DECOMPOSITION)).translate(_COMBINING)


_ASCII_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(s: str) -> str:
    if s.isascii():
        return _ASCII_NON_ALNUM.sub("", s.lower())
    return "".join(ch for ch in _plain(s).casefold() if ch.isalnum())


def with_versions(lib: Library, n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """Add a live take (on a "Live at Wembley" album) and a remaster of ``n`` studio tracks.

    Returns [(studio key, live key, remaster key)].
    """
    rnd = random.Random(seed)
    studio = [t for t in lib.tracks.values() if not t.original_title and not _is_live(t.title, "")
              and not _is_live("", lib.albums[t.album_key].title) and len(_key(t.title)) >= 6]
    out = []
    by_artist: dict[str, list[Track]] = {}
    for t in rnd.sample(studio, min(n, len(studio))):
        by_artist.setdefault(lib.albums[t.album_key].artist_key, []).append(t)
    for artist_key, tracks in by_artist.items():
        base = lib.albums[tracks[0].album_key]
        live = Album(lib.new_key(), artist_key, "Live at Wembley", base.year, list(base.genres), base.added_at,
                     base.updated_at)
        deluxe = Album(lib.new_key(), artist_key, f"{base.title} (Deluxe Edition)", base.year, list(base.genres),
                       base.added_at, base.updated_at)
        lib.put_album(live)
        lib.put_album(deluxe)
        for i, t in enumerate(tracks, 1):
            lt = Track(lib.new_key(), live.rating_key, t.title, None, i, 1, t.duration, None, 0, None,
                       t.added_at, t.updated_at)
            rt = Track(lib.new_key(), deluxe.rating_key, f"{t.title} (Remastered 2011)", None, i, 1, t.duration,
                       None, 0, None, t.added_at, t.updated_at)
            lib.put_track(lt)
            lib.put_track(rt)
            out.append((t.rating_key, lt.rating_key, rt.rating_key))
    lib._order = lib._album_order = None
    return out


def add_album(lib: Library, artist: str, album: str, titles: list[str], credits: dict[str, str] | None = None,
              year: int = 1980) -> dict[str, str]:
    """Add an album (and its artist, if new) with these track titles; returns title -> rating key.

    ``credits``: title -> the track's own artist credit (Plex's originalTitle).
    """
    from tests.emulator.model import Artist

    found = [a for a in lib.artists.values() if a.title == artist]
    if found:
        ar = found[0]
    else:
        ar = Artist(lib.new_key(), artist, 1_400_000_000, 1_400_000_000)
        lib.put_artist(ar)
    al = Album(lib.new_key(), ar.rating_key, album, year, ["Rock"], 1_400_000_000, 1_400_000_000)
    lib.put_album(al)
    keys = {}
    for i, title in enumerate(titles, 1):
        t = Track(lib.new_key(), al.rating_key, title, (credits or {}).get(title), i, 1, 200_000, None, 0, None,
                  1_400_000_000, 1_400_000_000)
        lib.put_track(t)
        keys[title] = t.rating_key
    lib._order = lib._album_order = None
    return keys


class _Index:
    def __init__(self, lib: Library):
        self.tracks = lib.expected_tracks()
        for rk, t in self.tracks.items():
            t["is_live"] = _is_live(t["title"], t["album"])
        self.same: dict[tuple, set[str]] = {}
        self.by_artist: dict[str, set[str]] = {}  # artist key -> title keys (as artist or album artist)
        forms: dict[tuple, set[tuple]] = {}  # (artist, title without brackets) -> identities
        self._titled: dict[tuple[str, str], list[str]] = {}
        artist_keys: dict[str, str] = {}  # (artists repeat: each is keyed once)
        bare: dict[str, str] = {}  # rating key -> the key of its title without brackets
        for rk, t in self.tracks.items():
            title = _key(t["title"])
            bare[rk] = _key(_BRACKETED.sub("", t["title"]))
            self.same.setdefault(self._ident(t), set()).add(rk)
            forms.setdefault((_main_artist(t), bare[rk]), set()).add(self._ident(t))
            for a in {t["artist"], _main_artist(t), t["album_artist"]}:
                if a not in artist_keys:
                    artist_keys[a] = _key(a)
                # with and without its bracketed suffixes: "Song" is no absent track next to "Song (Live)"
                self.by_artist.setdefault(artist_keys[a], set()).update({title, bare[rk]})
            for a in {artist_keys[t["artist"]], artist_keys[t["album_artist"]]}:
                self._titled.setdefault((a, title), []).append(rk)
        self.artists = sorted({t["album_artist"] for t in self.tracks.values()} - {"Various Artists"})
        # Songs the library has in several forms (studio/live/remaster): only the
        # version_* cases use them, since which form is right depends on the version named.
        self.multi_form = {rk for rk, t in self.tracks.items() if len(forms[(_main_artist(t), bare[rk])]) > 1}

    @staticmethod
    def _ident(t: dict) -> tuple:
        return (t["title"].casefold(), _main_artist(t), t["album_artist"], t["is_live"])

    def right(self, rk: str) -> frozenset[str]:
        return frozenset(self.same[self._ident(self.tracks[rk])])

    def titled(self, artist: str, title: str) -> list[str]:
        """Tracks of this title by this artist (as artist or album artist)."""
        return self._titled.get((_key(artist), _key(title)), [])

    def has(self, artist: str, title: str) -> bool:
        titles = self.by_artist.get(_key(artist), ())
        return _key(title) in titles or _key(_BRACKETED.sub("", title)) in titles


def _typo(rnd: random.Random, s: str) -> str | None:
    """One edit to a letter after the first (substitute, delete, insert or swap), or None if too short."""
    spots = [i for i, ch in enumerate(s) if ch.isalpha() and ch.isascii() and i > 0]
    if len(_key(s)) < 6 or len(spots) < 3:
        return None
    i = rnd.choice(spots)
    kind = rnd.choice(("sub", "del", "ins", "swap"))
    letters = "abcdefghijklmnopqrstuvwxyz"
    if kind == "sub":
        return s[:i] + rnd.choice(letters.replace(s[i].lower(), "")) + s[i + 1:]
    if kind == "del":
        return s[:i] + s[i + 1:]
    if kind == "ins":
        return s[:i] + rnd.choice(letters) + s[i:]
    j = i + 1 if i + 1 < len(s) and s[i + 1].isalpha() else i - 1
    if j < 1 or s[i].lower() == s[j].lower():
        return s[:i] + rnd.choice(letters.replace(s[i].lower(), "")) + s[i + 1:]
    a, b = sorted((i, j))
    return s[:a] + s[b] + s[a] + s[b + 1:]


def _suffixed(title: str, suffix: str) -> str:
    return title + (suffix if suffix.startswith(" ") else " " + suffix)


def _main_artist(t: dict) -> str:
    return t["artist"].split(" feat. ")[0]


def build_cases(lib: Library, per_category: int = 20, seed: int = 3,
                versions: list[tuple[str, str, str]] = ()) -> list[Case]:
    rnd = random.Random(seed)
    ix = _Index(lib)
    tracks = ix.tracks
    keys = sorted(set(tracks) - ix.multi_form)
    plain = [k for k in keys if not tracks[k]["is_live"] and "Various" not in tracks[k]["album_artist"]]
    cases: list[Case] = []

    def variant(category: str, pool: list[str], make, note: str = "") -> None:
        pool = list(pool)
        rnd.shuffle(pool)
        made = 0
        for rk in pool:
            if made >= per_category:
                break
            ref = make(tracks[rk])
            if ref and ref.get("title"):
                cases.append(Case(category, ref, ix.right(rk), note))
                made += 1

    def both(t: dict, title: str | None = None, artist: str | None = None) -> dict:
        return {"title": title if title is not None else t["title"],
                "artist": artist if artist is not None else t["artist"]}

    variant("exact", keys, lambda t: both(t))
    variant("case", keys, lambda t: both(t, t["title"].upper(), t["artist"].lower()))
    accented = [k for k in keys if _plain(tracks[k]["artist"] + tracks[k]["title"]) != tracks[k]["artist"]
                + tracks[k]["title"]]
    variant("accents", accented, lambda t: both(t, _plain(t["title"]), _plain(t["artist"])))
    punct = [k for k in keys if _PUNCTUATION.search(tracks[k]["artist"] + tracks[k]["title"])]
    variant("punctuation", punct, lambda t: both(
        t, "".join(c for c in t["title"] if c.isalnum() or c.isspace()),
        rnd.choice(["".join(c for c in t["artist"] if c.isalnum() or c.isspace()),
                    "".join(c if c.isalnum() else " " for c in t["artist"])])))
    anded = [k for k in keys if "&" in tracks[k]["artist"] + tracks[k]["title"]]
    variant("and", anded, lambda t: both(t, t["title"].replace("&", rnd.choice(["and", "+"])),
                                         t["artist"].replace("&", rnd.choice(["and", "+", "And"]))))
    others = ix.artists
    variant("feat_title", plain, lambda t: both(
        t, rnd.choice(FEAT_FORMS).format(t=t["title"], x=rnd.choice(others))))
    variant("feat_artist", plain, lambda t: both(t, artist=f"{t['artist']} {rnd.choice(['feat.', 'ft.', 'featuring'])} "
                                                           f"{rnd.choice(others)}"))
    credited = [k for k in keys if " feat. " in tracks[k]["artist"]]
    variant("feat_library", credited, lambda t: both(t, artist=_main_artist(t)),
            "the library credits 'A feat. B'; the reference names A")
    single_form = [k for k in plain if not any(k in v for v in versions)]
    variant("version_suffix", single_form, lambda t: both(t, _suffixed(t["title"], rnd.choice(VERSION_SUFFIXES))))
    variant("the", [k for k in keys if not tracks[k]["artist"].startswith("The ")],
            lambda t: both(t, artist="The " + t["artist"]))
    variant("the_dropped", [k for k in keys if tracks[k]["artist"].startswith("The ")],
            lambda t: both(t, artist=t["artist"][4:]))
    variant("typo_title", keys, lambda t: (lambda x: x and both(t, title=x))(_typo(rnd, t["title"])))
    variant("typo_artist", keys, lambda t: (lambda x: x and both(t, artist=x))(_typo(rnd, t["artist"])))
    # the album artist (a compilation's "Various Artists"), where that names one track
    variant("album_artist", [k for k in keys if tracks[k]["artist"] != tracks[k]["album_artist"]
                             and len(ix.titled(tracks[k]["album_artist"], tracks[k]["title"])) == 1],
            lambda t: both(t, artist=t["album_artist"]))
    variant("llm", plain, lambda t: both(
        t, _plain(t["title"]).lower().replace("&", "and") + rnd.choice([" (Remastered)", " - Radio Edit", ""]),
        _plain(t["artist"]).replace("&", "and").replace("/", "")))
    for studio, live, remaster in versions[:per_category]:
        t = tracks[studio]
        cases.append(Case("version_studio", both(t), ix.right(studio), "studio, live and remaster in the library"))
        cases.append(Case("version_live", both(t, t["title"] + " (Live)"), ix.right(live),
                          "studio, live and remaster in the library"))
        cases.append(Case("version_remaster", both(t, t["title"] + " - 2011 Remaster"), ix.right(remaster),
                          "studio, live and remaster in the library"))

    # absent: near misses and made-up references
    def absent(category: str, make) -> None:
        made = tries = 0
        while made < per_category and tries < per_category * 50:
            tries += 1
            ref = make()
            if ref and not ix.has(ref["artist"], ref["title"]):
                cases.append(Case(category, ref, frozenset()))
                made += 1

    def new_title() -> str:
        return " ".join(rnd.choice(_WORDS) for _ in range(rnd.randint(1, 4))).capitalize()

    absent("absent_title", lambda: {"title": tracks[rnd.choice(keys)]["title"], "artist": rnd.choice(others)})
    absent("absent_artist", lambda: {"title": new_title(), "artist": rnd.choice(others)})
    absent("absent_both", lambda: {"title": new_title(),
                                   "artist": f"{rnd.choice(_FIRST)} {rnd.choice(_SECOND)} {rnd.randint(5000, 9999)}"})
    return cases


@dataclass
class Report:
    cases: list[Case]
    found: list[str | None]  # the rating key each case resolved to

    def right(self, i: int) -> bool:
        c = self.cases[i]
        return self.found[i] is None if c.absent else self.found[i] in c.expected

    @property
    def variant_recall(self) -> float:
        v = [i for i, c in enumerate(self.cases) if not c.absent]
        return sum(self.right(i) for i in v) / len(v)

    @property
    def absent_matched(self) -> float:
        a = [i for i, c in enumerate(self.cases) if c.absent]
        return sum(not self.right(i) for i in a) / len(a)

    @property
    def precision(self) -> float:
        """Of the references that resolved to a track, the share resolved to a right one."""
        hits = [i for i, f in enumerate(self.found) if f is not None]
        return sum(self.right(i) for i in hits) / len(hits) if hits else 1.0

    def by_category(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for i, c in enumerate(self.cases):
            out.setdefault(c.category, [0, 0])
            out[c.category][0] += self.right(i)
            out[c.category][1] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}

    def misses(self) -> list[tuple[Case, str | None]]:
        return [(c, self.found[i]) for i, c in enumerate(self.cases) if not self.right(i)]
