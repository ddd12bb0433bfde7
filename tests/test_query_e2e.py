"""Queries over the socket against a synced emulator library, checked by plain Python.

Each filter's result is compared with the shared reference (tests/reference.py)
evaluating the same filter over the emulator's own library (its ground truth),
including the non-ASCII cases; stats are compared with the reference's counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from tests.reference import fold, matches, matching
from tests.reference import stats as reference_stats
from tests.support import RpcFailure
from tests.mirror import expected_library


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def python_filter(tracks: dict, f: dict) -> set[str]:
    """The rating keys the reference (tests/reference.py) says match the filters ``f``."""
    return {k for k, t in tracks.items() if matches(t, f)}


# Every test here only reads: they share one synced daemon (conftest.py).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def library(module_synced_daemon, module_emulator):
    return module_synced_daemon, expected_library(module_emulator)


async def query_keys(daemon, **params) -> set[str]:
    result = await daemon.call("tracks.query", limit=10000, **params)
    assert result["total"] == len(result["tracks"])
    return {t["rating_key"] for t in result["tracks"]}


def pick(tracks: dict):
    """Values that exist in the generated library, for realistic filters."""
    genre_counts = Counter(g for t in tracks.values() for g in t["genres"])
    common = [g for g, _ in genre_counts.most_common(4)]
    added = sorted(t["added_at"] for t in tracks.values())
    return common, added[len(added) // 2]


FILTERS = [
    {"genres": "COMMON2"},
    {"genres": "COMMON2", "genre_mode": "all"},
    {"exclude_genres": "COMMON1"},
    {"decades": ["1990s", "2000s"]},
    {"decades": ["1970s"]},
    {"year_min": 1985, "year_max": 1999},
    {"min_rating": 7},
    {"min_rating": 0},
    {"exclude_live": True},
    {"artist": "BJÖRK"},
    {"artist": "sigur rós"},
    {"artist": "Various Artists"},
    {"album": "ALBUM_OF_FIRST"},
    {"text": "beyonce"},
    {"text": "sigur ros"},
    {"text": "坂本"},
    {"text": "love"},
    {"text": "LIVE wemb"},
    {"added_after": "MEDIAN"},
    {"genres": "COMMON2", "decades": ["1990s", "2000s"], "min_rating": 6, "exclude_live": True},
    {"text": "love", "exclude_genres": "COMMON1", "year_min": 1980},
    {"artist": "björk", "exclude_live": True, "min_rating": 2},
]


@pytest.mark.parametrize("template", FILTERS, ids=lambda f: ",".join(f))
async def test_filter_matches_python(library, template):
    daemon, tracks = library
    common, median_added = pick(tracks)
    first = tracks[min(tracks, key=int)]
    f = dict(template)
    if f.get("genres") == "COMMON2":
        f["genres"] = [common[0].upper(), common[1]]
    if f.get("exclude_genres") == "COMMON1":
        f["exclude_genres"] = [common[2]]
    if f.get("album") == "ALBUM_OF_FIRST":
        f["album"] = first["album"].upper()
    if f.get("added_after") == "MEDIAN":
        f["added_after"] = iso(median_added)
    expected = python_filter(tracks, f)
    got = await query_keys(daemon, **f)
    assert got == expected, f"{len(got)} vs {len(expected)} for {f}"


async def test_non_ascii_cases_are_not_empty(library):
    daemon, _ = library
    for params in ({"artist": "BJÖRK"}, {"text": "beyonce"}, {"text": "sigur ros"}, {"text": "坂本"}):
        assert await query_keys(daemon, **params), params


@pytest.mark.parametrize("sort, key", [
    ("title", lambda t: fold(t["title"])),
    ("year", lambda t: t["year"]),
    ("duration", lambda t: t["duration_ms"]),
    ("rating", lambda t: t["user_rating"]),
    ("added", lambda t: t["added_at"]),
])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sorting_is_ordered_stable_and_nulls_last(library, sort, key, order):
    daemon, tracks = library
    result = await daemon.call("tracks.query", sort=sort, order=order, limit=10000)
    values = [key(tracks[t["rating_key"]]) for t in result["tracks"]]
    present = [v for v in values if v is not None]
    assert values[:len(present)] == present, "NULLs must come last"
    assert present == sorted(present, reverse=(order == "desc"))
    # Stable: pages of the same query concatenate to the whole order.
    pages = []
    for offset in range(0, len(values), 400):
        page = await daemon.call("tracks.query", sort=sort, order=order, limit=400, offset=offset)
        pages += [t["rating_key"] for t in page["tracks"]]
    assert pages == [t["rating_key"] for t in result["tracks"]]


async def test_default_sort_is_artist_album_disc_track(library):
    daemon, tracks = library
    result = await daemon.call("tracks.query", limit=10000)
    def nulls_last(v):
        return (v is None, v or 0)

    keys = [(fold(t["artist"]), fold(t["album"]), nulls_last(t["disc_number"]), nulls_last(t["track_number"]))
            for t in result["tracks"]]
    assert keys == sorted(keys)


async def test_random_is_reproducible_with_seed_and_covers_the_matches(library):
    daemon, tracks = library
    a = await daemon.call("tracks.query", sort="random", seed=42, limit=50)
    b = await daemon.call("tracks.query", sort="random", seed=42, limit=50)
    c = await daemon.call("tracks.query", sort="random", seed=43, limit=50)
    assert [t["rating_key"] for t in a["tracks"]] == [t["rating_key"] for t in b["tracks"]]
    assert [t["rating_key"] for t in a["tracks"]] != [t["rating_key"] for t in c["tracks"]]
    assert a["total"] == len(tracks) and len({t["rating_key"] for t in a["tracks"]}) == 50
    whole = await daemon.call("tracks.query", sort="random", seed=7, limit=10000)
    assert {t["rating_key"] for t in whole["tracks"]} == set(tracks)


async def test_limit_zero_returns_only_the_total(library):
    daemon, tracks = library
    result = await daemon.call("tracks.query", limit=0, exclude_live=True)
    assert result["tracks"] == []
    assert result["total"] == sum(not t["is_live"] for t in tracks.values())
    assert result["generation"] == 1 and result["synced_at"].endswith("Z")


async def test_tracks_get_found_and_missing(library):
    daemon, tracks = library
    keys = sorted(tracks, key=int)[:3]
    result = await daemon.call("tracks.get", rating_keys=keys + ["999999999"])
    assert [t["rating_key"] for t in result["tracks"]] == keys
    assert result["missing"] == ["999999999"]
    assert result["tracks"][0]["genres"] == tracks[keys[0]]["genres"]
    assert result["generation"] == 1


@pytest.mark.parametrize("filters", [{}, {"exclude_live": True, "decades": ["1990s"]}, {"text": "love"}])
async def test_stats_equal_python_counts(library, filters):
    daemon, tracks = library
    stats = await daemon.call("library.stats", **filters)
    expected = reference_stats(matching(tracks.values(), filters))
    for field in ("track_count", "album_count", "total_duration_ms", "live_count", "decades"):
        assert stats[field] == expected[field], field
    assert sorted(stats["genres"], key=lambda g: g["name"]) == sorted(expected["genres"], key=lambda g: g["name"])
    counts = [(-g["count"], fold(g["name"])) for g in stats["genres"]]
    assert counts == sorted(counts), "count descending, then name (case-insensitive)"
    assert stats["artist_count"] == expected["artist_count"]
    assert stats["generation"] == 1


@pytest.mark.parametrize("method, params, param", [
    ("tracks.query", {"limit": -1}, "limit"),
    ("tracks.query", {"limit": 10001}, "limit"),
    ("tracks.query", {"limit": True}, "limit"),
    ("tracks.query", {"decades": ["199x"]}, "decades"),
    ("tracks.query", {"sort": "nope"}, "sort"),
    ("tracks.query", {"order": "up"}, "order"),
    ("tracks.query", {"min_rating": "x"}, "min_rating"),
    ("tracks.query", {"genres": "Rock"}, "genres"),
    ("tracks.query", {"genre_mode": "some"}, "genre_mode"),
    ("tracks.query", {"added_after": "yesterday"}, "added_after"),
    ("tracks.query", {"colour": "blue"}, "colour"),
    ("tracks.query", {"offset": -5}, "offset"),
    ("tracks.get", {"rating_keys": [1, 2]}, "rating_keys"),
    ("tracks.get", {}, "rating_keys"),
    ("library.stats", {"limit": -5}, "limit"),
    ("library.stats", {"bogus": 5}, "bogus"),
    ("library.stats", {"year_min": "1990"}, "year_min"),
])
async def test_invalid_query_params_name_the_param(library, method, params, param):
    daemon, _ = library
    with pytest.raises(RpcFailure) as failure:
        await daemon.call(method, **params)
    assert failure.value.code == -32602
    assert param in failure.value.error["message"]
    assert (await daemon.call("tracks.query", limit=0))["total"] > 0  # still serving


async def test_fts_syntax_in_text_is_just_text(library):
    daemon, tracks = library
    for text in ("love*", "title:love", "(love", "-love", "^love", '"love', "love OR night"):
        expected = len(python_filter(tracks, {"text": text}))
        assert (await daemon.call("tracks.query", text=text, limit=0))["total"] == expected, text
    for text in ("AND OR NOT", "NEAR(a b)"):
        assert (await daemon.call("tracks.query", text=text, limit=0))["total"] >= 0
    with pytest.raises(RpcFailure) as failure:  # nothing to search for
        await daemon.call("tracks.query", text='" * "')
    assert failure.value.code == -32602 and "text" in failure.value.error["message"]
