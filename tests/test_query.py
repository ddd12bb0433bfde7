"""tracks.query / tracks.get / library.stats against a real SQLite cache.

Synthetic rows go through SlotWriter into slot b, which is then activated; every
query is compared with a plain-Python evaluation of the same params over the
same rows by the shared reference (tests/reference.py: `matches`, `sort_tracks`, `stats`).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from mediasaged import query
from mediasaged.query import InvalidParam, filters, plans
from mediasaged.query.plans import shuffled_prefix
from mediasaged.track import TRACK_SCHEMA, RawJSON
from mediasaged.store import SlotWriter, Store, slot_tables
from tests.reference import matches, sort_tracks, stats
from tests.rows import track_row
from mediasaged.timeutil import parse_iso

GENRES = ["Rock", "Pop", "Jazz", "Electronic", "Hip-Hop", "Classical", "Folk", "Metal", "Soul", "Ambient"]
WORDS = ["love", "night", "day", "heart", "time", "world", "dream", "fire", "rain", "star", "light", "blue"]
T0 = parse_iso("2020-01-01")


def make_rows() -> list[dict]:
    rng = random.Random(1234)
    rows = []
    for i in range(300):
        a = rng.randrange(25)
        rows.append(track_row(**{
            "rating_key": str(1000 + i),
            "title": " ".join(rng.choices(WORDS, k=rng.randint(1, 3))).title(),
            "artist": f"Artist {a}", "album_artist": f"Artist {a}" if rng.random() < 0.9 else "Various Artists",
            "album": f"Album {a}-{rng.randrange(3)}", "album_rating_key": f"a{a}",
            "duration_ms": None if rng.random() < 0.05 else rng.randrange(60_000, 600_000),
            "year": None if rng.random() < 0.1 else rng.randrange(1960, 2026),
            "genres": rng.sample(GENRES, rng.choice([0, 1, 1, 2, 2, 3, 4])),
            "user_rating": None if rng.random() < 0.4 else float(rng.randrange(0, 11)),
            "is_live": rng.random() < 0.1,
            "track_number": None if rng.random() < 0.05 else rng.randrange(1, 13),
            "disc_number": None if rng.random() < 0.1 else rng.randrange(1, 3),
            "view_count": rng.randrange(20), "last_viewed_at": None,
            "added_at": None if rng.random() < 0.05 else T0 + rng.randrange(0, 5 * 365 * 86400),
            "updated_at": T0 + rng.randrange(0, 6 * 365 * 86400),
        }))
    special = [
        ("Jóga", "Björk", "Björk", "Homogenic", 1997, ["Electronic", "art pop"], 9.0, False),
        ("Army of Me", "BJÖRK", "BJÖRK", "Post", 1995, ["electronic"], 8.0, False),
        ("Hyperballad (Live)", "björk", "Björk", "Live at Royal Opera House", 2001, ["Electronic", "Pop", "Live", "Art Pop"], None, True),
        ("Halo", "Beyoncé", "Beyoncé", "I Am... Sasha Fierce", 2008, ["R&B", "Pop", "Soul"], 7.0, False),
        ("Hoppípolla", "Sigur Rós", "Sigur Rós", "Takk...", 2005, ["Post-Rock", "Ambient", "Rock"], 10.0, False),
        ("戦場のメリークリスマス", "坂本龍一", "坂本龍一", "Merry Christmas Mr. Lawrence", 1983, ["Soundtrack"], 9.5, False),
        ("Murphy's Law", unicodedata.normalize("NFD", "Róisín Murphy"), "Róisín Murphy", "Róisín Machine", None, [], None, False),
        ("Straße", "Kraftwerk", "Kraftwerk", "Autobahn", 1974, ["KRAUTROCK", "Electronic"], 6.5, False),
    ]
    for j, (title, artist, album_artist, album, year, genres, rating, live) in enumerate(special):
        rows.append(track_row(**{
            "rating_key": f"s{j}", "title": title, "artist": artist, "album_artist": album_artist, "album": album,
            "album_rating_key": None, "duration_ms": 200_000 + j, "year": year, "genres": genres,
            "user_rating": rating, "is_live": live, "track_number": j + 1, "disc_number": 1, "view_count": 0,
            "last_viewed_at": T0 + j, "added_at": T0 + 86400 * j, "updated_at": T0 + 86400 * j,
        }))
    return rows


ROWS = make_rows()
for _i, _r in enumerate(ROWS):
    _r["_id"] = _i + 1  # SlotWriter numbers rows in write order


@pytest.fixture(scope="module")
def libdb(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("lib") / "cache.db"

    async def build() -> None:
        store = Store(db)
        await store.open()
        writer = SlotWriter(db, "b")
        for i in range(0, len(ROWS), 64):
            writer.write_tracks([{k: v for k, v in r.items() if k != "_id"} for r in ROWS[i:i + 64]])
        summary = writer.finish("a")
        writer.close()
        assert summary == {"added": len(ROWS), "updated": 0, "removed": 0, "track_count": len(ROWS)}
        await store.activate_slot("b", server_id="srv", server_name="Plex", synced_at=T0, duration_ms=5,
                                  track_count=len(ROWS), changed=True)
        await store.close()

    asyncio.run(build())
    return db


@pytest.fixture
async def store(libdb):
    s = Store(libdb, readers=2)
    await s.open()
    yield s
    await s.close()


# --------------------------------------------------------------------------- helpers

def keys_of(tracks) -> list[str]:
    return [t["rating_key"] for t in tracks]


async def q(store, **params) -> dict:
    return await store.read(query.tracks_query(params))


# --------------------------------------------------------------------------- filters

FILTER_CASES = [
    {"genres": ["rock"]},
    {"genres": ["ROCK", "jazz"]},
    {"genres": ["Rock", "Pop"], "genre_mode": "all"},
    {"genres": ["electronic", "pop", "live"], "genre_mode": "all"},
    {"genres": ["Jazz"], "genre_mode": "all"},
    {"exclude_genres": ["Rock", "pop"]},
    {"decades": ["1990s"]},
    {"decades": ["1970s", "1980s", "2010s"]},
    {"year_min": 1990},
    {"year_max": 1975},
    {"year_min": 1980, "year_max": 1989},
    {"min_rating": 7},
    {"min_rating": 0},
    {"min_rating": 6.5},
    {"exclude_live": True},
    {"exclude_live": False},
    {"artist": "björk"},
    {"artist": "BJÖRK"},
    {"artist": "Various Artists"},
    {"artist": "Róisín Murphy"},
    {"album": "homogenic"},
    {"album": "ALBUM 3-1"},
    {"text": "beyonce"},
    {"text": "sigur ros"},
    {"text": "SIGUR RÓS hopp"},
    {"text": "坂本"},
    {"text": "戦場"},
    {"text": "love ni"},
    {"text": "strasse"},
    {"text": "bjork live"},
    {"text": "roisin"},
    {"text": "zzz"},
    {"text": "   "},
    {"added_after": "2022-06-01T00:00:00Z"},
    {"updated_after": "2024-01-01"},
    {"updated_after": "2023-03-01T12:00:00+02:00"},
    # combinations
    {"genres": ["Rock", "Jazz"], "decades": ["1990s", "2000s"], "min_rating": 5, "exclude_live": True},
    {"genres": ["Pop"], "exclude_genres": ["Soul"], "year_min": 1970},
    {"genres": ["Rock", "Pop"], "genre_mode": "all", "min_rating": 1, "year_min": 1970},
    {"artist": "Artist 3", "min_rating": 3, "exclude_live": True},
    {"text": "love", "genres": ["rock", "pop"], "year_max": 2000},
    {"text": "love", "genres": ["rock"]},
    {"text": "night", "genres": ["rock", "pop"], "genre_mode": "all"},
    {"text": "day lo", "genres": ["jazz", "soul", "pop"], "decades": ["1990s", "2000s"], "min_rating": 2},
    {"text": "zzz", "genres": ["rock"]},
    {"genres": ["rock", "pop"], "exclude_genres": ["jazz"], "text": "love"},
    {"genres": ["rock", "pop"], "genre_mode": "all", "exclude_genres": ["jazz", "soul"]},
    {"genres": ["electronic"], "exclude_genres": ["pop"], "decades": ["1990s"], "min_rating": 3},
    {"exclude_genres": ["rock"], "decades": ["1980s"], "text": "a"},
    {"genres": ["Jazz"], "added_after": "2021-01-01", "exclude_live": True},
    # years listed one by one (a rating condition follows), and a range too wide for that
    {"decades": ["1990s"], "min_rating": 6},
    {"decades": ["1960s", "1970s", "2000s"], "min_rating": 7, "exclude_live": True},
    {"year_min": 1985, "year_max": 1999, "min_rating": 4},
    {"year_min": 1000, "year_max": 2025, "min_rating": 4},
    {"genres": ["Pop"], "year_min": 1970, "year_max": 1999, "min_rating": 0},
    {"year_min": 2005, "min_rating": 5},
    {"year_max": 1975, "min_rating": 3, "genres": ["rock", "jazz"]},
    {"year_min": 2100, "min_rating": 1},
    {"year_max": 1000, "min_rating": 1},
]


@pytest.mark.parametrize("params", FILTER_CASES, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
async def test_filter_matches_python(store, params):
    expected = sort_tracks([r for r in ROWS if matches(r, params)])
    got = await q(store, **params, limit=10000)
    assert got["total"] == len(expected)
    assert keys_of(got["tracks"]) == [r["rating_key"] for r in expected]
    assert got["generation"] == 1 and got["synced_at"] == "2020-01-01T00:00:00Z"


@pytest.mark.parametrize("small", [plans.PACKED_LIMIT, 3])
@pytest.mark.parametrize("params", FILTER_CASES + [{"exclude_genres": ["Pop"], "min_rating": 5}],
                         ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()))
async def test_small_pages_of_every_filter(store, monkeypatch, params, small):
    """Short pages take other plans (walking the sort index, the genre index's rank, ...)."""
    monkeypatch.setattr(plans, "PACKED_LIMIT", small)
    for sort, order in (("artist", "asc"), ("title", "desc")):
        expected = [r["rating_key"] for r in sort_tracks([r for r in ROWS if matches(r, params)], sort, order)]
        for limit, offset in ((5, 0), (7, 3), (1, len(expected) - 1)):
            got = await q(store, **params, sort=sort, order=order, limit=limit, offset=max(offset, 0))
            assert got["total"] == len(expected)
            assert keys_of(got["tracks"]) == expected[max(offset, 0):max(offset, 0) + limit]


@pytest.mark.parametrize("params", [{"decades": ["1990s"], "min_rating": 6},
                                    {"genres": ["rock", "jazz"], "decades": ["1990s", "2000s"], "min_rating": 6},
                                    {"year_min": 1980, "year_max": 1999, "min_rating": 6, "exclude_live": True},
                                    {"year_min": 1990, "min_rating": 6}])
async def test_years_with_a_minimum_rating_seek_each_years_rated_tracks(store, libdb, params):
    """Listed year by year, the years let SQLite seek the rated tracks of each year in the
    (year, user_rating, ...) indexes; as a range it would read every track of those years."""
    _, source, values = await store.read(lambda ctx: plans.ids_source(plans.plan(ctx, filters.parse_filters(params))))
    conn = sqlite3.connect(libdb)
    try:
        steps = conn.execute(f"EXPLAIN QUERY PLAN SELECT count(*) {source.format(**slot_tables('b'))}", values)
        assert "year=? AND user_rating>?" in " ".join(step[-1] for step in steps)
    finally:
        conn.close()


async def test_unicode_matching_examples(store):
    assert {t["title"] for t in (await q(store, artist="BJÖRK"))["tracks"]} == {"Jóga", "Army of Me", "Hyperballad (Live)"}
    assert keys_of((await q(store, text="beyonce"))["tracks"]) == ["s3"]
    assert keys_of((await q(store, text="sigur ros"))["tracks"]) == ["s4"]
    assert keys_of((await q(store, text="坂本"))["tracks"]) == ["s5"]
    assert keys_of((await q(store, artist="róisín murphy"))["tracks"]) == ["s6"]  # stored NFD, asked NFC
    assert keys_of((await q(store, text="STRASSE"))["tracks"]) == ["s7"]


@pytest.mark.parametrize("text", ['"love', 'AND', 'OR love', 'NEAR(love night)', 'title:love', '^love', 'love*',
                                  '-love', '(love', 'love"night', "a'b", 'x OR 1=1; --', '{title}'])
async def test_text_is_never_fts_syntax(store, text):
    expected = sort_tracks([r for r in ROWS if matches(r, {"text": text})])
    got = await q(store, text=text, limit=10000)
    assert keys_of(got["tracks"]) == [r["rating_key"] for r in expected]


def test_fts_query_quotes_every_word():
    assert filters.fts_query('Beyoncé "x" AC/DC') == '"beyoncé"* "x"* "ac"* "dc"*'
    assert filters.split_words("坂本龍一 — Merry") == ["坂本龍一", "merry"]


# --------------------------------------------------------------------------- sorting and paging

@pytest.mark.parametrize("sort", ["artist", "title", "album", "year", "duration", "rating", "added"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_sort_orders_with_nulls_last_and_stable_tiebreak(store, sort, order):
    got = await q(store, sort=sort, order=order, limit=10000)
    assert keys_of(got["tracks"]) == [r["rating_key"] for r in sort_tracks(ROWS, sort, order)]


async def test_nulls_last_in_both_orders(store):
    for order in ("asc", "desc"):
        years = [t["year"] for t in (await q(store, sort="year", order=order, limit=10000))["tracks"]]
        first_null = years.index(None)
        assert all(y is None for y in years[first_null:]) and all(y is not None for y in years[:first_null])


async def test_paging_walks_the_same_order(store):
    full = keys_of((await q(store, sort="rating", order="desc", limit=10000))["tracks"])
    pages = []
    for offset in range(0, len(full), 37):
        pages += keys_of((await q(store, sort="rating", order="desc", limit=37, offset=offset))["tracks"])
    assert pages == full


async def test_limit_zero_returns_only_total(store):
    got = await q(store, genres=["rock"], limit=0)
    assert got["tracks"] == [] and got["total"] == sum(matches(r, {"genres": ["rock"]}) for r in ROWS)
    got = await q(store, sort="random", limit=0)
    assert got == {"total": len(ROWS), "tracks": [], "generation": 1, "synced_at": "2020-01-01T00:00:00Z"}


async def test_default_limit_and_offset_past_the_end(store):
    assert len((await q(store))["tracks"]) == 100
    got = await q(store, offset=len(ROWS))
    assert got["tracks"] == [] and got["total"] == len(ROWS)


async def test_track_object_shape(store):
    (t,) = (await store.read(query.tracks_get({"rating_keys": ["s2"]})))["tracks"]
    assert t == {
        "rating_key": "s2", "title": "Hyperballad (Live)", "artist": "björk", "album_artist": "Björk",
        "album": "Live at Royal Opera House", "album_rating_key": None, "duration_ms": 200_002, "year": 2001,
        "genres": ["Art Pop", "Electronic", "Live", "Pop"], "user_rating": None, "is_live": True,
        "track_number": 3, "disc_number": 1, "view_count": 0, "last_viewed_at": "2020-01-01T00:00:02Z",
        "added_at": "2020-01-03T00:00:00Z", "updated_at": "2020-01-03T00:00:00Z",
    }
    assert set(t) == set(TRACK_SCHEMA["properties"])


async def test_json_tracks_equal_the_python_shape(store):
    """The daemon's SQLite-written track JSON is exactly row_to_track's objects."""
    keys = [r["rating_key"] for r in ROWS] + ["nope"]
    as_dicts = await store.read(query.tracks_get({"rating_keys": keys}))
    as_json = await store.read(query.tracks_get({"rating_keys": keys}, as_json=True))
    assert isinstance(as_json["tracks"], RawJSON)
    assert as_json["tracks"].value() == as_dicts["tracks"] and len(as_dicts["tracks"]) == len(ROWS)
    assert as_json["missing"] == as_dicts["missing"] == ["nope"]
    for params in ({"genres": ["pop"], "limit": 30}, {"sort": "random", "seed": 3, "limit": 7}, {"limit": 0},
                   {"text": "love", "sort": "title", "order": "desc"}, {"artist": "zzz"}):
        a = await store.read(query.tracks_query(params))
        b = await store.read(query.tracks_query(params, as_json=True))
        assert {**b, "tracks": b["tracks"].value()} == a


# --------------------------------------------------------------------------- random

async def test_random_is_reproducible_with_a_seed(store):
    a = await q(store, sort="random", seed=42, genres=["pop"], limit=20)
    b = await q(store, sort="random", seed=42, genres=["pop"], limit=20)
    c = await q(store, sort="random", seed=43, genres=["pop"], limit=20)
    assert keys_of(a["tracks"]) == keys_of(b["tracks"]) != keys_of(c["tracks"])
    assert a["total"] == sum(matches(r, {"genres": ["pop"]}) for r in ROWS)
    assert all(matches(r, {"genres": ["pop"]}) for r in ROWS if r["rating_key"] in keys_of(a["tracks"]))


@pytest.mark.parametrize("wanted", [{"decades": ["1990s"]}, {"genres": ["rock", "pop"], "text": "love"}])
async def test_random_pages_form_one_permutation_of_all_matches(store, wanted):
    params = {"sort": "random", "seed": 7, **wanted}
    expected = {r["rating_key"] for r in ROWS if matches(r, params)}
    pages = []
    for offset in range(0, len(expected) + 10, 10):
        pages += keys_of((await q(store, **params, limit=10, offset=offset))["tracks"])
    assert len(pages) == len(expected) and set(pages) == expected


async def test_random_without_seed_varies(store):
    runs = {tuple(keys_of((await q(store, sort="random", limit=50))["tracks"])) for _ in range(3)}
    assert len(runs) > 1


async def test_random_covers_every_match_uniformly(store):
    params = {"sort": "random", "artist": "Artist 5", "limit": 3}
    matched = [r["rating_key"] for r in ROWS if matches(r, params)]
    assert 5 <= len(matched) <= 30
    first = Counter()
    seen = Counter()
    seeds = 300
    for seed in range(seeds):
        got = keys_of((await q(store, **params, seed=seed))["tracks"])
        assert len(got) == 3 and len(set(got)) == 3
        first[got[0]] += 1
        seen.update(got)
    assert set(seen) == set(matched)
    mean = seeds / len(matched)
    assert all(0.4 * mean < first[k] < 1.8 * mean for k in matched), first


def test_matching_ids_of_the_whole_library_with_and_without_gaps(tmp_path):
    import sqlite3
    from mediasaged.store import ReadContext, State
    conn = sqlite3.connect(tmp_path / "ids.db")
    conn.execute("CREATE TABLE tracks_a (id INTEGER PRIMARY KEY)")

    def ctx(track_count):  # the snapshot's count comes from sync_state, as in the daemon
        return ReadContext(conn, State("a", 1, 1, None, None, None, track_count, None))

    assert list(plans.matching_ids(ctx(0), [])) == []
    conn.executemany("INSERT INTO tracks_a (id) VALUES (?)", [(i,) for i in range(3, 9)])
    assert plans.matching_ids(ctx(6), []) == range(3, 9)
    conn.execute("DELETE FROM tracks_a WHERE id = 5")
    assert sorted(map(int, plans.matching_ids(ctx(5), []))) == [3, 4, 6, 7, 8]


def test_shuffled_prefix_is_uniform_and_consistent():
    items = list(range(8))
    counts = Counter()
    for seed in range(8000):
        perm = shuffled_prefix(items, 8, random.Random(seed))
        assert sorted(perm) == items
        assert shuffled_prefix(items, 3, random.Random(seed)) == perm[:3]
        counts[(perm[0], perm[7])] += 1
    assert len(counts) == 56 and min(counts.values()) > 0.6 * 8000 / 56 and max(counts.values()) < 1.4 * 8000 / 56


# --------------------------------------------------------------------------- tracks.get and stats

async def test_tracks_get_found_missing_order_and_duplicates(store):
    got = await store.read(query.tracks_get({"rating_keys": ["s3", "nope", "1005", "s3", "", "1001"]}))
    assert keys_of(got["tracks"]) == ["s3", "1005", "1001"]
    assert got["missing"] == ["nope", ""]
    assert got["generation"] == 1
    assert (await store.read(query.tracks_get({"rating_keys": []})))["tracks"] == []


@pytest.mark.parametrize("params", [{}, {"genres": ["rock", "Pop"]}, {"decades": ["1990s"], "min_rating": 4},
                                    {"exclude_live": True, "text": "love"}, {"artist": "zzz"},
                                    {"genres": ["rock", "jazz"], "text": "love"},
                                    {"genres": ["rock"], "exclude_genres": ["pop"]}])
async def test_stats_equal_python_counts(store, params):
    rows = [r for r in ROWS if matches(r, params)]
    got = await store.read(query.library_stats(params))
    assert got == {**stats(rows), "generation": 1, "synced_at": "2020-01-01T00:00:00Z"}


async def test_whole_library_stats_follow_the_live_snapshot(tmp_path):
    """library.stats {} comes from the slot's stored rows, and filtered stats and tracks.query
    totals are remembered per snapshot: either way a new sync (slot flip) is seen at once."""
    db = tmp_path / "cache.db"
    store = Store(db, readers=2)
    await store.open()
    try:
        seen = []
        for n, (slot, live) in enumerate([("b", "a"), ("a", "b"), ("b", "a")]):
            rows = ROWS[:100] if n % 2 == 0 else ROWS[100:150]
            writer = SlotWriter(db, slot)
            writer.write_tracks([{k: v for k, v in r.items() if k != "_id"} for r in rows])
            writer.finish(live)
            writer.close()
            await store.activate_slot(slot, server_id="srv", server_name="Plex", synced_at=T0 + n, duration_ms=5,
                                      track_count=len(rows), changed=True)
            first = await store.read(query.library_stats({}))
            first["genres"].clear()  # callers may mutate what they get; the memo is not affected
            again = await store.read(query.library_stats({}))
            assert again["track_count"] == len(rows) and again["genres"]
            assert again == await store.read(query.library_stats({"limit": 5}))
            seen.append(again)
            some = {"genres": ["rock", "Pop"], "min_rating": 4}
            computed = await store.read(query.library_stats(some))
            computed["genres"].clear()  # callers may mutate what they get; the memo is not affected
            remembered = await store.read(query.library_stats({**some, "limit": 5}))
            assert remembered == {**stats([r for r in rows if matches(r, some)]),
                                  "generation": (await store.state()).generation, "synced_at": remembered["synced_at"]}
            for wanted in ({"text": "love"}, {"genres": ["rock"]}, {"decades": ["1990s"], "min_rating": 4}):
                # the total is counted once a snapshot and is the same for every page
                expected = [r["rating_key"] for r in sort_tracks([r for r in rows if matches(r, wanted)])]
                for offset in (0, 5, 0):
                    page = await q(store, **wanted, limit=5, offset=offset)
                    assert page["total"] == len(expected)
                    assert keys_of(page["tracks"]) == expected[offset:offset + 5]
                # a change written in place is a new snapshot too
                state = await store.state()
                await store.apply_changes(slot=slot, generation=state.generation, rows=[], deleted=[expected[0]],
                                          albums={}, synced_at=T0 + n)
                rows = [r for r in rows if r["rating_key"] != expected[0]]
                assert (await q(store, **wanted, limit=5))["total"] == len(expected) - 1
        assert seen[0] == {**seen[2], "generation": seen[0]["generation"], "synced_at": seen[0]["synced_at"]}
    finally:
        await store.close()


# --------------------------------------------------------------------------- validation

BAD_QUERY = [
    ({"limit": -1}, "limit"), ({"limit": 10001}, "limit"), ({"limit": True}, "limit"), ({"limit": "5"}, "limit"),
    ({"limit": 2.5}, "limit"), ({"offset": -1}, "offset"), ({"offset": False}, "offset"),
    ({"decades": ["199x"]}, "decades"), ({"decades": ["90s"]}, "decades"), ({"decades": "1990s"}, "decades"),
    ({"decades": [1990]}, "decades"), ({"sort": "nope"}, "sort"), ({"sort": 1}, "sort"),
    ({"order": "up"}, "order"), ({"genre_mode": "some"}, "genre_mode"), ({"genres": "rock"}, "genres"),
    ({"genres": [1]}, "genres"), ({"exclude_genres": [None]}, "exclude_genres"),
    ({"min_rating": "x"}, "min_rating"), ({"min_rating": True}, "min_rating"), ({"min_rating": 11}, "min_rating"),
    ({"min_rating": float("nan")}, "min_rating"), ({"exclude_live": 1}, "exclude_live"),
    ({"exclude_live": "true"}, "exclude_live"), ({"year_min": "1990"}, "year_min"), ({"year_min": True}, "year_min"),
    ({"year_max": 1.5}, "year_max"), ({"year_min": 2000, "year_max": 1990}, "year_max"),
    ({"artist": 5}, "artist"), ({"album": ["x"]}, "album"), ({"text": 3}, "text"), ({"text": "!!! ..."}, "text"),
    ({"text": "x" * 1001}, "text"), ({"added_after": "yesterday"}, "added_after"),
    ({"updated_after": 1700000000}, "updated_after"), ({"seed": "7"}, "seed"), ({"seed": True}, "seed"),
    ({"bogus": 1}, "bogus"), ({"rating_keys": ["1"]}, "rating_keys"),
]


@pytest.mark.parametrize("params,param", BAD_QUERY, ids=[p for _, p in BAD_QUERY])
def test_invalid_query_params_name_the_param(params, param):
    for fn in (query.tracks_query, query.library_stats):
        with pytest.raises(InvalidParam) as exc:
            fn(params)
        assert exc.value.param == param
        assert str(exc.value).startswith(f"{param}: ")


def test_invalid_param_message():
    with pytest.raises(InvalidParam) as exc:
        query.tracks_query({"limit": -1})
    assert str(exc.value) == "limit: must be an integer between 0 and 10000"


@pytest.mark.parametrize("params,param", [
    ({}, "rating_keys"), ({"rating_keys": "1"}, "rating_keys"), ({"rating_keys": [1]}, "rating_keys"),
    ({"rating_keys": ["1"] * 10001}, "rating_keys"), ({"rating_keys": ["1"], "x": 1}, "x"),
])
def test_invalid_get_params(params, param):
    with pytest.raises(InvalidParam) as exc:
        query.tracks_get(params)
    assert exc.value.param == param


def test_params_must_be_an_object_and_null_means_absent():
    with pytest.raises(InvalidParam) as exc:
        query.tracks_query(["x"])
    assert exc.value.param == "params"
    query.tracks_query(None)
    query.tracks_query({"artist": None, "limit": None, "genres": None})


def test_schemas_list_every_param():
    assert set(query.QUERY_PARAMS.schema["properties"]) == {
        "genres", "genre_mode", "exclude_genres", "decades", "year_min", "year_max", "min_rating", "exclude_live",
        "artist", "album", "text", "added_after", "updated_after", "sort", "order", "seed", "limit", "offset"}
    assert set(query.GET_PARAMS.schema["properties"]) == {"rating_keys"}
    assert query.QUERY_PARAMS.schema["additionalProperties"] is False
