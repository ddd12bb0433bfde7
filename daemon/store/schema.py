"""The cache's schema: per-slot DDL and the forward migrations (used by database.py and slots.py).

No sqlite3 here: the functions take a connection and only call ``execute``.
See docs/DESIGN.md, "Schema".
"""

from __future__ import annotations

from typing import Any, Callable

from ..track import KEY_COLUMNS, columns_ddl

SLOTS = ("a", "b")
# A track's rank (track_ranks_S, track_genres_S.artist_rank, the FTS rowid) is its place
# in the default order, spread evenly over 1..RANK_LIMIT at a full build (n tracks: steps
# of RANK_LIMIT // (n + 1)), so that an incremental sync can place new or moved tracks
# between two others in place (store/increments.py). Queries pack (1 << 62 | rank << 31 |
# track_id) into 63 bits (query/plans.py): track ids stay below 2**31 (a full sync numbers
# its rows from 1; an incremental adds after the largest).
RANK_LIMIT = 2**31 - 1
APPLICATION_ID = 0x4D534731  # "MSG1": marks the file as a mediasaged cache


def slot_tables(slot: str) -> dict[str, str]:
    if slot not in SLOTS:
        raise ValueError(f"bad slot {slot!r}")
    return {"tracks": f"tracks_{slot}", "genres": f"track_genres_{slot}", "fts": f"tracks_fts_{slot}",
            "ranks": f"track_ranks_{slot}", "stats": f"genre_stats_{slot}", "facets": f"genre_facets_{slot}",
            "members": f"genre_members_{slot}"}


# Per-slot DDL is always the *current* shape: SlotWriter rebuilds a slot from it
# on every full sync. A migration that changes a slot's shape simply calls
# recreate_slot() for both slots and forgets the sync (it is only a cache).
def slot_table_ddl(slot: str) -> list[str]:
    t = slot_tables(slot)
    return [
        # The Track's columns come from its field table (track.FIELDS); every
        # statement names its columns, so their order on disk does not matter.
        f"CREATE TABLE {t['tracks']} (id INTEGER PRIMARY KEY, {columns_ddl()})",
        # One row per (track, genre). year/user_rating/is_live are copies of the
        # track's and artist_rank is its place in the default (artist) order, so
        # genre + decade/rating/live filters and the default sort are answered
        # inside one covering index (query/plans.py pushes those conditions down).
        # A plain rowid table: filled in one INSERT ... SELECT at finish and
        # indexed afterwards, which is much faster than a WITHOUT ROWID b-tree;
        # (genre_key, track_id) is unique by construction.
        f"""CREATE TABLE {t['genres']} (
  genre_key TEXT NOT NULL, track_id INTEGER NOT NULL, name TEXT NOT NULL,
  year INTEGER, user_rating REAL, is_live INTEGER NOT NULL, artist_rank INTEGER NOT NULL)""",
        # Each track's place in the default order (artist, album, disc, track, id),
        # spread over 1..RANK_LIMIT at finish: the FTS rowid, so text matches come out
        # of the full-text index already in that order (a page stops after `limit`).
        f"CREATE TABLE {t['ranks']} (rank INTEGER PRIMARY KEY, track_id INTEGER NOT NULL)",
        # The FTS index covers the folded *_key columns, so NFD input, ß/ss and
        # the like match the same way as the casefolded query words. Contentless,
        # rowid = rank: filled from tracks joined to ranks at finish.
        f"""CREATE VIRTUAL TABLE {t['fts']} USING fts5(
  {', '.join(KEY_COLUMNS)},
  content='', columnsize=0, prefix='1 2 3 4',
  tokenize='unicode61 remove_diacritics 2')""",
        # library.stats of the whole library (genre_key '') and of each single
        # genre, computed at finish and kept exact by incremental syncs: such a
        # request reads a few rows instead of every matching track (store/stats.py).
        f"""CREATE TABLE {t['stats']} (genre_key TEXT PRIMARY KEY, track_count INTEGER NOT NULL,
  artist_count INTEGER NOT NULL, album_count INTEGER NOT NULL, total_duration_ms INTEGER NOT NULL,
  live_count INTEGER NOT NULL) WITHOUT ROWID""",
        f"""CREATE TABLE {t['facets']} (genre_key TEXT NOT NULL, kind TEXT NOT NULL, item, name TEXT NOT NULL,
  n INTEGER NOT NULL)""",
        f"""CREATE TABLE {t['members']} (genre_key TEXT NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL,
  n INTEGER NOT NULL, PRIMARY KEY (genre_key, kind, item)) WITHOUT ROWID""",
    ]


def key_index_ddl(slot: str) -> str:
    """The unique index on a slot's rating keys: built when a full sync's rows are all in
    (`SlotWriter.index_keys`, which first merges a key written twice), not row by row."""
    tr = slot_tables(slot)["tracks"]
    return f"CREATE UNIQUE INDEX IF NOT EXISTS {tr}_key ON {tr}(rating_key)"


def slot_index_ddl(slot: str) -> list[str]:
    """Indexes built after the bulk load. The last one marks a finished slot."""
    tr, g = slot_tables(slot)["tracks"], slot_tables(slot)["genres"]
    cols = {
        "artist": "artist_key, album_key, disc_number, track_number",
        "album_artist": "album_artist_key",
        "album": "album_key, album_artist_key, disc_number, track_number",
        "year": "year, user_rating, is_live",
        "rating": "user_rating",
        "added": "added_at",
        "updated": "updated_at",
        # tracks.match: exact keys and key prefixes (match/lookup.py)
        "match_title": "m_title, m_artist, m_album_artist",
        "match_artist": "m_artist, m_title, m_tags",
        "match_album_artist": "m_album_artist, m_title, m_tags, m_artist",
        "title": "title_key",
        "album_key": "album_rating_key",
    }
    fa, rk = slot_tables(slot)["facets"], slot_tables(slot)["ranks"]
    return [key_index_ddl(slot), f"CREATE UNIQUE INDEX {fa}_key ON {fa}(genre_key, kind, item, name)",
            f"CREATE INDEX {rk}_track ON {rk}(track_id)",
            f"CREATE INDEX {g}_track ON {g}(track_id, genre_key, name)",
            f"CREATE INDEX {g}_filter ON {g}(genre_key, year, user_rating, is_live, artist_rank, track_id, name)"] + [
        f"CREATE INDEX {tr}_{name} ON {tr}({c})" for name, c in cols.items()]


def reopen_slot(conn: Any, slot: str) -> None:
    """Keep a slot's tracks; drop what `finish` derives from them (indexes, every other table).

    A full sync that resumes a partial slot continues from its tracks and
    rebuilds the rest, whether or not the interrupted sync had begun finishing.
    """
    t = slot_tables(slot)
    for sql in slot_index_ddl(slot):
        conn.execute(f"DROP INDEX IF EXISTS {sql.split(' ON ')[0].split()[-1]}")
    for kind, name in t.items():
        if kind != "tracks":
            conn.execute(f"DROP TABLE IF EXISTS {name}")
    for sql in slot_table_ddl(slot):
        if not sql.startswith(f"CREATE TABLE {t['tracks']} "):
            conn.execute(sql)


def finished_marker(slot: str) -> str:
    """The index whose presence marks a finished slot (the last one built)."""
    return slot_index_ddl(slot)[-1].split()[2]


def drop_slot(conn: Any, slot: str) -> None:
    t = slot_tables(slot)
    for name in (t["fts"], t["genres"], t["tracks"], t["ranks"], t["stats"], t["facets"], t["members"]):
        conn.execute(f"DROP TABLE IF EXISTS {name}")


def recreate_slot(conn: Any, slot: str, *, indexes: bool) -> None:
    drop_slot(conn, slot)
    for sql in slot_table_ddl(slot) + (slot_index_ddl(slot) if indexes else []):
        conn.execute(sql)


def _migrate_v1(conn: Any) -> None:
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("""CREATE TABLE sync_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  live_slot TEXT NOT NULL DEFAULT 'a' CHECK (live_slot IN ('a','b')),
  generation INTEGER NOT NULL DEFAULT 0,
  synced_at INTEGER, plex_server_id TEXT, plex_server_name TEXT, sync_duration_ms INTEGER,
  track_count INTEGER NOT NULL DEFAULT 0, last_error TEXT)""")
    conn.execute("INSERT INTO sync_state (id) VALUES (1)")
    conn.execute("""CREATE TABLE sync_jobs (
  job_id INTEGER PRIMARY KEY, state TEXT NOT NULL, mode TEXT NOT NULL, trigger TEXT NOT NULL,
  phase TEXT, current INTEGER NOT NULL DEFAULT 0, total INTEGER,
  started_at INTEGER NOT NULL, finished_at INTEGER,
  added INTEGER, updated INTEGER, removed INTEGER, error TEXT)""")
    conn.execute("CREATE INDEX sync_jobs_state ON sync_jobs(state)")
    for slot in SLOTS:
        recreate_slot(conn, slot, indexes=True)


def _migrate_v2(conn: Any) -> None:
    # The settings the live library was built with (library, live rule): an
    # incremental sync only applies when they are still the same.
    conn.execute("ALTER TABLE sync_state ADD COLUMN sync_settings TEXT")


def _migrate_v3(conn: Any) -> None:
    # Slots gain track_ranks_S (the FTS rowid is now the default-order rank), the
    # per-genre stats tables, and an index on album_rating_key (per-album counts for an
    # incremental sync): rebuild both slots and forget the sync (a cache).
    for slot in SLOTS:
        recreate_slot(conn, slot, indexes=True)
    conn.execute("UPDATE sync_state SET synced_at = NULL, track_count = 0, sync_settings = NULL WHERE id = 1")


def _migrate_v4(conn: Any) -> None:
    # tracks.match's normalized columns and their indexes: both slots are
    # recreated in the new shape and the sync forgotten, so the next sync is a
    # full one that fills them (it is only a cache).
    for slot in SLOTS:
        recreate_slot(conn, slot, indexes=True)
    conn.execute("UPDATE sync_state SET synced_at = NULL, track_count = 0, sync_settings = NULL WHERE id = 1")


def _migrate_v5(conn: Any) -> None:
    # Items Plex sent that a sync could not mirror, by reason (JSON object text).
    conn.execute("ALTER TABLE sync_jobs ADD COLUMN skipped TEXT")


def _migrate_v6(conn: Any) -> None:
    # A full sync's progress in the slot it fills, committed with each page, so
    # that a sync cut short resumes there (docs/DESIGN.md, "Resuming a full sync");
    # and the job that did so says from where.
    conn.execute("""CREATE TABLE slot_progress (
  slot TEXT PRIMARY KEY CHECK (slot IN ('a','b')),
  job_id INTEGER NOT NULL, first_started_at INTEGER NOT NULL, server_id TEXT NOT NULL, settings TEXT NOT NULL,
  plex_offset INTEGER NOT NULL, plex_total INTEGER, updated_at INTEGER NOT NULL)""")
    conn.execute("ALTER TABLE sync_jobs ADD COLUMN resumed_from INTEGER")


def _migrate_v7(conn: Any) -> None:
    # A slot's rating keys are unique by an index built after a full sync's load
    # (key_index_ddl), no longer by a constraint of the tracks table: a full sync now
    # appends its rows, and a partial slot of the old shape could not take the
    # overlapping page of a resume. So those are forgotten (the next full sync starts
    # afresh); the live slot keeps its constraint's index until a full sync replaces it.
    conn.execute("DELETE FROM slot_progress")


def _migrate_v8(conn: Any) -> None:
    # Where the next incremental sync starts reading Plex's changes: the start of the last
    # sync that read every change since the one before it (a full sync, or an incremental
    # one that read Plex's listings or counts). Until now it was the start of the last
    # successful job of any kind, which a change set applied from notifications alone moved
    # past changes it never read (docs/DESIGN.md, "Incremental syncs").
    conn.execute("ALTER TABLE sync_state ADD COLUMN changes_through INTEGER")
    conn.execute("UPDATE sync_state SET changes_through = "
                 "(SELECT max(started_at) FROM sync_jobs WHERE state = 'succeeded') WHERE id = 1")


def _migrate_v9(conn: Any) -> None:
    # The library section the live library was read from. Until now the daemon learnt it from
    # each sync's worker and forgot it at exit: a daemon started on a current cache took the
    # notifications of every section of the server for its library's until a sync ran. And the
    # one a partial slot was read from: a full sync continues it only in the same section.
    conn.execute("ALTER TABLE sync_state ADD COLUMN plex_section_id TEXT")
    conn.execute("ALTER TABLE slot_progress ADD COLUMN section_id TEXT")


# Forward migrations: MIGRATIONS[i] takes user_version i to i + 1, inside one
# write transaction. Adding one = appending one function.
MIGRATIONS: list[Callable[[Any], None]] = [_migrate_v1, _migrate_v2, _migrate_v3, _migrate_v4, _migrate_v5, _migrate_v6,
                                           _migrate_v7, _migrate_v8, _migrate_v9]
SCHEMA_VERSION = len(MIGRATIONS)
