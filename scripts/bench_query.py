"""Benchmark: query latency over the socket on a large cache, idle and during a sync.

    .venv/bin/python scripts/bench_query.py [--tracks 100000] [--samples 1000]
                                            [--plex-cpus sync|any] [--no-separate-cpus]

Syncs a generated library into a fresh daemon, then measures p50/p99 round-trip
latency (one client connection, sequential calls, from a separate process) of:
a filtered query (genres + decade + min_rating + exclude_live, limit 50), a text
query, a random sample of 50, and `library.stats` — first idle, then while full
syncs run back to back. Numbers go into docs/PERFORMANCE.md.

The emulator stands in for the Plex server, which normally runs on another
machine or at least other cores. By default it is kept on the CPUs the daemon
gives its syncs (``sync.separate_cpus``, see daemon/cpus.py), so that serving
Plex pages is not counted as interference from our sync; ``--plex-cpus any``
lets it run anywhere instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Rpc, daemon, emulator, percentiles  # noqa: E402

from mediasaged.sync.cpus import split  # noqa: E402


def workloads(rpc: Rpc) -> dict[str, dict]:
    stats = rpc.call("library.stats")
    top = [g["name"] for g in stats["genres"][:3]]
    return {
        "filtered (genres+decade+rating+no live, limit 50)": {
            "method": "tracks.query",
            "params": {"genres": top, "decades": ["1990s", "2000s"], "min_rating": 6, "exclude_live": True,
                       "limit": 50},
        },
        "text query": {"method": "tracks.query", "params": {"text": "love", "limit": 50}},
        "random sample of 50": {"method": "tracks.query", "params": {"sort": "random", "limit": 50}},
        "library.stats": {"method": "library.stats", "params": {}},
    }


def measure(rpc: Rpc, load: dict, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        rpc.call(load["method"], **load["params"])
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--plex-cpus", choices=("sync", "any"), default="sync",
                        help="run the emulator on the sync's CPUs (default) or anywhere")
    parser.add_argument("--no-separate-cpus", action="store_true", help="run the daemon with sync.separate_cpus off")
    args = parser.parse_args()
    parts = split(os.sched_getaffinity(0))
    plex_cpus = parts[1] if parts and args.plex_cpus == "sync" else None
    print(f"Generating a {args.tracks:,}-track library and syncing it… (emulator on CPUs "
          f"{sorted(plex_cpus) if plex_cpus else 'any'}, separate_cpus {not args.no_separate_cpus})", flush=True)
    results = {}
    with emulator(args.tracks, cpus=plex_cpus) as (url, token), \
            daemon(url, token, separate_cpus=not args.no_separate_cpus) as (_, path):
        rpc = Rpc(path)
        job_id = rpc.call("sync.start", mode="full")["job_id"]
        while rpc.call("sync.status", job_id=job_id)["state"] == "running":
            time.sleep(0.1)
        loads = workloads(rpc)
        for name, load in loads.items():
            measure(rpc, load, 20)  # warm up
            results[name] = {"idle": percentiles(measure(rpc, load, args.samples))}
        for name, load in loads.items():
            samples: list[float] = []
            while len(samples) < args.samples:
                if not rpc.call("library.status")["is_syncing"]:
                    rpc.call("sync.start", mode="full")
                    while rpc.call("sync.status")["phase"] not in ("tracks", "indexing"):
                        time.sleep(0.01)
                batch = measure(rpc, load, 25)
                if rpc.call("library.status")["is_syncing"]:  # keep only batches run wholly during a sync
                    samples += batch
            results[name]["syncing"] = percentiles(samples)
        rpc.close()
    print()
    print("| query | idle p50 ms | idle p99 ms | during sync p50 ms | during sync p99 ms | p99 ratio |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        (i50, i99), (s50, s99) = r["idle"], r["syncing"]
        print(f"| {name} | {i50:.2f} | {i99:.2f} | {s50:.2f} | {s99:.2f} | {s99 / i99:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
