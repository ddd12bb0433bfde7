"""Benchmark: what keeping the cache fresh costs, as a share of a full sync measured in the same run.

    .venv/bin/python scripts/bench_fresh.py [--tracks 100000] [--large 1000000] [--render-us-per-track 0]
                                            [--listing-leaf-counts]

For each library size, one emulator (in this process, so the script can edit its
library) and one daemon (its own process):

1. a full sync (the yardstick);
2. incremental syncs: nothing changed; 10 tracks edited; 1% of the tracks edited with
   0.1% added and 0.1% deleted; one album's genres changed;
3. one notified edit: following Plex's notifications (turned on with SIGHUP), one
   track is edited and the time from the end of the quiet period (PLEX_QUIET after
   the notification) to the daemon's ``library.changed`` event is measured.

With ``--large N`` the 10-edit and notified cases are repeated on N tracks (the
full sync is measured there too). ``--render-us-per-track`` makes every track
listing page wait that long per track, as in scripts/bench_scale.py (default 0 here:
the emulator's pre-rendered pages; with a render cost the incremental's own listing
pages wait too, and its shares of the full sync grow, see docs/PERFORMANCE.md). Before
each case the emulator renders the tracks and albums the edits changed, as it rendered
the whole library before the full sync: no case pays for rendering the full sync did not.
Prints a table; the numbers go into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Rpc, daemon, timed_job  # noqa: E402

from mediasaged.daemon import PLEX_QUIET  # noqa: E402
from tests.emulator import PlexEmulator, generate_library  # noqa: E402
from tests.emulator.render import prerender  # noqa: E402


def timed_sync(rpc: Rpc, path: Path, mode: str, emu: PlexEmulator) -> tuple[float, int]:
    """(seconds from sync.start to the job's ``sync.finished`` event, requests the emulator served
    meanwhile).

    What the case's edits changed is rendered first, as the whole library was before the
    full sync: the emulator then answers every case at the same pace (only
    ``--render-us-per-track`` stands for the time a server takes to render a track)."""
    prerender(emu.library)
    emu.request_log.clear()
    elapsed, job = timed_job(rpc, path, mode)
    if job["state"] != "succeeded":
        raise SystemExit(f"sync failed: {job}")
    return elapsed, len(emu.request_log)


def notified_edit(emu: PlexEmulator, path: Path, key: str) -> float:
    """Seconds from the end of the quiet period to library.changed, for one notified edit (the
    quiet period counted from the moment the emulator has made the edit and sends its notification)."""
    sub = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sub.connect(str(path))
    f = sub.makefile("rwb")
    f.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe",
                        "params": {"events": ["library.changed"]}}).encode() + b"\n")
    f.flush()
    f.readline()
    emu.edit_track(key, title=f"Notified edit {time.time()}")
    # From here: the edit is made and its notification on its way. The emulator's own work on
    # the edit (~0.2 ms at 100k, ~10 ms at 1M: its indexes) is Plex's, before any notification.
    t0 = time.perf_counter()
    while True:
        msg = json.loads(f.readline())
        if msg.get("method") == "library.changed":
            elapsed = time.perf_counter() - t0 - PLEX_QUIET
            break
    f.close()
    sub.close()
    return elapsed


def run(tracks: int, cases: set[str], render_us: float = 0.0, listing_counts: bool = False) -> dict:
    rng = random.Random(tracks)
    lib = generate_library(tracks, seed=1)
    lib.listing_leaf_counts = listing_counts
    prerender(lib)
    # The emulator shares this process: keep its million objects out of the garbage
    # collector's full passes (a second each at 1M tracks, in the middle of a request).
    gc.collect()
    gc.freeze()
    out: dict[str, float] = {}
    requests: dict[str, int] = {}
    with PlexEmulator(lib, token="bench-token", render_seconds_per_track=render_us / 1e6) as emu, \
            daemon(emu.url, "bench-token", plex_events=False) as (proc, path):
        rpc = Rpc(path)
        out["full"], requests["full"] = timed_sync(rpc, path, "full", emu)
        os.sync()  # the full sync's last gigabytes (at 1M) reach the disk now, not during the next case
        keys = sorted(lib.tracks, key=int)
        albums = sorted(lib.albums, key=int)
        if "unchanged" in cases:
            out["unchanged"], requests["unchanged"] = timed_sync(rpc, path, "incremental", emu)
        for k in rng.sample(keys, 10):
            emu.edit_track(k, title=f"Edited {k}")
        out["10 edited"], requests["10 edited"] = timed_sync(rpc, path, "incremental", emu)
        if "1%" in cases:
            edit = rng.sample(keys, tracks // 100)
            for k in edit:
                emu.edit_track(k, user_rating=float(rng.randrange(11)))
            for k in rng.sample([k for k in keys if k not in set(edit)], tracks // 1000):
                emu.delete_track(k)
            for i in range(tracks // 1000):
                emu.add_track(title=f"Added {i}", album_key=rng.choice(albums))
            case = "1% edited, 0.1% added, 0.1% deleted"
            out[case], requests[case] = timed_sync(rpc, path, "incremental", emu)
        if "album genres" in cases:
            emu.set_album_genres(rng.choice(albums), ["Krautrock", "Ambient", "Drone"])
            out["one album's genres"], requests["one album's genres"] = timed_sync(rpc, path, "incremental", emu)
        # follow Plex's notifications from here on
        config = path.parent / "config.yaml"
        config.write_text(config.read_text().replace("plex_events: false", "plex_events: true"))
        proc.send_signal(signal.SIGHUP)
        if not emu.wait_for_ws_clients(1, 30):
            raise SystemExit("the daemon did not follow Plex's notifications")
        samples = [notified_edit(emu, path, k) for k in rng.sample(list(emu.library.tracks), 5)]
        out["notified edit (after the quiet period), median of 5"] = sorted(samples)[2]
        rpc.close()
    return out, requests


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracks", type=int, default=100_000)
    p.add_argument("--large", type=int, default=0, help="also measure the 10-edit and notified cases at this size")
    p.add_argument("--render-us-per-track", type=float, default=0.0,
                   help="a track listing page's render time per track (as in bench_scale.py)")
    p.add_argument("--listing-leaf-counts", action="store_true",
                   help="album listings carry each album's track count, as servers of about 2012 did "
                        "(current ones, and the emulator by default, only in the albums' metadata)")
    args = p.parse_args()
    small, requests = run(args.tracks, {"unchanged", "1%", "album genres"}, args.render_us_per_track,
                          args.listing_leaf_counts)
    large = run(args.large, set(), args.render_us_per_track, args.listing_leaf_counts)[0] if args.large else {}
    print(f"| case | {args.tracks:,} tracks | % of full | requests |"
          + (f" {args.large:,} tracks | % of full | ×{args.tracks:,} |" if large else ""))
    print("|---|---|---|---|" + ("---|---|---|" if large else ""))
    for case, seconds in small.items():
        row = (f"| {case} | {seconds * 1000:,.0f} ms | {100 * seconds / small['full']:.1f}% | "
               f"{requests.get(case, '')} |")
        if large:
            big = large.get(case)
            row += (" | | |" if big is None else
                    f" {big * 1000:,.0f} ms | {100 * big / large['full']:.1f}% | {big / seconds:.2f} |")
        print(row)


if __name__ == "__main__":
    main()
