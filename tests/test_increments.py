"""Incremental syncs in place (store/increments.py): the live slot after a change set must
answer every query exactly as a slot rebuilt from scratch with the same tracks."""

from __future__ import annotations

import random
import sqlite3

import pytest

from mediasaged import query
from mediasaged.store import InPlaceWriter, NoRoom, SlotWriter, Store, StoreError, inactive_slot
from tests.rows import track_row

pytestmark = pytest.mark.timeout(60)

GENRES = ["Rock", "Pop", "Jazz", "Electronic", "Folk", "Soul", "rock"]
WORDS = ["love", "night", "day", "heart", "fire", "rain", "Björk", "straße"]


def random_row(rng: random.Random, key: str) -> dict:
    artist = f"Artist {rng.randrange(12)}"
    album = rng.randrange(20)
    return track_row(
        key, title=" ".join(rng.choices(WORDS, k=rng.randint(1, 3))),
        artist=artist, album_artist=artist if rng.random() < 0.8 else "Various",
        album=f"Album {album}", album_rating_key=album_rating_key(album),
        duration_ms=rng.choice([None, rng.randrange(60_000, 400_000)]),
        year=rng.choice([None, rng.randrange(1960, 2025)]),
        genres=rng.sample(GENRES, rng.choice([0, 1, 1, 2, 3])),
        user_rating=rng.choice([None, float(rng.randrange(0, 11))]), is_live=rng.random() < 0.1,
        track_number=rng.choice([None, rng.randrange(1, 15)]), disc_number=rng.choice([None, 1, 1, 2]),
        view_count=rng.randrange(5), added_at=1_600_000_000 + rng.randrange(10**6),
        updated_at=1_600_000_000 + rng.randrange(10**6))


def album_rating_key(album: int) -> str | None:
    return f"al{album}" if album % 5 else None  # some albums without one, as old Plex sends


async def full_sync(store: Store, rows: list[dict]) -> None:
    state = await disk_state(store)
    slot = inactive_slot(state)
    writer = SlotWriter(store.path, slot)
    try:
        writer.write_tracks(rows)
        summary = writer.finish(state.live_slot)
    finally:
        writer.close()
    await store.activate_slot(slot, server_id="srv", server_name="Plex", synced_at=1_800_000_000,
                              duration_ms=1, track_count=summary["track_count"], changed=True)


async def disk_state(store: Store):
    """The sync state as a reader sees it (the store's own copy follows only its own writes)."""
    return await store.read(lambda ctx: ctx.state, require_synced=False)


async def apply(store: Store, rows: list[dict], deleted: list[str]) -> dict:
    state = await disk_state(store)
    with InPlaceWriter(store.path, state.live_slot, state.generation) as writer:
        return writer.apply(rows, deleted, synced_at=1_900_000_000)


QUERIES = [
    {}, {"genres": ["rock"]}, {"genres": ["rock", "jazz"], "limit": 7, "offset": 3},
    {"genres": ["pop", "soul"], "genre_mode": "all"}, {"exclude_genres": ["pop"]},
    {"genres": ["rock"], "decades": ["1990s", "2000s"], "min_rating": 4, "exclude_live": True, "limit": 50},
    {"text": "love"}, {"text": "bjork nig"}, {"artist": "artist 3"}, {"album": "ALBUM 7"},
    {"sort": "title"}, {"sort": "year", "order": "desc"}, {"sort": "added"},
    {"genres": ["electronic"], "sort": "rating"},
]


async def answers(store: Store) -> list:
    out = []
    for params in QUERIES:
        out.append(await store.read(query.tracks_query({"limit": 10000, **params})))
        out.append(await store.read(query.library_stats({k: v for k, v in params.items()
                                                          if k not in ("limit", "offset", "sort", "seed", "order")})))
    for a in out:
        a.pop("generation"), a.pop("synced_at")
    return out


@pytest.fixture
async def stores(tmp_path):
    made = []

    async def make(name: str) -> Store:
        s = Store(tmp_path / name / "cache.db", readers=1)
        await s.open()
        made.append(s)
        return s
    yield make
    for s in made:
        await s.close()


@pytest.mark.parametrize("seed", range(6))
async def test_a_change_set_in_place_answers_like_a_rebuild(stores, seed):
    rng = random.Random(seed)
    library = {str(k): random_row(rng, str(k)) for k in range(300)}
    live = await stores("live")
    await full_sync(live, list(library.values()))
    for round_ in range(3):
        keys = list(library)
        rng.shuffle(keys)
        deleted, to_edit, to_resend = keys[:15], keys[15:55], keys[55:65]
        edited = {}
        for k in to_edit:
            row = dict(library[k])
            for field in rng.sample(["title", "artist", "album", "genres", "year", "user_rating",
                                     "disc_number", "track_number", "is_live"], rng.randint(1, 3)):
                row[field] = random_row(rng, k)[field]
                if field == "album":
                    row["album_rating_key"] = album_rating_key(int(row["album"].split()[-1]))
            edited[k] = row
        added = {f"n{round_}-{i}": random_row(rng, f"n{round_}-{i}") for i in range(25)}
        unchanged = {k: library[k] for k in to_resend}  # re-sent as they are
        before = await disk_state(live)
        summary = await apply(live, [*edited.values(), *added.values(), *unchanged.values()], deleted)
        for k in deleted:
            library.pop(k, None)
        library.update(edited)
        library.update(added)
        assert summary["added"] == len(added)
        assert summary["removed"] == len(deleted)
        assert 0 < summary["updated"] <= len(edited)
        state = await disk_state(live)
        assert state.generation == before.generation + 1 and state.track_count == len(library)
        assert state.live_slot == before.live_slot  # in place: no flip

        # The oracle writes the same tracks in the live slot's id order, so that ties broken
        # by internal id (and the seeded shuffle) come out the same.
        order = await live.read(lambda ctx: [r[0] for r in ctx.run("SELECT rating_key FROM {tracks} ORDER BY id")])
        assert sorted(order) == sorted(library)
        oracle = await stores(f"oracle{round_}")
        await full_sync(oracle, [library[k] for k in order])
        assert await answers(live) == await answers(oracle)
        shuffled = await live.read(query.tracks_query({"sort": "random", "seed": round_, "limit": 50}))
        assert len({t["rating_key"] for t in shuffled["tracks"]} & set(library)) == 50
        await check_ranks(live)
        # the deletion check's per-album counts (read from the stats) are the tracks' own
        counted = dict(await live.read(lambda ctx: ctx.run(
            "SELECT album_rating_key, count(*) FROM {tracks} GROUP BY album_rating_key")))
        with InPlaceWriter(live.path, state.live_slot, state.generation) as writer:
            assert writer.live.album_counts() == counted and None in counted


async def check_ranks(store: Store) -> None:
    """Every track has one rank, ranks follow the default order strictly, and its genre rows
    and its full-text entry carry it."""
    def read(ctx):
        order = ctx.run("SELECT t.id, r.rank FROM {tracks} t LEFT JOIN {ranks} r ON r.track_id = t.id "
                        "ORDER BY t.artist_key, t.album_key, t.disc_number IS NULL, t.disc_number, "
                        "t.track_number IS NULL, t.track_number, t.id")
        genre_ranks = ctx.run("SELECT g.track_id, g.artist_rank, r.rank FROM {genres} g "
                              "LEFT JOIN {ranks} r ON r.track_id = g.track_id")
        return order, genre_ranks
    order, genre_ranks = await store.read(read)
    seq = [rank for _, rank in order]
    assert None not in seq and seq == sorted(seq) and len(set(seq)) == len(seq)
    assert all(a == b for _, a, b in genre_ranks)


async def test_nothing_changed_keeps_the_generation_but_records_the_sync(stores):
    rng = random.Random(1)
    rows = [random_row(rng, str(k)) for k in range(50)]
    store = await stores("s")
    await full_sync(store, rows)
    before = await disk_state(store)
    summary = await apply(store, rows[:10], [])
    after = await disk_state(store)
    assert summary == {"added": 0, "updated": 0, "removed": 0, "track_count": 50,
                       "generation": before.generation}
    assert after.generation == before.generation and after.synced_at == 1_900_000_000


async def test_a_change_set_is_refused_when_the_library_moved_on(stores):
    rng = random.Random(2)
    store = await stores("s")
    await full_sync(store, [random_row(rng, str(k)) for k in range(20)])
    state = await disk_state(store)
    with InPlaceWriter(store.path, state.live_slot, state.generation) as writer:
        await full_sync(store, [random_row(rng, str(k)) for k in range(20)])  # a full sync flipped meanwhile
        with pytest.raises(StoreError, match="changed while this sync ran"):
            writer.apply([random_row(rng, "x")], [], synced_at=1)
    assert (await disk_state(store)).track_count == 20


async def test_no_room_between_ranks_asks_for_a_rebuild_and_changes_nothing(stores):
    store = await stores("s")
    base = [track_row(str(k), artist="A", album="X", album_rating_key="x", track_number=k, genres=["Rock"])
            for k in (1, 2)]
    await full_sync(store, base)
    # Squeeze tracks between 1 and 2 (ranks RANK_LIMIT/3 apart) until the gap is used up: ~30 halvings.
    with pytest.raises(NoRoom):
        for i in range(64):
            await apply(store, [track_row(f"s{i}", artist="A", album="X", album_rating_key="x", track_number=1,
                                          genres=["Rock"])], [])
    state = await disk_state(store)
    count = await store.read(lambda ctx: ctx.run("SELECT count(*) FROM {tracks}")[0][0])
    assert count == state.track_count == 2 + i  # the refused change set left nothing behind
    await check_ranks(store)


async def test_an_album_landing_in_one_gap_is_spread_across_it(stores):
    rng = random.Random(4)
    store = await stores("s")
    await full_sync(store, [random_row(rng, str(k)) for k in range(100)])
    album = [track_row(f"new{i}", artist="Artist 5", album="Album 5b", album_rating_key="al5b", track_number=i,
                       genres=["Rock", "Pop"]) for i in range(1, 400)]
    await apply(store, album, [])
    await check_ranks(store)


async def test_a_reader_keeps_its_snapshot_while_a_change_set_commits(stores):
    rng = random.Random(3)
    store = await stores("s")
    await full_sync(store, [random_row(rng, str(k)) for k in range(100)])
    reader = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None)
    try:
        reader.execute("BEGIN")
        slot = reader.execute("SELECT live_slot FROM sync_state").fetchone()[0]
        n0 = reader.execute(f"SELECT count(*) FROM tracks_{slot}").fetchone()[0]
        await apply(store, [random_row(rng, f"new{i}") for i in range(10)], ["1", "2"])
        assert reader.execute(f"SELECT count(*) FROM tracks_{slot}").fetchone()[0] == n0
        reader.execute("COMMIT")
        assert reader.execute(f"SELECT count(*) FROM tracks_{slot}").fetchone()[0] == n0 + 8
    finally:
        reader.close()


async def test_full_text_entries_of_a_change_set_go_in_as_one_segment(stores):
    """FTS5 writes its pending entries out as a new segment whenever a rowid comes lower than the
    one before: the change set's entries go in rank order, so however scattered its tracks they
    make one small segment (in their own order, one per entry: ~2 ms each at 100k tracks, and
    as much again at the commit)."""
    rng = random.Random(7)
    library = {str(k): random_row(rng, str(k)) for k in range(400)}
    live = await stores("live")
    await full_sync(live, list(library.values()))
    slot = (await disk_state(live)).live_slot

    def fts_segments() -> int:
        """The index's segment count: the second varint after the 4-byte cookie of its structure
        record (id 10 of the %_data table; fts5_index.c, fts5StructureDecode), and after the
        marker FF 00 00 01 newer SQLite writes there (a varint of a small level count is < 0x80)."""
        conn = sqlite3.connect(live.path)
        try:
            block = conn.execute(f"SELECT block FROM tracks_fts_{slot}_data WHERE id = 10").fetchone()[0]
        finally:
            conn.close()
        pos, values = (8 if block[4:8] == b"\xff\x00\x00\x01" else 4), []
        while len(values) < 2:  # nLevel, nSegment (SQLite varints)
            value = 0
            while True:
                byte, pos = block[pos], pos + 1
                value = (value << 7) | (byte & 0x7F)
                if byte < 0x80:
                    break
            values.append(value)
        return values[1]
    before = fts_segments()
    keys = list(library)
    rng.shuffle(keys)
    retitled = [{**library[k], "title": f"Retitled {k}"} for k in keys[:60]]
    summary = await apply(live, retitled, keys[60:100])
    assert (summary["updated"], summary["removed"]) == (60, 40)
    assert fts_segments() == before + 1


def test_an_encoded_row_keeps_its_stored_keys_only_where_its_names_are_the_same():
    """An incremental sync encodes a changed row with what the slot holds of it: the folded and
    match keys are taken from there when title, artist, album artist and album are the same."""
    from mediasaged.track import FIELDS, RowEncoder
    encode = RowEncoder()
    row = random_row(random.Random(3), "1")
    stored = encode(row)
    n = len(FIELDS)
    marked = stored[:n] + tuple(f"kept {i}" for i in range(len(stored) - n))  # shows where keys come from
    rated = {**row, "user_rating": 7.0, "genres": ["Jazz"], "year": 1971}
    assert encode(rated, marked) == (*encode(rated)[:n], *marked[n:])
    assert encode(rated, stored) == encode(rated)
    for name in ("title", "artist", "album_artist", "album"):
        renamed = {**row, name: f"{row[name]} (Remastered)"}
        assert encode(renamed, marked) == encode(renamed) != stored
