"""Benchmark: query latency over the socket on a large cache, idle and during a sync.

    .venv/bin/python scripts/bench_query.py [--tracks 100000] [--samples 400]

Syncs a generated library into a fresh daemon, then measures p50/p99 round-trip
latency (one client connection, sequential calls, from a separate process) of:
a filtered query (genres + decade + min_rating + exclude_live, limit 50), a text
query, a random sample of 50, and `library.stats` — first idle, then while full
syncs run back to back. Numbers go into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Rpc, daemon, emulator, percentiles  # noqa: E402


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
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    print(f"Generating a {args.tracks:,}-track library and syncing it…", flush=True)
    results = {}
    with emulator(args.tracks) as (url, token), daemon(url, token) as (_, path):
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
