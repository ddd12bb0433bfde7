"""Benchmark: our full sync vs. the plexapi-object way, on one generated library.

    .venv/bin/python scripts/bench_sync.py [--tracks 100000]

Starts the bundled Plex emulator (its own process) with a generated library,
then, side by side in one run:

1. mediasaged's full sync (daemon + its sync worker), timed from `sync.start`
   to the job's end, while the resident memory of the daemon and all its
   children is sampled every 20 ms (the peak is reported);
2. the same library loaded "the plexapi-object way": `section.search` pages of
   1000 with `maxresults`, auto-reload off, plain Track attributes, executemany
   into SQLite (in a child process, so its import-time settings are clean).

Prints a table and the ratio; the numbers go into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Rpc, daemon, emulator, tree_rss_kib, wait_job  # noqa: E402


def our_sync(url: str, token: str) -> dict:
    with daemon(url, token) as (proc, path):
        rpc = Rpc(path)
        peak = [0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        job = wait_job(rpc, rpc.call("sync.start", mode="full")["job_id"])
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
        rpc.close()
        assert job["state"] == "succeeded", job
        return {"seconds": elapsed, "tracks": job["total"], "peak_rss_mib": peak[0] / 1024}


def plexapi_baseline(url: str, token: str) -> dict:
    """Run ``--baseline`` in a fresh interpreter with auto-reload off."""
    env = {**os.environ, "PLEXAPI_PLEXAPI_AUTORELOAD": "0"}
    out = subprocess.run([sys.executable, __file__, "--baseline", url, token], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_main(url: str, token: str) -> None:
    import sqlite3

    from plexapi.server import PlexServer

    t0 = time.perf_counter()
    server = PlexServer(url, token, timeout=60)
    section = server.library.section("Music")
    total = section.totalViewSize(libtype="track")
    db_path = Path(tempfile.mkdtemp(prefix="msbase")) / "baseline.db"
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("""CREATE TABLE tracks (rating_key TEXT PRIMARY KEY, title TEXT, artist TEXT, album_artist TEXT,
                  album TEXT, album_rating_key TEXT, duration_ms INT, user_rating REAL, track_number INT,
                  disc_number INT, view_count INT, last_viewed_at INT, added_at INT, updated_at INT)""")

    def ts(value):
        return int(value.timestamp()) if value else None

    loaded = 0
    for start in range(0, total, 1000):
        page = section.search(libtype="track", container_start=start, container_size=1000, maxresults=1000)
        rows = [(t.ratingKey, t.title, t.originalTitle or t.grandparentTitle, t.grandparentTitle, t.parentTitle,
                 t.parentRatingKey, t.duration, t.userRating, t.index, t.parentIndex, t.viewCount or 0,
                 ts(t.lastViewedAt), ts(t.addedAt), ts(t.updatedAt)) for t in page]
        db.executemany("INSERT OR REPLACE INTO tracks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.commit()
        loaded += len(rows)
    elapsed = time.perf_counter() - t0
    db.close()
    print(json.dumps({"seconds": elapsed, "tracks": loaded}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--baseline", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        baseline_main(*args.baseline)
        return 0
    print(f"Generating a {args.tracks:,}-track library in the emulator…", flush=True)
    with emulator(args.tracks) as (url, token):
        ours = our_sync(url, token)
        print(f"mediasaged full sync: {ours['seconds']:.1f} s", flush=True)
        theirs = plexapi_baseline(url, token)
        print(f"plexapi objects:      {theirs['seconds']:.1f} s", flush=True)
    ratio = theirs["seconds"] / ours["seconds"]
    print()
    print("| path | tracks | seconds | tracks/s |")
    print("|---|---|---|---|")
    for name, r in (("mediasaged full sync", ours), ("plexapi Track objects + executemany", theirs)):
        print(f"| {name} | {r['tracks']:,} | {r['seconds']:.1f} | {r['tracks'] / r['seconds']:,.0f} |")
    print(f"\nspeed-up: {ratio:.1f}x   daemon peak RSS (all processes): {ours['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
