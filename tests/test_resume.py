"""A full sync cut short by a daemon stop or crash resumes where it stopped, and the
result is exact (README, "Recovering by itself"; docs/DESIGN.md, "Resuming a full sync").

The library is 20,000 tracks (``MEDIASAGE_RESUME_TRACKS`` changes that). The cut is
made where a real one would hurt: a page in the middle answers slowly, the test
waits until every page before it is committed, then stops the daemon (SIGTERM) or
kills it (SIGKILL, and its sync processes with it, as systemd's cgroup kill does).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

import pytest

from tests.mirror import assert_mirror, changed_since, expected_library, iso_to_unix
from tests.support import wait_until

pytestmark = pytest.mark.timeout(300)

TRACKS = int(os.environ.get("MEDIASAGE_RESUME_TRACKS", "20000"))
PAGE = 500
CUT_PAGE = TRACKS // PAGE // 2  # 0-based: the page that stalls; every page before it is committed


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the sync worker and its reader)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


async def cached_tracks(daemon) -> dict[str, dict]:
    tracks: dict[str, dict] = {}
    while True:
        page = await daemon.call("tracks.query", limit=10000, offset=len(tracks))
        for t in page["tracks"]:
            t = dict(t)
            for key in ("last_viewed_at", "added_at", "updated_at"):
                t[key] = iso_to_unix(t[key])
            tracks[t["rating_key"]] = t
        if len(tracks) >= page["total"] or not page["tracks"]:
            return tracks


def full_listing_starts(emu) -> list[int]:
    """X-Plex-Container-Start of every page of the whole track listing requested."""
    return [start or 0 for path, start, size in emu.page_log
            if "/all?" in path and "type=10" in path and not changed_since(path) and "artist.id" not in path
            and size]


@pytest.mark.parametrize("cut", ["SIGTERM", "SIGKILL"])
async def test_a_full_sync_cut_short_resumes_and_ends_exact(cut, daemon_factory, plex_emulator_factory, sdir):
    emu = plex_emulator_factory(TRACKS, seed=11)
    settings = {"page_size": PAGE, "retries": 0}
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync=settings)
    first = await daemon.sync(timeout=240)
    assert first["state"] == "succeeded", first
    old = await daemon.call("library.status")
    order = list(emu.library.track_order())
    early, late = order[10], order[-10]  # in pages before the cut, and after it
    emu.edit_track(early, title="Edited before the cut")

    emu.inject_fault("slow", page=CUT_PAGE, delay=600)
    started = await daemon.call("sync.start", mode="full")

    async def cut_reached():
        job = await daemon.call("sync.status")
        return job["current"] >= CUT_PAGE * PAGE
    await wait_until(cut_reached, timeout=240, interval=0.1)
    seen = await daemon.call("tracks.get", rating_keys=[early])
    assert seen["generation"] == old["generation"] and seen["tracks"][0]["title"] != "Edited before the cut"

    workers = descendants(daemon.proc.pid)
    assert workers, "no sync worker found"
    if cut == "SIGKILL":
        for pid in [daemon.proc.pid, *workers]:
            with contextlib.suppress(ProcessLookupError):  # the sync processes die with the daemon anyway
                os.kill(pid, signal.SIGKILL)
        await daemon.wait_exit()
    else:
        assert await daemon.stop(signal.SIGTERM) == 0
    await wait_until(lambda: gone(workers), timeout=30)
    await daemon.close()

    # While the daemon is down: edits in both parts, and a new track.
    emu.clear_faults()
    emu.edit_track(order[20], title="Edited while down")
    emu.edit_track(late, title="Edited late while down")
    emu.add_track(title="Added while down", album_key=emu.library.tracks[order[30]].album_key)
    emu.page_log.clear()

    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, directory=sdir, sync=settings)
    interrupted = (await daemon.call("sync.status", job_id=started["job_id"]))
    assert interrupted["state"] in ("cancelled", "failed"), interrupted

    readers: list[tuple[int, str]] = []
    stop = asyncio.Event()

    async def read_while_syncing():
        conn = await daemon.connect()
        try:
            while not stop.is_set():
                got = await conn.call("tracks.get", rating_keys=[early])
                readers.append((got["generation"], got["tracks"][0]["title"]))
                await asyncio.sleep(0.05)
        finally:
            await conn.close()
    reader = asyncio.create_task(read_while_syncing())
    job = await daemon.sync(timeout=240)
    stop.set()
    await reader

    assert job["state"] == "succeeded", (job, daemon.log())
    assert job["resumed_from"] == started["job_id"], job
    starts = full_listing_starts(emu)
    assert starts and min(starts) == (CUT_PAGE - 1) * PAGE, sorted(starts)[:5]  # one page of overlap, no more
    # Readers saw the old complete library until the swap, then the new one.
    before = [r for r in readers if r[0] == old["generation"]]
    assert before and all(title != "Edited before the cut" for _, title in before)
    assert all(r == (old["generation"] + 1, "Edited before the cut") for r in readers[len(before):]), readers
    assert_mirror(await cached_tracks(daemon), expected_library(emu))


async def test_restart_starts_a_full_sync_afresh(daemon_factory, plex_emulator_factory):
    emu = plex_emulator_factory(3000, seed=5)
    settings = {"page_size": 200, "retries": 1}  # the fault stays: a retry fails too
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync=settings)
    emu.inject_fault("500", page=12, times=None)
    failed = await daemon.sync()
    assert failed["state"] == "failed" and 1600 <= failed["current"] <= 2400, (failed["current"], failed["error"])
    emu.clear_faults()
    emu.page_log.clear()

    job = await daemon.sync()  # resumes
    assert job["state"] == "succeeded", (job["error"], daemon.log())
    assert job["resumed_from"] == failed["job_id"], job
    assert min(full_listing_starts(emu)) == failed["current"] - 200

    emu.inject_fault("500", page=12, times=None)
    failed = await daemon.sync()
    emu.clear_faults()
    emu.page_log.clear()
    result = await daemon.call("sync.start", mode="full", restart=True)
    job = await daemon.wait_sync(result["job_id"])
    assert job["state"] == "succeeded" and job["resumed_from"] is None, (job["error"], daemon.log())
    assert min(full_listing_starts(emu)) == 0
    assert_mirror(await cached_tracks(daemon), expected_library(emu))


async def cut_sync(daemon, emu) -> dict:
    """A full sync that fails at page 12 (of 200 tracks) after committing the pages before it."""
    emu.inject_fault("500", page=12, times=None)
    failed = await daemon.sync()
    emu.clear_faults()
    assert failed["state"] == "failed" and failed["current"] >= 1600, failed
    return failed


async def test_deletions_while_down_are_found_and_the_resumed_sync_ends_exact(daemon_factory, plex_emulator_factory):
    """Tracks Plex deleted from the part read before the cut: the resumed slot holds more tracks
    than Plex counts, and the incremental sync's deletion check (album track counts, batched
    lookups) finds them without reading that part's pages again."""
    emu = plex_emulator_factory(3000, seed=6)
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"page_size": 200, "retries": 1})
    failed = await cut_sync(daemon, emu)
    order = list(emu.library.track_order())
    for key in order[:3]:  # in the pages read before the cut
        emu.delete_track(key)
    emu.edit_track(order[50], title="Edited while down")
    emu.page_log.clear()

    job = await daemon.sync()

    assert (job["state"], job["resumed_from"]) == ("succeeded", failed["job_id"]), (job, daemon.log()[-3000:])
    assert min(full_listing_starts(emu)) == failed["current"] - 200
    assert "3 tracks Plex deleted while the sync was cut taken out" in daemon.log()
    assert_mirror(await cached_tracks(daemon), expected_library(emu))


async def test_when_the_deletions_cannot_be_found_the_next_sync_starts_afresh(daemon_factory, plex_emulator_factory):
    emu = plex_emulator_factory(3000, seed=6)
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"page_size": 200, "retries": 1})
    failed = await cut_sync(daemon, emu)
    for key in list(emu.library.track_order())[:3]:  # in the pages read before the cut
        emu.delete_track(key)
    # albums without their track counts, in the listing and in their metadata (as a server might): the
    # check can't tell which
    for where in ({"libtype": 9}, {"path_contains": "/library/metadata/"}):
        emu.inject_fault("rewrite", times=None, rewrite=lambda body: re.sub(rb' leafCount="\d+"', b"", body), **where)

    job = await daemon.sync()  # resumes; the count says tracks were deleted

    assert (job["state"], job["resumed_from"]) == ("failed", failed["job_id"]), job
    assert "starts afresh" in job["error"]
    emu.clear_faults()
    emu.page_log.clear()
    job = await daemon.sync()
    assert (job["state"], job["resumed_from"]) == ("succeeded", None), job
    assert min(full_listing_starts(emu)) == 0
    assert_mirror(await cached_tracks(daemon), expected_library(emu))


@pytest.mark.parametrize("moved", [
    "updated_at = updated_at - 3601",  # its last page is over an hour old
    # the cut sync's times are later than now: our clock went back since, by an amount nothing tells
    # (the changes since the cut sync's start could not be read from a time that is right)
    "updated_at = updated_at + 7200, first_started_at = first_started_at + 7200",
])
async def test_an_old_partial_slot_is_not_resumed(daemon_factory, plex_emulator_factory, moved):
    import sqlite3  # the test moves the progress row's times by hand

    emu = plex_emulator_factory(3000, seed=6)
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"page_size": 200, "retries": 1})
    await cut_sync(daemon, emu)
    with sqlite3.connect(daemon.db) as db:
        db.execute(f"UPDATE slot_progress SET {moved}")
    db.close()
    emu.page_log.clear()

    job = await daemon.sync()

    assert (job["state"], job["resumed_from"]) == ("succeeded", None), job
    assert min(full_listing_starts(emu)) == 0
    assert_mirror(await cached_tracks(daemon), expected_library(emu))
