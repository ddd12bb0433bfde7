"""A million tracks, on request only: ``pytest -m large`` (or ``make test-large``).

The default suite skips it (pyproject's addopts: ``-m "not large"``): it needs
about 4 GB of memory for the two copies of the library and a few minutes on two
cores. It checks that a full sync of a 1,000,000-track library mirrors it
exactly (counts, per-genre counts and a sample of whole tracks against the
emulator's ground truth), that an incremental sync then changes nothing, and that
the daemon with all its processes stays within 150 MiB of resident memory
during the syncs. During the queries the bound is on anonymous memory: the
daemon's query readers map the database (``mmap_size``), and the pages of it a
query touches count in RSS once per reader that maps them (2,000 random
``tracks.get`` at 1M: +260 MiB of file pages, the OS's page cache, not the
daemon's heap); docs/PERFORMANCE.md, "Scale". ``MEDIASAGE_LARGE_TRACKS`` changes the size.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter

import pytest

from mediasaged.track import fold
from tests.emulator import generate_library
from tests.emulator.process import emulator_process
from tests.mirror import expected_is_live, iso_to_unix
from tests.processes import children
from tests.rows import as_track

pytestmark = [pytest.mark.large, pytest.mark.timeout(3 * 3600)]

N = int(os.environ.get("MEDIASAGE_LARGE_TRACKS", "1000000"))
RSS_LIMIT_MIB = 150
STATUS_LIMIT = 10.0  # seconds: a status call on a busy machine; the daemon answers in ms


def tree_rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (``field`` of /proc/PID/status) of a process and all its descendants, in KiB."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        stack += children(p)
    return total


class PeakRss(threading.Thread):
    def __init__(self, pid: int, field: str = "VmRSS"):
        super().__init__(daemon=True)
        self.pid, self.field, self.peak_kib, self.done = pid, field, 0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid, self.field))
            time.sleep(0.02)

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak_kib / 1024


def expected(lib, key: str) -> dict:
    t = lib.expected_track(key)
    t["is_live"] = expected_is_live(t["title"], t["album"])
    return as_track(t)


def cached(track: dict) -> dict:
    track = dict(track)
    for name in ("last_viewed_at", "added_at", "updated_at"):
        track[name] = iso_to_unix(track[name])
    return track


async def sync(daemon, mode: str) -> dict:
    """Run one sync to its end, polling its status; every poll must be answered within
    STATUS_LIMIT seconds (the daemon's event loop never waits on the sync)."""
    conn = await daemon.connect()
    try:
        job_id = (await conn.request("sync.start", {"mode": mode}, timeout=STATUS_LIMIT))["result"]["job_id"]
        deadline = time.monotonic() + 3 * 3600
        slowest = 0.0
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            job = (await conn.request("sync.status", {"job_id": job_id}, timeout=STATUS_LIMIT))["result"]
            slowest = max(slowest, time.monotonic() - t0)
            if job["state"] != "running":
                print(f"{mode} sync: slowest sync.status answer {slowest * 1000:.1f} ms")
                return job
            await asyncio.sleep(0.5)
        raise AssertionError(f"{mode} sync still running after 3 hours")
    finally:
        await conn.close()


async def test_a_million_tracks_mirror_exactly_within_the_memory_bound(daemon_factory):
    lib = generate_library(N, seed=11)  # the same library as the emulator's: the ground truth
    with emulator_process(N, seed=11) as (url, token):
        daemon = await daemon_factory(plex_url=url, token=token, sync={"page_size": 1000},
                                      plex={"timeout": 120})
        pid = daemon.proc.pid
        rss = PeakRss(pid)
        try:
            job = await sync(daemon, "full")
        finally:
            peaks = {"full sync (RSS)": rss.stop()}
        assert job["state"] == "succeeded", (job, daemon.log()[-3000:])
        assert job["added"] == N and job.get("skipped", {}) == {}

        rss = PeakRss(pid)
        try:
            job = await sync(daemon, "incremental")  # nothing changed: nothing rebuilt, nothing lost
        finally:
            peaks["incremental sync (RSS)"] = rss.stop()
        assert job["state"] == "succeeded" and (job["added"], job["updated"], job["removed"]) == (0, 0, 0), job

        rss = PeakRss(pid, "RssAnon")  # queries map the database: see the module's docstring
        try:
            stats = await daemon.call("library.stats")
            genre_counts = Counter(k for t in lib.tracks.values() for k in {fold(g) for g in lib.albums[t.album_key].genres})
            assert stats["track_count"] == N
            assert stats["album_count"] == sum(1 for k, v in lib.album_tracks.items() if v)
            assert {fold(g["name"]): g["count"] for g in stats["genres"]} == dict(genre_counts)
            top = stats["genres"][0]["name"]
            one = await daemon.call("library.stats", genres=[top])
            assert one["track_count"] == genre_counts[fold(top)]
            assert (await daemon.call("tracks.query", genres=[top], limit=0))["total"] == genre_counts[fold(top)]

            sample = random.Random(5).sample(sorted(lib.tracks), 2000)
            got = await daemon.call("tracks.get", rating_keys=sample)
            assert got["missing"] == []
            assert [cached(t) for t in got["tracks"]] == [expected(lib, k) for k in sample]
        finally:
            peaks["queries (anonymous)"] = rss.stop()
        print(f"after the queries: {tree_rss_kib(pid) / 1024:.0f} MiB RSS, of it "
              f"{tree_rss_kib(pid, 'RssFile') / 1024:.0f} MiB file pages (libraries and the mapped database)")

        print("peak memory of the daemon and all its processes: "
              + ", ".join(f"{what} {mib:.0f} MiB" for what, mib in peaks.items()))
        assert max(peaks.values()) <= RSS_LIMIT_MIB, peaks
