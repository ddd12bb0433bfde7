"""Benchmark: tracks.match over the socket on a large cache.

    .venv/bin/python scripts/bench_match.py [--tracks 100000[,1000000]] [--calls 200] [--candidates 200]

For each library size (one after the other, side by side in the summary),
syncs a generated library into a fresh daemon, builds references with the
evaluation set's generator (tests/match_eval.py: variants of every kind and
absent tracks, about one in six absent), and measures the round trip of
``--calls`` sequential tracks.match calls of ``--candidates`` references each
(one client connection, from this separate process): p50/p99 latency and
candidates resolved per second. Numbers go into docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from benchlib import Rpc, daemon, emulator, percentiles, wait_job  # noqa: E402

from tests.emulator.generator import generate_library  # noqa: E402
from tests.match_eval import build_cases  # noqa: E402


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(tracks: int, args: argparse.Namespace) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, candidates/s) of one library size."""
    t0 = time.perf_counter()
    cases = build_cases(generate_library(tracks, seed=args.seed), per_category=60)
    refs = [c.ref for c in cases]
    print(f"{tracks:,} tracks: {len(refs)} references ({sum(c.absent for c in cases)} absent) "
          f"built in {time.perf_counter() - t0:.0f} s", flush=True)
    rnd = random.Random(1)
    with emulator(tracks, seed=args.seed) as (url, token), daemon(url, token) as (_, sock):
        rpc = Rpc(sock)
        t0 = time.perf_counter()
        job = wait_job(rpc, rpc.call("sync.start", mode="full")["job_id"], interval=0.2)
        assert job["state"] == "succeeded", job
        print(f"synced {tracks:,} tracks in {time.perf_counter() - t0:.1f} s", flush=True)
        for _ in range(5):  # warm-up: page cache, statement cache
            rpc.call("tracks.match", candidates=rnd.sample(refs, args.candidates))
        before = load()
        samples, found = [], 0
        for _ in range(args.calls):
            batch = rnd.sample(refs, args.candidates)
            t0 = time.perf_counter()
            result = rpc.call("tracks.match", candidates=batch)
            samples.append((time.perf_counter() - t0) * 1000)
            found += sum(1 for m in result["matches"] if m["track"])
        p50, p99 = percentiles(samples)
        rate = args.calls * args.candidates / (sum(samples) / 1000)
        print(f"tracks.match on {tracks:,}, {args.candidates} candidates/call, {args.calls} calls: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {rate:,.0f} candidates/s ({found / (args.calls * args.candidates):.0%} found a "
              f"track; {before} before, {load()} after)", flush=True)
        rpc.close()
    return p50, p99, rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", default="100000", help="library sizes, comma-separated (e.g. 100000,1000000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(n) for n in args.tracks.replace("_", "").split(",")]
    figures = [(n, *run(n, args)) for n in sizes]
    print("\n| library | p50 | p99 | candidates/s |\n|---|---|---|---|")
    for n, p50, p99, rate in figures:
        print(f"| {n:,} | {p50:.1f} ms | {p99:.1f} ms | {rate:,.0f} |")
    if len(figures) > 1:
        print(f"\np99 {figures[-1][0]:,} / {figures[0][0]:,}: {figures[-1][2] / figures[0][2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
