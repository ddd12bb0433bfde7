"""Music-aware normalization for tracks.match (pure; standard library only).

What a person or an LLM writes ("Hall and Oates - Rich Girl (Remastered)",
"Beyonce", "ACDC", "Guns N Roses") and how the library spells it differ in
ways that do not change which recording is meant. :func:`match_keys` turns a
track's title, artist, album artist and album into compact keys that agree
across those differences; the sync stores them with every track, and
:func:`reference_keys` does the same to a candidate at call time:

- case (``casefold``) and compatibility forms (NFKD: full-width letters, ligatures);
- diacritics: combining marks of the Latin, Greek and Cyrillic blocks are dropped
  ("Beyoncé" -> "beyonce", "Sigur Rós" -> "sigur ros") and a small table maps
  the Latin letters that do not decompose ("ø", "æ", "ß", "ł", "đ", "þ", ...).
  Other scripts are kept as they are: CJK is not romanized (NFC puts kana and
  Hangul back together), and each Han, kana or Hangul character is written
  twice in a key, so that it weighs like a short word in edit distances;
- punctuation: apostrophes vanish, other punctuation separates words, and the
  keys have no spaces at all, so "AC/DC", "AC DC" and "ACDC" are one key;
- "&", "+", "and" and a lone "n" ("Guns N' Roses") are left out;
- featured-artist credits: "(feat. X)", "[ft. X]", "featuring X", "(with X)"
  in titles; "feat./ft./featuring/with X" after an artist;
- version suffixes in brackets or after " - " ("(Remastered 2011)",
  "- 2009 Remaster", "(Radio Edit)", "[Explicit]", "(Live at Wembley)") leave
  the title key and become *tags* ("remaster", "live", ...), which the scorer
  uses to prefer the version a reference asks for;
- a leading "The" (or a trailing ", The") on artist names, and bracketed
  aliases after them ("BTS (방탄소년단)" -> "bts").
"""

from __future__ import annotations

import re
import unicodedata

from ..memo import Memo

# Combining marks of the blocks used by Latin, Greek and Cyrillic diacritics.
# Kana voicing marks (U+3099/U+309A) and Indic vowel signs are not in them.
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Letters without a decomposition, plus the punctuation look-alikes people type.
_TABLE = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ẞ": "SS",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH",
    "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ŀ": "l", "Ŀ": "L", "ſ": "s", "ƒ": "f",
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u0060": "'", "\u00b4": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00d7": "x",
})


def fold_text(s: str) -> str:
    """Case, compatibility forms and diacritics folded; punctuation look-alikes unified."""
    if s.isascii():
        return s.lower()
    s = _MARKS.sub("", unicodedata.normalize("NFKD", s)).translate(_TABLE)
    return unicodedata.normalize("NFC", s).casefold()


# ---------------------------------------------------------------- words

_APOSTROPHES = re.compile(r"'+")
_DOLLAR = re.compile(r"(?<=\w)\$(?=\w)")  # Ke$ha, A$AP
_NON_WORD = re.compile(r"[\W_]+")
_AND_WORDS = frozenset({"and", "n", "&", "+"})


def words(folded: str) -> list[str]:
    """The words of folded text, without "&", "+", "and" and a lone "n" ("Guns N' Roses").

    Dropping the "and"s makes "Hall & Oates", "Hall and Oates", "Hall + Oates"
    and "Hall Oates" (the "&" lost with the punctuation) one key.
    """
    s = folded.replace("&", " and ").replace("+", " and ")
    if "$" in s:  # (each test below is cheaper than the regex it skips, which needs it to match)
        s = _DOLLAR.sub("s", s)
    if "'" in s:
        s = _APOSTROPHES.sub("", s)
    ws = s.split()
    if not "".join(ws).isalnum():  # then the regex finds other separators than spaces ([\W_] = not isalnum)
        ws = _NON_WORD.sub(" ", s).split()
    return [w for w in ws if w not in _AND_WORDS]


# ---------------------------------------------------------------- versions and credits

_FEAT = r"(?:feat\.?|ft\.?|featuring|feat\b)"
# A bracketed group that is a featured-artist credit.
_FEAT_GROUP = re.compile(rf"^\s*(?:{_FEAT}|with\b|w/)", re.IGNORECASE)
# An unbracketed credit running to the end of a title.
_TITLE_FEAT = re.compile(rf"\s+{_FEAT}\s.*$")
_ARTIST_FEAT = re.compile(rf"\s+(?:{_FEAT}|with)\s.*$|\s*\((?:{_FEAT}|with)\s[^)]*\)")
_BRACKETS = re.compile(r"\s*[(\[{]([^()\[\]{}]*)[)\]}]")
_DASH_TAIL = re.compile(r"\s+-\s+([^-]*)$")

# Version words -> tag. Tags in DISTINCT_TAGS name another recording (live,
# acoustic, a remix...); the others name the same recording in another dress.
_TAG_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), t) for p, t in (
    (r"\blive\b|\bin concert\b|\bunplugged\b|\bbootleg\b", "live"),
    (r"\bacoustic\b", "acoustic"),
    (r"\boriginal mix\b", "original"),
    (r"\bre-?mix(?:ed)?\b|\brmx\b|(?<!original )\bmix\b|\brework\b|\bdub\b", "remix"),
    (r"\binstrumental\b|\bkaraoke\b", "instrumental"),
    (r"\ba ?cc?apella\b", "acapella"),
    (r"\bdemo\b|\bouttake\b|\balternate\b|\balt\.? take\b|\btake \d+\b|\bsessions?\b|\brehearsal\b", "demo"),
    (r"\bre-?record(?:ed|ing)?\b", "rerecorded"),
    (r"\bre-?master(?:ed)?\b|\bremastering\b", "remaster"),
    (r"\bradio\b|\bedit\b|\bshort version\b", "edit"),
    (r"\bextended\b|\blong version\b|\bfull length\b", "extended"),
    (r"\bexplicit\b|\bdirty\b", "explicit"),
    (r"\bclean\b|\bcensored\b", "clean"),
    (r"\bmono\b", "mono"),
    (r"\bstereo\b", "stereo"),
    (r"\bversion\b|\bvers\.", "version"),
    (r"\bsingle\b", "single"),
    (r"\bbonus\b", "bonus"),
    (r"\bdeluxe\b|\bedition\b|\banniversary\b|\bexpanded\b", "edition"),
    (r"^from\b|\bsoundtrack\b|\bost\b", "soundtrack"),
))
DISTINCT_TAGS = frozenset({"live", "acoustic", "remix", "instrumental", "acapella", "demo", "rerecorded"})
TAGS = tuple(sorted({tag for _, tag in _TAG_RULES}))  # every tag (a tuple: str.endswith takes it)


_BARE_REMASTER = re.compile(r"\s+(?:(?:19|20)\d\d\s+)?re-?master(?:ed)?(?:\s+(?:19|20)\d\d)?\s*$")


def version_tags(folded: str) -> frozenset[str]:
    """The version tags a (folded) bracket group or dash tail names; empty if it is no version."""
    return frozenset(tag for pattern, tag in _TAG_RULES if pattern.search(folded))


_NO_TAGS: frozenset[str] = frozenset()


def split_title(folded: str) -> tuple[str, frozenset[str]]:
    """(the title without featured credits and version suffixes, the versions' tags).

    Each pattern runs only when the text holds what it cannot match without (a bracket,
    a dash, "ft"/"feat", "master"): most titles have none, and the sync folds every
    title it writes (4 regex calls cost ~4 µs a title here: a third of writing a row).
    """
    tags: set[str] = set()

    def bracket(m: re.Match[str]) -> str:
        inner = m.group(1)
        if _FEAT_GROUP.match(inner):
            return ""
        found = version_tags(inner)
        if found:
            tags.update(found)
            return ""
        return m.group(0)

    s = _BRACKETS.sub(bracket, folded) if "(" in folded or "[" in folded or "{" in folded else folded
    while "-" in s:  # "Song - Live at Wembley - 2009 Remaster": peel version tails from the end
        m = _DASH_TAIL.search(s)
        found = version_tags(m.group(1)) if m else frozenset()
        if not found:
            break
        tags.update(found)
        s = s[: m.start()]
    if "ft" in s or "feat" in s:
        s = _TITLE_FEAT.sub("", s)
    m = _BARE_REMASTER.search(s) if "master" in s else None
    if m and m.start() > 0:  # "Song Remastered 2011", brackets lost on the way
        tags.add("remaster")
        s = s[: m.start()]
    return s, frozenset(tags) if tags else _NO_TAGS


# ---------------------------------------------------------------- keys


# Han, kana and Hangul: one character carries about a word's worth, so it
# counts twice in the keys (an edit distance of 2): "夜 night" is not a typo of "Night".
_WIDE = re.compile("([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")


def _compact(ws: list[str], folded: str) -> str:
    key = "".join(ws) or "".join(folded.split())  # nothing but punctuation: keep it rather than match everything
    return _WIDE.sub(r"\1\1", key) if not key.isascii() else key


def title_key(title: str) -> tuple[str, frozenset[str]]:
    """(title key, version tags): "Rich Girl (Remastered 2011)" -> ("richgirl", {"remaster"})."""
    folded = fold_text(title or "")
    base, tags = split_title(folded)
    return _compact(words(base), folded), tags


_TRAILING_THE = re.compile(r",\s*the\s*$")


def artist_key(name: str) -> str:
    """Artist key: "The Beatles", "Beatles, The", "Beatles feat. X" -> "beatles"."""
    folded = fold_text(name or "")
    s = _TRAILING_THE.sub("", _ARTIST_FEAT.sub("", folded))
    unbracketed = _BRACKETS.sub("", s)
    ws = words(unbracketed) or words(s)
    if len(ws) > 1 and ws[0] == "the":
        ws = ws[1:]
    return _compact(ws, folded)


def album_key(name: str) -> str:
    """Album key: folded, punctuation-free, without edition suffixes ("(Deluxe Edition)")."""
    folded = fold_text(name or "")
    base, _ = split_title(folded)
    return _compact(words(base), folded)


def tags_text(tags: frozenset[str]) -> str:
    """Tags as stored in the cache: sorted, space-separated ("" for none)."""
    return " ".join(sorted(tags))


def match_keys(title: str, artist: str, album_artist: str, album: str) -> tuple[str, str, str, str, str]:
    """The normalized columns of one track: (m_title, m_tags, m_artist, m_album_artist, m_album).

    The one function the sync calls for every track it writes; the matcher
    reads these columns instead of normalizing the library per call.
    """
    key, tags = title_key(title)
    return key, tags_text(tags), artist_key(artist), artist_key(album_artist), album_key(album)


class TrackKeys:
    """`match_keys` for a stream of tracks: artist and album keys (which repeat) are remembered,
    the last `memo.MEMO_SIZE` of each (a memo of every name grew with the library).

    One per sync writer; titles, nearly all distinct, are not remembered.
    """

    def __init__(self) -> None:
        self._artist = Memo(artist_key)
        self._album = Memo(album_key)

    def __call__(self, title: str, artist: str, album_artist: str, album: str) -> tuple[str, str, str, str, str]:
        key, tags = title_key(title)
        return key, tags_text(tags), self._artist(artist), self._artist(album_artist), self._album(album)


MATCH_COLUMNS = ("m_title", "m_tags", "m_artist", "m_album_artist", "m_album")
