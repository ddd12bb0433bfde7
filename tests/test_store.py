"""The store package against real SQLite files: migrations, errors, jobs, slots, snapshots."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from contextlib import closing
from dataclasses import asdict, replace

import pytest

from tests.rows import track_row
from mediasaged.store import SCHEMA_VERSION, NotSynced, SlotWriter, State, Store, StoreError, inactive_slot
from mediasaged.store.reads import SnapshotMemo
from mediasaged.syncjob import COLUMNS as JOB_COLUMNS, SyncJob


def track(rk: str, **over) -> dict:
    return track_row(rk, **{"title": f"Song {rk}", "artist": "Artist", "album_artist": "Artist", "album": "Album",
                            "album_rating_key": "9", "duration_ms": 1000, "year": 2001, "genres": ["Rock"],
                            "track_number": 1, "disc_number": 1, "added_at": 1_700_000_000,
                            "updated_at": 1_700_000_000, **over})


@pytest.fixture
async def store(tmp_path):
    s = Store(tmp_path / "data" / "cache.db", readers=2)
    await s.open()
    yield s
    await s.close()


def fill(db, slot: str, rows: list[dict], live: str) -> dict:
    w = SlotWriter(db, slot)
    try:
        w.write_tracks(rows)
        return w.finish(live)
    finally:
        w.close()


async def sync(store: Store, rows: list[dict], changed: bool | None = None) -> tuple[dict, State]:
    state = await store.state()
    slot = inactive_slot(state)
    summary = fill(store.path, slot, rows, state.live_slot)
    if changed is None:
        changed = bool(summary["added"] or summary["updated"] or summary["removed"])
    new = await store.activate_slot(slot, server_id="srv1", server_name="Plex", synced_at=1_800_000_000,
                                    duration_ms=12, track_count=summary["track_count"], changed=changed)
    return summary, new


def count(ctx):
    return ctx.run("SELECT count(*) FROM {tracks}")[0][0]


# --------------------------------------------------------------------------- opening

async def test_migrates_an_empty_file_and_reopens_idempotently(tmp_path):
    db = tmp_path / "cache.db"
    s = Store(db)
    await s.open()
    first = await s.state()
    assert first == State("a", 0, None, None, None, None, 0, None)
    await s.close()
    await s.close()  # idempotent
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"sync_state", "sync_jobs", "tracks_a", "tracks_b", "track_genres_a", "tracks_fts_b"} <= names
    conn.close()
    s = Store(db)
    await s.open()
    assert await s.state() == first
    await s.close()


async def test_database_from_the_future_is_refused(tmp_path):
    db = tmp_path / "cache.db"
    s = Store(db)
    await s.open()
    await s.close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await Store(db).open()


async def test_not_a_database_is_moved_aside_and_replaced(tmp_path):
    db = tmp_path / "cache.db"
    junk = b"this is not an sqlite database, just some text " * 100
    db.write_bytes(junk)
    store = Store(db)
    await store.open()
    try:
        assert store.moved_aside is not None and store.moved_aside.name.startswith("cache.db.corrupt-")
        assert store.moved_aside.read_bytes() == junk
        assert (await store.state()).synced_at is None
    finally:
        await store.close()


async def test_someone_elses_database_is_left_alone(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a mediasaged cache"):
        await Store(db).open()
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
async def test_unwritable_directory_is_refused(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            await Store(d / "cache.db").open()
    finally:
        d.chmod(0o700)


async def test_directory_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="directory"):
        await Store(tmp_path / "file" / "sub" / "cache.db").open()


async def test_calls_on_a_closed_store_raise(tmp_path):
    s = Store(tmp_path / "c.db")
    with pytest.raises(StoreError):
        await s.state()


# --------------------------------------------------------------------------- jobs

async def test_jobs_roundtrip(store):
    assert await store.get_job() is None and await store.list_jobs(5) == []
    j1 = await store.create_job(mode="full", trigger="startup", started_at=100)
    j2 = await store.create_job(mode="full", trigger="manual", started_at=200)
    assert j1 == SyncJob(job_id=j1.job_id, state="running", mode="full", trigger="startup", phase="starting",
                         started_at=100) == await store.get_job(j1.job_id)
    await store.save_job(replace(j1, state="succeeded", phase="done", current=10, total=10, finished_at=150,
                                 added=10, updated=0, removed=0, error=None, skipped={"no_rating_key": 1}))
    job = await store.get_job(j1.job_id)
    assert asdict(job) == {"job_id": j1.job_id, "state": "succeeded", "mode": "full", "trigger": "startup",
                           "phase": "done", "current": 10, "total": 10, "started_at": 100, "finished_at": 150,
                           "added": 10, "updated": 0, "removed": 0, "error": None, "skipped": {"no_rating_key": 1},
                           "resumed_from": None}
    assert (await store.get_job()).job_id == j2.job_id
    assert [j.job_id for j in await store.list_jobs(10)] == [j2.job_id, j1.job_id]
    assert [j.job_id for j in await store.list_jobs(1)] == [j2.job_id]
    assert await store.get_job(999) is None


async def test_the_job_dataclass_is_the_sync_jobs_table(store):
    """SyncJob's fields are the table's columns, in order (the DDL lives in migration v1)."""
    columns = await store.read(lambda ctx: ctx.run("SELECT name FROM pragma_table_info('sync_jobs') ORDER BY cid"),
                               require_synced=False)
    assert tuple(c for (c,) in columns) == JOB_COLUMNS


async def test_fail_interrupted_jobs(store):
    done = await store.create_job(mode="full", trigger="manual", started_at=1)
    await store.save_job(replace(done, state="succeeded", finished_at=2))
    left = await store.create_job(mode="full", trigger="schedule", started_at=3)
    assert await store.fail_interrupted_jobs("interrupted: the daemon stopped") == 1
    job = await store.get_job(left.job_id)
    assert job.state == "failed" and job.error == "interrupted: the daemon stopped"
    assert job.finished_at is not None
    assert (await store.get_job(done.job_id)).state == "succeeded"
    assert await store.fail_interrupted_jobs("again") == 0


# --------------------------------------------------------------------------- slots

async def test_not_synced_until_a_slot_is_activated(store):
    with pytest.raises(NotSynced):
        await store.read(count)
    assert await store.read(count, require_synced=False) == 0
    summary, state = await sync(store, [track("1"), track("2")])
    assert summary == {"added": 2, "updated": 0, "removed": 0, "track_count": 2}
    assert state == State("b", 1, 1_800_000_000, "srv1", "Plex", 12, 2, None)
    assert await store.read(count) == 2


async def test_generation_counts_changing_syncs_and_errors_clear(store):
    await sync(store, [track("1"), track("2"), track("3")])
    await store.record_error("Plex returned HTTP 500")
    assert (await store.state()).last_error == "Plex returned HTTP 500"
    summary, state = await sync(store, [track("1"), track("2"), track("3")])
    assert summary == {"added": 0, "updated": 0, "removed": 0, "track_count": 3}
    assert state.generation == 1 and state.live_slot == "a" and state.last_error is None
    summary, state = await sync(store, [track("1", title="New title"), track("3"), track("4"), track("5")])
    assert summary == {"added": 2, "updated": 1, "removed": 1, "track_count": 4}
    assert state.generation == 2 and state.live_slot == "b" and state.track_count == 4
    summary, _ = await sync(store, [track("1", title="New title"), track("3", genres=["Rock", "Jazz"]),
                                    track("4", user_rating=8.0), track("5", view_count=3)])
    assert summary == {"added": 0, "updated": 3, "removed": 0, "track_count": 4}


async def test_slot_writer_rows_keys_and_duplicates(store):
    rows = [track("1", title="Straße", artist="BJÖRK", genres=["Rock", " rock ", "Art Pop", "", "jazz"]),
            track("2", year="1999", duration_ms=None, user_rating=7, is_live=True, genres=None),
            track("1", title="Jóga", artist="Björk", genres=["Electronic", "art pop", "Art Pop"])]
    await sync(store, rows)
    got = await store.read(lambda ctx: ctx.run(
        "SELECT rating_key, title, title_key, artist_key, year, user_rating, is_live, genres FROM {tracks} ORDER BY id"))
    assert got == [("1", "Jóga", "jóga", "björk", 2001, None, 0, '["art pop", "Electronic"]'),
                   ("2", "Song 2", "song 2", "artist", 1999, 7.0, 1, "[]")]
    genres = await store.read(lambda ctx: ctx.run(
        "SELECT genre_key, track_id, name, year FROM {genres} ORDER BY genre_key"))
    assert genres == [("art pop", 1, "art pop", 2001), ("electronic", 1, "Electronic", 2001)]
    fts = await store.read(lambda ctx: ctx.run(  # the FTS rowid is the rank in the default order
        "SELECT {fts}.rowid, r.track_id FROM {fts} JOIN {ranks} r ON r.rank = {fts}.rowid WHERE {fts} MATCH 'bjo*'"))
    ranks = await store.read(lambda ctx: ctx.run("SELECT rank, track_id FROM {ranks} ORDER BY rank"))
    assert [t for _, t in ranks] == [2, 1]  # "artist" (track 2) sorts before "björk"
    assert fts == [ranks[1]]
    # built with a large buffer of pending entries, then FTS5's default again for incremental writes
    assert await store.read(lambda ctx: ctx.run("SELECT v FROM {fts}_config WHERE k = 'hashsize'")) == [(1024 * 1024,)]


async def test_a_key_written_again_in_a_later_batch_keeps_its_place_with_the_later_values(store):
    """A full sync appends rows without a key index; a key written again (Plex listed it twice
    pages apart, a resume's overlapping page) is merged when the index is built: its last row's
    values at its first row's place, as an upsert would have left it."""
    w = SlotWriter(store.path, "b")
    try:
        w.write_tracks([track("1", title="First"), track("2"), track("3", title="Three")])
        w.write_tracks([track("4"), track("1", title="Again"), track("3", title="Three again")])
        w.write_tracks([track("1", title="Last"), track("5")])
        assert w.rows_written == 8
        assert w.track_count == 5  # the key index is built, duplicates merged
        w.write_tracks([track("2", title="Two, after the index"), track("6")])  # from now on: upserts
        assert (w.rows_written, w.track_count) == (6, 6)
        summary = w.finish("a")
    finally:
        w.close()
    assert summary["track_count"] == 6
    await store.activate_slot("b", server_id="s", server_name="n", synced_at=1, duration_ms=1, track_count=6,
                              changed=True)
    got = await store.read(lambda ctx: ctx.run("SELECT id, rating_key, title FROM {tracks} ORDER BY id"))
    assert [(k, title) for _, k, title in got] == [("1", "Last"), ("2", "Two, after the index"),
                                                   ("3", "Three again"), ("4", "Song 4"), ("5", "Song 5"),
                                                   ("6", "Song 6")]
    assert await store.read(lambda ctx: ctx.run("SELECT count(*) FROM {fts} WHERE {fts} MATCH 'three'")) == [(1,)]
    with pytest.raises(sqlite3.IntegrityError):  # the live slot's keys are unique
        conn = sqlite3.connect(store.path)
        conn.execute("INSERT INTO tracks_b (rating_key, title, artist, album_artist, album, is_live, genres, "
                     "title_key, artist_key, album_artist_key, album_key, m_title, m_tags, m_artist, m_album_artist, "
                     "m_album) SELECT rating_key, title, artist, album_artist, album, is_live, genres, title_key, "
                     "artist_key, album_artist_key, album_key, m_title, m_tags, m_artist, m_album_artist, m_album "
                     "FROM tracks_b WHERE rating_key = '1'")
    conn.close()


async def older_cache(db, version: int, *sql: str) -> None:
    """A cache database at schema ``version``: a new one, ``sql`` run on it, and what the later
    migrations added (that these tests know of) taken out again."""
    s = Store(db)
    await s.open()
    await s.close()
    with closing(sqlite3.connect(db)) as conn:
        for statement in sql:
            conn.execute(statement)
        if version < 8:
            conn.execute("ALTER TABLE sync_state DROP COLUMN changes_through")
        if version < 9:
            conn.execute("ALTER TABLE sync_state DROP COLUMN plex_section_id")
            conn.execute("ALTER TABLE slot_progress DROP COLUMN section_id")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.commit()


async def test_migration_7_forgets_partial_slots_of_the_old_shape(tmp_path):
    """Before v7 a slot's rating keys were unique by a constraint of its table, which a resumed
    load (appending, with one page of overlap) cannot write into: such progress is dropped."""
    db = tmp_path / "cache.db"
    await older_cache(db, 6, "INSERT INTO slot_progress (slot, job_id, first_started_at, server_id, settings, "
                             "plex_offset, plex_total, updated_at) VALUES ('b', 1, 1, 'srv', '{}', 1000, 5000, 1)")
    s = Store(db)
    await s.open()
    await s.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM slot_progress").fetchone()[0] == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_migration_8_starts_incremental_syncs_where_they_started_before(tmp_path):
    """``changes_through`` begins as what incremental syncs read from until then: the start of
    the last job that succeeded."""
    db = tmp_path / "cache.db"
    await older_cache(db, 7, *(f"INSERT INTO sync_jobs (state, mode, trigger, started_at) VALUES ('{state}', 'full', "
                               f"'manual', {at})" for state, at in [("succeeded", 100), ("succeeded", 200),
                                                                    ("failed", 300)]),
                      "UPDATE sync_state SET synced_at = 210")
    s = Store(db)
    await s.open()
    try:
        assert (await s.state()).changes_through == 200
        assert await s.changes_since(60) == 140
    finally:
        await s.close()


async def test_migration_9_keeps_the_library_and_records_its_section_at_the_next_sync(tmp_path):
    """The section the live library was read from is not known for a cache of before v9: it stays
    a library (no full sync is forced), and the next sync records its section."""
    db = tmp_path / "cache.db"
    await older_cache(db, 8, "UPDATE sync_state SET synced_at = 210, plex_server_id = 'srv', track_count = 0")
    s = Store(db)
    await s.open()
    try:
        state = await s.state()
        assert (state.synced_at, state.plex_server_id, state.plex_section_id) == (210, "srv", None)
        await s.record_sync(server_id="srv", server_name="n", duration_ms=1, sync_settings=None, section_id="3")
        assert (await s.state()).plex_section_id == "3"
        await s.record_sync(server_id="srv", server_name="n", duration_ms=1, sync_settings=None)  # no worker
        assert (await s.state()).plex_section_id == "3"
    finally:
        await s.close()


async def test_slot_writer_refuses_the_live_slot_and_an_unmigrated_file(store, tmp_path):
    await sync(store, [track("1")])
    with pytest.raises(StoreError, match="live"):
        SlotWriter(store.path, "b")
    with pytest.raises(StoreError):
        SlotWriter(tmp_path / "fresh.db", "a")


async def test_unfinished_slot_is_not_activated(store):
    w = SlotWriter(store.path, "b")
    w.write_tracks([track("1")])
    w.close()
    with pytest.raises(StoreError, match="not finished"):
        await store.activate_slot("b", server_id="s", server_name="n", synced_at=1, duration_ms=1, track_count=1,
                                  changed=True)
    assert (await store.state()).live_slot == "a"


async def test_reader_keeps_the_old_snapshot_while_the_other_slot_fills(store):
    await sync(store, [track(str(i)) for i in range(10)])
    w = SlotWriter(store.path, "a")  # drops and refills the inactive slot
    w.write_tracks([track(str(i)) for i in range(100, 150)])
    assert await store.read(count) == 10
    summary = w.finish("b")
    w.close()
    assert await store.read(count) == 10
    assert summary == {"added": 50, "updated": 0, "removed": 10, "track_count": 50}


async def test_one_read_sees_one_snapshot_across_a_swap(store):
    await sync(store, [track(str(i)) for i in range(10)])
    summary = fill(store.path, "a", [track(str(i)) for i in range(20)], "b")
    inside, release = threading.Event(), threading.Event()

    def long_read(ctx):
        first = (ctx.state.live_slot, count(ctx))
        inside.set()
        assert release.wait(10)
        return first, (ctx.tables["tracks"], count(ctx))

    reading = asyncio.ensure_future(store.read(long_read))
    assert await asyncio.get_running_loop().run_in_executor(None, inside.wait, 10)
    state = await store.activate_slot("a", server_id="srv1", server_name="Plex", synced_at=5, duration_ms=1,
                                      track_count=summary["track_count"], changed=True)
    assert state.live_slot == "a" and await store.read(count) == 20
    fill(store.path, "b", [track("x")], "a")  # the old slot is dropped and refilled under the reader
    release.set()
    assert await reading == (("b", 10), ("tracks_b", 10))


async def test_read_errors_are_store_errors(store):
    await sync(store, [track("1")])
    with pytest.raises(StoreError):
        await store.read(lambda ctx: ctx.run("SELECT nope FROM {tracks}"))
    with pytest.raises(StoreError):  # readers are read-only
        await store.read(lambda ctx: ctx.run("DELETE FROM {tracks}"))
    assert await store.read(count) == 1


async def test_many_concurrent_reads(store):
    await sync(store, [track(str(i), genres=["Rock", "Pop"]) for i in range(50)])
    results = await asyncio.gather(*(store.read(count) for _ in range(40)))
    assert results == [50] * 40
    assert json.loads((await store.read(lambda ctx: ctx.run("SELECT genres FROM {tracks} LIMIT 1")))[0][0]) == \
        ["Pop", "Rock"]


def test_the_snapshot_memo_keeps_what_was_used_last_and_forgets_all_with_the_snapshot():
    memo = SnapshotMemo()
    computed = []

    def get(snapshot, key, weight=1):
        return memo.get(snapshot, key, lambda: computed.append(key) or f"v{key}", lambda value: weight)

    for key in range(memo.MAX_WEIGHT):
        get(("a", 1), key)
    get(("a", 1), 0)  # used again: 1 is now the one used longest ago
    get(("a", 1), "new")  # one more than it holds: 1 goes
    computed.clear()
    assert [get(("a", 1), 0), get(("a", 1), "new"), get(("a", 1), 1)] == ["v0", "vnew", "v1"]
    assert computed == [1]  # and 1, back, pushed out 2
    get(("a", 1), "heavy", weight=10)  # pushes out the ten used longest ago: 3 to 12
    computed.clear()
    assert [get(("a", 1), k) for k in (13, 12, "heavy")] == ["v13", "v12", "vheavy"] and computed == [12]
    # (12, back, pushed out 14)
    too_heavy = memo.MAX_WEIGHT + 1
    get(("a", 1), "too heavy", weight=too_heavy)  # never kept, and pushes out nothing
    computed.clear()
    assert get(("a", 1), "too heavy", weight=too_heavy) == "vtoo heavy" and get(("a", 1), 15) == "v15"
    assert computed == ["too heavy"]
    assert get(("a", 2), 0) == "v0" and computed == ["too heavy", 0]  # a new snapshot: computed again
