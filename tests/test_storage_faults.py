"""Storage faults: a full disk, a read-only file system, a removed WAL and a corrupt file.

Each fails the sync (or is repaired) with a message that names the cause and the
file, while the old library keeps answering exactly. Disk faults are real: a small
tmpfs mounted for the test and a read-only bind mount over it (root only; skipped
otherwise, with the reason).
"""

from __future__ import annotations

import grp
import os
import re
import signal
import stat
import subprocess

import pytest

from tests.mirror import assert_mirror, cached_library, expected_library
from tests.processes import plex_reader, state, sync_worker
from tests.test_plex_events import connected, event_jobs, finished_event_job
from tests.support import DaemonProcess, wait_until


@pytest.fixture
def disk(sdir):
    """A 16 MiB tmpfs (mode 0700) at ``sdir/disk``; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the test needs root")
    path = sdir / "disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(path)], check=True)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def names(message: str, path) -> bool:
    """The message names ``path`` itself (not only a longer name that starts with it)."""
    return re.search(re.escape(str(path)) + r"(?![\w.-])", message) is not None


def fill(directory) -> None:
    """Write a file until the file system is full."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass


def add_tracks(emu, n: int, title: str) -> None:
    """``n`` new tracks in 20 new albums of 4 new artists."""
    albums = [emu.library.tracks[emu.add_track(title=f"{title} {i}", album_title=f"Full {i}", artist=f"Disk {i % 4}")
                                 ].album_key for i in range(20)]
    for i in range(20, n):
        emu.add_track(title=f"{title} {i}", album_key=albums[i % 20])


async def start_or_fail(daemon) -> dict:
    """sync.start; a failure to even record the job counts as the job's error."""
    conn = await daemon.connect()
    try:
        response = await conn.request("sync.start", {"mode": "full"})
    finally:
        await conn.close()
    if "error" in response:
        return {"state": "failed", "error": response["error"].get("data", "")}
    return await daemon.wait_sync(response["result"]["job_id"])


async def test_a_full_disk_fails_the_sync_naming_the_cause(disk, daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, cache={"path": str(disk / "cache.db")})
    assert (await daemon.sync())["state"] == "succeeded"
    before = await cached_library(daemon)
    fill(disk)
    job = await start_or_fail(daemon)
    assert job["state"] == "failed"
    assert "disk full" in job["error"] and names(job["error"], disk / "cache.db"), job
    assert "internal error" not in job["error"]
    status = await daemon.call("library.status")
    assert status["error"] == job["error"] or "disk full" in (status["error"] or ""), status
    assert await cached_library(daemon) == before
    (disk / "filler").unlink()
    plex_emulator.add_track(title="Room Again", album_title="Space", artist="Free")
    assert (await daemon.sync())["state"] == "succeeded"
    assert_mirror(await cached_library(daemon), expected_library(plex_emulator))


async def test_a_full_disk_fails_a_change_in_place_naming_the_cause(disk, daemon_factory, plex_emulator):
    """An incremental sync writes into the live slot itself: on a full disk its one transaction
    rolls back, the error names the cause and the file as a full sync's does, and the library
    is the old one, whole. (More additions than the WAL left by the full sync can hold: writes
    into its existing pages need no new space.)"""
    emu = plex_emulator
    daemon = await daemon_factory(plex_url=emu.url, cache={"path": str(disk / "cache.db")})
    assert (await daemon.sync())["state"] == "succeeded"
    before, status = await cached_library(daemon), await daemon.call("library.status")
    fill(disk)
    add_tracks(emu, 4000, "Added on a full disk")
    job = await daemon.sync(mode="incremental")
    assert (job["state"], job["mode"], job["phase"]) == ("failed", "incremental", "applying"), job
    assert "disk full" in job["error"] and names(job["error"], disk / "cache.db"), job
    assert "internal error" not in job["error"]
    after = await daemon.call("library.status")
    assert after["error"] == job["error"]
    assert (after["generation"], after["track_count"]) == (status["generation"], status["track_count"])
    assert await cached_library(daemon) == before
    (disk / "filler").unlink()
    job = await daemon.sync(mode="incremental")
    assert (job["state"], job["mode"], job["added"]) == ("succeeded", "incremental", 4000), job
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_a_full_disk_fails_notified_changes_and_the_next_notification_applies_them(
        disk, daemon_factory, plex_emulator):
    """Notified items are written by the daemon's own writer: on a full disk the job falls back
    to an incremental sync, which fails naming the cause and the file, and the library stays.
    The next notification, once there is room, reads every change since the last sync that
    read them all, not only the item it names."""
    emu = plex_emulator
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, cache={"path": str(disk / "cache.db")},
                                  sync={"plex_events": True})
    assert (await daemon.sync())["state"] == "succeeded"
    await connected(emu)
    before = await cached_library(daemon)
    fill(disk)
    add_tracks(emu, 4000, "Notified on a full disk")
    job = await finished_event_job(daemon)
    assert (job["state"], job["mode"]) == ("failed", "incremental"), job
    assert "disk full" in job["error"] and names(job["error"], disk / "cache.db"), job
    assert await cached_library(daemon) == before

    (disk / "filler").unlink()
    emu.edit_track(sorted(expected_library(emu), key=int)[0], title="Edited once there was room")

    async def next_job():
        jobs = await event_jobs(daemon)
        return len(jobs) >= 2 and jobs[0]["state"] != "running" and jobs[0]
    job = await wait_until(next_job, timeout=60, interval=0.1)
    assert (job["state"], job["added"], job["updated"]) == ("succeeded", 4000, 1), job
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_a_read_only_file_system_fails_the_sync_naming_the_cause(disk, daemon_factory, plex_emulator):
    daemon = await daemon_factory(plex_url=plex_emulator.url, cache={"path": str(disk / "cache.db")})
    assert (await daemon.sync())["state"] == "succeeded"
    before = await cached_library(daemon)
    # A read-only bind mount over the directory: files opened from now on are
    # read-only (the daemon's open ones are not, as after a remount by the kernel).
    subprocess.run(["mount", "--bind", str(disk), str(disk)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(disk)], check=True)
    try:
        job = await daemon.sync()
        assert job["state"] == "failed"
        assert "read-only" in job["error"].lower() and names(job["error"], disk / "cache.db"), job
        assert await cached_library(daemon) == before
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert (await daemon.sync())["state"] == "succeeded"


async def test_a_removed_wal_fails_the_sync_and_is_recovered(daemon_factory, plex_emulator, sdir):
    stop_at = sdir / "stop-at"
    daemon = await daemon_factory(plex_url=plex_emulator.url, env={"MEDIASAGE_SYNC_STOP_AT": str(stop_at)})
    assert (await daemon.sync())["state"] == "succeeded"
    before = await cached_library(daemon)
    # Stop the sync before the worker opens the database, remove the WAL, let it go on.
    stop_at.write_text("reader:genres")
    start = await daemon.call("sync.start", mode="full")

    async def reader_stopped():
        worker = sync_worker(daemon.proc.pid)
        reader = worker and plex_reader(worker)
        return reader and state(reader) == "T" and reader

    reader = await wait_until(reader_stopped)
    stop_at.unlink()
    os.remove(daemon.db.with_name("cache.db-wal"))
    os.kill(reader, signal.SIGCONT)
    job = await daemon.wait_sync(start["job_id"])
    assert job["state"] == "failed"
    assert "write-ahead log" in job["error"] and names(job["error"], f"{daemon.db}-wal"), job
    assert await cached_library(daemon) == before
    # The daemon saves what only the removed WAL held, reopens, and syncs again.
    await wait_until(lambda: _logged(daemon, "reopening the cache"))
    plex_emulator.add_track(title="Logged Again", album_title="Journal", artist="Writer")
    assert (await daemon.sync())["state"] == "succeeded"
    expected = expected_library(plex_emulator)
    assert_mirror(await cached_library(daemon), expected)
    await daemon.stop()
    restarted = DaemonProcess(daemon.dir, daemon.config)
    try:
        await restarted.start()
        assert_mirror(await cached_library(restarted), expected)
    finally:
        await restarted.close()


async def _logged(daemon, text: str) -> bool:
    return text in daemon.log()


@pytest.mark.parametrize("damage", ["not_sqlite", "damaged_schema"])
async def test_a_corrupt_database_is_moved_aside_and_rebuilt(daemon_factory, plex_emulator, sdir, damage):
    db = sdir / "cache.db"
    if damage == "not_sqlite":
        db.write_bytes(b"this is not a database, just text\n" * 300)
    else:  # a real cache whose first page (the schema) is overwritten
        first = await daemon_factory(plex_url=plex_emulator.url)
        assert (await first.sync())["state"] == "succeeded"
        await first.stop()
        with open(db, "r+b") as f:
            f.seek(100)
            f.write(b"\xff" * 3000)
    bad = db.read_bytes()
    daemon = await daemon_factory(plex_url=plex_emulator.url)  # ready: no crash loop
    kept = list(sdir.glob("cache.db.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bad
    assert "moved it to" in daemon.log() and str(kept[0]) in daemon.log()

    async def rebuilt():  # a full sync starts by itself
        job = await daemon.call("sync.status")
        return job.get("state") == "succeeded" and job
    job = await wait_until(rebuilt)
    assert (job["mode"], job["trigger"]) == ("full", "startup")
    assert_mirror(await cached_library(daemon), expected_library(plex_emulator))


async def test_database_files_are_private(daemon_factory, plex_emulator, sdir):
    daemon = await daemon_factory(plex_url=plex_emulator.url)
    assert (await daemon.sync())["state"] == "succeeded"
    for name in ("cache.db", "cache.db-wal", "cache.db-shm", "cache.db.sync-lock"):
        assert stat.S_IMODE(os.stat(sdir / name).st_mode) == 0o600, name


async def test_a_configured_group_gets_read_access(daemon_factory, plex_emulator, sdir):
    if os.geteuid() != 0:
        pytest.skip("giving files to another group needs root")
    group = next(g for g in grp.getgrall() if g.gr_gid != os.getegid())
    daemon = await daemon_factory(plex_url=plex_emulator.url, cache={"path": "cache.db", "group": group.gr_name})
    assert (await daemon.sync())["state"] == "succeeded"
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        st = os.stat(sdir / name)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, group.gr_gid), name


@pytest.mark.parametrize("mode", [0o777, 0o1777])
async def test_a_cache_directory_others_may_write_is_refused(daemon_factory, sdir, mode):
    shared = sdir / "shared"
    shared.mkdir()
    shared.chmod(mode)
    daemon = await daemon_factory(cache={"path": str(shared / "cache.db")}, wait_ready=False)
    assert await daemon.wait_exit() == 3
    assert "writable by every user" in daemon.log() and str(shared) in daemon.log()
    assert not (shared / "cache.db").exists()

