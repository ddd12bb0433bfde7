"""tracks.match's pure parts: the normalized keys, the scorer, the client's reference parsing."""

from __future__ import annotations

import pytest

from mediasaged.match.normalize import artist_key, match_keys, title_key
import random

from mediasaged.match.lookup import _settled
from mediasaged.match.score import Reference, ceiling, score_rows
from mediasagectl.matching import parse_reference


@pytest.mark.parametrize("a,b", [
    ("Beyoncé", "Beyonce"), ("Sigur Rós", "SIGUR ROS"), ("Røyksopp", "Royksopp"), ("AC/DC", "ACDC"),
    ("AC/DC", "AC DC"), ("Guns N' Roses", "Guns N Roses"), ("Guns N' Roses", "Guns and Roses"),
    ("Hall & Oates", "Hall and Oates"), ("Hall & Oates", "Hall + Oates"), ("The Beatles", "Beatles"),
    ("Beatles, The", "The Beatles"), ("Beyoncé feat. Jay-Z", "Beyoncé"), ("Daft Punk ft. X", "Daft Punk"),
    ("ＡＢＣ", "ABC"), ("Ke$ha", "Kesha"), ("BTS (방탄소년단)", "BTS"),
])
def test_artist_spellings_share_a_key(a, b):
    assert artist_key(a) == artist_key(b)


@pytest.mark.parametrize("title,key,tags", [
    ("Rich Girl (Remastered 2011)", "richgirl", {"remaster"}),
    ("Rich Girl - 2009 Remaster", "richgirl", {"remaster"}),
    ("Song (Radio Edit)", "song", {"edit"}),
    ("Song (Album Version)", "song", {"version"}),
    ("Song [Explicit]", "song", {"explicit"}),
    ("Song (Mono)", "song", {"mono"}),
    ("Song (Live at Wembley 1986)", "song", {"live"}),
    ("Song - Live at Wembley - 2009 Remaster", "song", {"live", "remaster"}),
    ("Song (feat. X) [Explicit]", "song", {"explicit"}),
    ("Song ft. Jay-Z", "song", set()),
    ("Song featuring Jay-Z", "song", set()),
    ("Song (with Dua Lipa)", "song", set()),
    ("Dancing with Myself", "dancingwithmyself", set()),
    ("(I Can't Get No) Satisfaction", "icantgetnosatisfaction", set()),
    ("Part 1 - The Beginning", "part1thebeginning", set()),
])
def test_title_keys_drop_credits_and_versions_into_tags(title, key, tags):
    assert title_key(title) == (key, frozenset(tags))


def test_cjk_is_kept_and_weighs_double():
    assert title_key("東京")[0] == "東東京京"
    assert artist_key("Кино") == "кино"  # Cyrillic: not romanized either


def test_match_keys_are_the_stored_columns():
    assert match_keys("Let It Be (Live)", "The Beatles", "The Beatles", "Let It Be (Deluxe Edition)") == (
        "letitbe", "live", "beatles", "beatles", "letitbe")


def _row(i, title, artist, album="", live=False):
    key, tags, a, aa, al = match_keys(title, artist, artist, album)
    return (i, key, tags, a, aa, al, live)


def test_version_preference_both_ways_and_numbers_are_no_typos():
    rows = [_row(1, "Let It Be", "The Beatles"), _row(2, "Let It Be", "The Beatles", "Live at the BBC", True)]
    assert score_rows(Reference.of(0, "Let It Be", "Beatles"), rows, 85)[0].id == 1
    assert score_rows(Reference.of(0, "Let It Be (Live)", "Beatles"), rows, 85)[0].id == 2
    only_live = score_rows(Reference.of(0, "Let It Be", "Beatles"), rows[1:], 85)
    assert only_live[0].id == 2 and only_live[0].score == 100  # a version the library has once: ignored
    assert score_rows(Reference.of(0, "Song 2", "Blur"), [_row(3, "Song", "Blur")], 85) == []


def test_no_track_without_both_exact_keys_scores_above_the_ceiling():
    """The exact-keys shortcut of `lookup.find` relies on it: only exact keys can outrank ``ceiling``."""
    rnd = random.Random(5)
    letters = "abcdefgh"
    for _ in range(3000):
        title = "".join(rnd.choice(letters) for _ in range(rnd.randint(1, 12)))
        title += rnd.choice(["", "", " (Live)", " live", " remaster", " Remix"])
        artist = rnd.choice(["", "".join(rnd.choice(letters) for _ in range(rnd.randint(1, 10)))])
        ref = Reference.of(0, title, artist or None)
        rows = []
        for i in range(20):  # one or two edits away, a letter more or less, or tagged
            t, a = ref.title, ref.artist or "x"
            for _ in range(rnd.randint(1, 2)):
                if rnd.random() < 0.5:
                    j = rnd.randint(0, len(t))
                    t = t[:j] + rnd.choice(letters)[:rnd.randint(0, 1)] + t[j + rnd.randint(0, 1):]
                else:
                    j = rnd.randint(0, len(a))
                    a = a[:j] + rnd.choice(letters)[:rnd.randint(0, 1)] + a[j + rnd.randint(0, 1):]
            tags = rnd.choice(["", "live", "remaster", "remix"])
            if rnd.random() < 0.2 and ref.title.endswith("live"):
                t, tags = ref.title[:-4], "live"
            exact = t == ref.title and (a == ref.artist or not ref.artist)
            if not exact and t and a:
                rows.append((i, t, tags, a, a, "", False))
        for scored in score_rows(ref, rows, 0):
            assert scored.score <= ceiling(ref), (title, artist, scored)


def test_exact_keys_settle_a_reference_only_when_nothing_else_can_rank_above():
    short = Reference.of(0, "Let It Be (Live)", "Beatles")
    studio = _row(1, "Let It Be", "The Beatles")  # exact keys, but not the version asked: 3 points of rank
    assert [s.id for s in _settled(short, [studio], 70)] == [1]  # nothing else can score over 97
    long = Reference.of(0, "Let It Be Let It Be Let It Be Let It Be (Live)", "Beatles")
    studio = _row(1, "Let It Be Let It Be Let It Be Let It Be", "The Beatles")
    assert _settled(long, [studio], 70) is None  # a live take with one typo would (98.1 - 0 > 100 - 3)
    live = _row(2, "Let It Be Let It Be Let It Be Let It Bee (Live)", "The Beatles")
    assert score_rows(long, [studio, live], 70)[0].id == 2
    assert [s.id for s in _settled(long, [_row(3, "Let It Be Let It Be Let It Be Let It Be (Live)", "Beatles")],
                                   70)] == [3]


@pytest.mark.parametrize("text,ref", [
    ("Hall & Oates - Rich Girl", {"artist": "Hall & Oates", "title": "Rich Girl"}),
    ("Hall & Oates – Rich Girl (Remastered)", {"artist": "Hall & Oates", "title": "Rich Girl (Remastered)"}),
    ("Sigur Rós — Hoppípolla", {"artist": "Sigur Rós", "title": "Hoppípolla"}),
    ("Beatles - Let It Be - 2009 Remaster", {"artist": "Beatles", "title": "Let It Be - 2009 Remaster"}),
    ("Blink-182 - Dammit", {"artist": "Blink-182", "title": "Dammit"}),
    ("Hoppípolla", {"title": "Hoppípolla"}),
    ("   ", None),
])
def test_cli_reference_lines(text, ref):
    assert parse_reference(text) == ref
