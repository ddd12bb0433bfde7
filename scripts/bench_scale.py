"""Benchmark: the same library at several sizes (default 100k and 1M), side by side in one run.

    .venv/bin/python scripts/bench_scale.py [--sizes 100000,1000000] [--samples 300]
                                            [--render-us-per-track 75] [--concurrent-pages N]
                                            [--emulator-cpu N] [--baseline-max 100000] [--repeat 1] [--phases]

For each size: generates the library (same seed) in the bundled Plex emulator,
run in this process on its own thread, and measures against a fresh mediasaged
over its socket:

- the fetch-only floor: a plain client (its own process, `requests`, one
  connection) paging the emulator's whole track listing in sequence, 1000 a page;
- a full sync, `sync.start` to the job's end (and its rate);
- the peak resident memory of the daemon and all its processes, sampled every
  20 ms over the full and the incremental sync;
- an incremental sync after 10 tracks were edited in the emulator;
- p99 latency (one client, sequential calls) of a filtered query (2 genres +
  decade + min_rating + exclude_live, limit 50), the text query "love" (limit
  50), a random sample of 50 and `library.stats` with one genre; and the text
  query of each title word of the library asked once ("first ask": a total is
  remembered for the snapshot, so "love" asked again costs only its page),
  words of up to four letters (prefix-indexed, as "love") apart from longer ones;
- at sizes up to --baseline-max, the plexapi-object path (scripts/bench_sync.py).

``--render-us-per-track`` (default 75) makes each track listing page wait that long
per track before it is sent, without using a CPU: a Plex server spends that time
rendering pages on its own threads. 75 µs is the issue's measure (an independent
emulator served the 100 pages of a 100k library in ~7.5 s, in sequence); with 0 the
emulator serves its pre-rendered bytes at once (a floor of ~0.2 s per 100k here,
which no Plex server reaches).
The numbers go into docs/PERFORMANCE.md ("Scale").
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_sync import plexapi_baseline  # noqa: E402
from benchlib import Rpc, daemon, percentiles, tree_rss_kib, wait_job  # noqa: E402
from tests.emulator.generator import _WORDS as TITLE_WORDS  # noqa: E402

SHORT_WORDS = [w for w in TITLE_WORDS if len(w) <= 4]  # as "love": the FTS index has a prefix index for them
LONG_WORDS = [w for w in TITLE_WORDS if len(w) > 4]

TOKEN = "bench-scale-token"


def fetch_floor_main(url: str, token: str, page_size: int) -> None:
    """--floor: page the whole track listing in sequence, as plainly as possible; print seconds."""
    import re

    import requests

    session = requests.Session()
    headers = {"X-Plex-Token": token, "Accept": "application/xml"}
    t0 = time.perf_counter()
    start, total, received = 0, None, 0
    while total is None or start < total:
        resp = session.get(f"{url}/library/sections/3/all", params={"type": "10"},
                           headers={**headers, "X-Plex-Container-Start": str(start),
                                    "X-Plex-Container-Size": str(page_size)})
        resp.raise_for_status()
        body = resp.content
        received += len(body)
        if total is None:
            total = int(re.search(rb'totalSize="(\d+)"', body).group(1))
        start += page_size
    print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": received}))


def fetch_floor(url: str, page_size: int = 1000) -> dict:
    out = subprocess.run([sys.executable, __file__, "--floor", url, TOKEN, str(page_size)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


class PeakRss:
    """Samples the resident memory of a process tree every 20 ms while running."""

    def __init__(self, pid: int):
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed_sync(rpc: Rpc, mode: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    job = wait_job(rpc, rpc.call("sync.start", mode=mode)["job_id"])
    elapsed = time.perf_counter() - t0
    if job["state"] != "succeeded" or job["mode"] != mode:
        raise SystemExit(f"{mode} sync did not succeed as {mode}: {job}")
    return elapsed, job


def workloads(rpc: Rpc) -> dict[str, tuple[str, dict]]:
    stats = rpc.call("library.stats")
    top = [g["name"] for g in stats["genres"][:2]]
    return {
        "filtered": ("tracks.query", {"genres": top, "decades": ["1990s"], "min_rating": 6,
                                      "exclude_live": True, "limit": 50}),
        "text": ("tracks.query", {"text": "love", "limit": 50}),
        "random": ("tracks.query", {"sort": "random", "limit": 50}),
        "stats": ("library.stats", {"genres": [top[0]]}),
    }


def first_asks(rpc: Rpc, method: str, each: list[dict]) -> tuple[float, float]:
    """(p99, p50) of ``each`` asked once: the daemon remembers a total for the snapshot, so a
    query asked again (the repeated workloads above) costs its page only; a first ask counts."""
    times = []
    for params in each:
        t0 = time.perf_counter()
        rpc.call(method, **params)
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)[::-1]


def p99(rpc: Rpc, method: str, params: dict, samples: int) -> tuple[float, float]:
    for _ in range(5):  # warm the page cache and the reader connections
        rpc.call(method, **params)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        rpc.call(method, **params)
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times)[::-1]  # (p99, p50)


def measure(n: int, args: argparse.Namespace) -> dict:
    from tests.emulator import PlexEmulator, generate_library
    from tests.emulator.render import prerender

    t0 = time.perf_counter()
    lib = generate_library(n, seed=args.seed)
    prerender(lib)
    lib.track_order()
    print(f"[{n:,}] library generated in {time.perf_counter() - t0:.0f} s", flush=True)
    out: dict = {"tracks": n}
    with PlexEmulator(lib, token=TOKEN, render_seconds_per_track=args.render_us_per_track / 1e6) as emu:
        if args.emulator_cpu is not None:
            emu.pin({args.emulator_cpu})
        floors = []
        # No notification listener: the edits below would start syncs of their own.
        sync: dict = {"plex_events": False}
        if args.concurrent_pages:
            sync["concurrent_pages"] = args.concurrent_pages
        if args.shared_cpus:
            sync["separate_cpus"] = False
        with daemon(emu.url, TOKEN, log_level="info" if args.phases else "warning", **sync) as (proc, path):
            rpc = Rpc(path)
            fulls = []
            with PeakRss(proc.pid) as rss:
                for _ in range(args.repeat):
                    floors.append(fetch_floor(emu.url)["seconds"])
                    print(f"[{n:,}] fetch-only floor {floors[-1]:.1f} s", flush=True)
                    fulls.append(timed_sync(rpc, "full")[0])
                    print(f"[{n:,}] full sync {fulls[-1]:.1f} s", flush=True)
                for rk in list(lib.tracks)[:: max(1, n // 10)][:10]:
                    emu.edit_track(rk, title=f"Edited {rk}", user_rating=8.0)
                try:
                    out["incremental_s"], job = timed_sync(rpc, "incremental")
                    print(f"[{n:,}] incremental sync {out['incremental_s']:.1f} s ({job['updated']} updated)",
                          flush=True)
                except SystemExit as exc:  # report it, measure the rest
                    print(f"[{n:,}] {exc}", flush=True)
                    out["incremental_s"] = float("nan")
            out.update(floor_s=min(floors), full_s=min(fulls), floors=floors, fulls=fulls,
                       peak_rss_mib=rss.peak_kib / 1024)
            for name, (method, params) in workloads(rpc).items():
                out[f"{name}_p99"], out[f"{name}_p50"] = p99(rpc, method, params, args.samples)
                print(f"[{n:,}] {name} p99 {out[f'{name}_p99']:.2f} ms (p50 {out[f'{name}_p50']:.2f})", flush=True)
            # every title word of the generated library, each about as broad as "love", asked once:
            # up to 4 letters a word streams from a prefix index, a longer one FTS5 merges first
            for key, words in (("text_first", SHORT_WORDS), ("text_long_first", LONG_WORDS)):
                out[f"{key}_p99"], out[f"{key}_p50"] = first_asks(
                    rpc, "tracks.query", [{"text": word, "limit": 50} for word in words])
                print(f"[{n:,}] {key} p99 {out[f'{key}_p99']:.2f} ms (p50 {out[f'{key}_p50']:.2f})", flush=True)
            rpc.close()
        if n <= args.baseline_max:
            out["plexapi_s"] = plexapi_baseline(emu.url, TOKEN)["seconds"]
            print(f"[{n:,}] plexapi objects {out['plexapi_s']:.1f} s", flush=True)
    del lib
    gc.collect()
    return out


def table(results: list[dict]) -> str:
    small, big = results[0], results[-1]
    head = " | ".join(f"{r['tracks']:,}" for r in results)
    lines = [f"| measure | {head} | goal |", "|---" * (len(results) + 2) + "|"]

    def row(name: str, cells: list[str], goal: str) -> None:
        lines.append(f"| {name} | {' | '.join(cells)} | {goal} |")

    rate = [r["tracks"] / r["full_s"] for r in results]
    row("fetch-only floor (plain client, in sequence)", [f"{r['floor_s']:.1f} s" for r in results], "")
    row("full sync", [f"{r['full_s']:.1f} s ({r['full_s'] / r['floor_s']:.2f}× floor)" for r in results],
        "≤ 1.5× the floor at 100k")
    row("full sync rate", [f"{x:,.0f} tracks/s" for x in rate],
        f"≥ 90% of the first: {rate[-1] / rate[0]:.0%}")
    if "plexapi_s" in small:
        row("plexapi-object path", [f"{r['plexapi_s']:.1f} s ({r['plexapi_s'] / r['full_s']:.1f}× ours)"
                                    if "plexapi_s" in r else "–" for r in results], "≥ 4× ours")
    row("peak RSS, daemon + all its processes", [f"{r['peak_rss_mib']:.0f} MiB" for r in results],
        "≤ 150 MiB, flat")
    for key, name in (("incremental_s", "incremental, 10 tracks edited"),):
        row(name, [f"{r[key]:.1f} s" for r in results], f"≤ 2× the first: {big[key] / small[key]:.1f}×")
    for key, name in (("filtered_p99", "p99 filtered (2 genres + decade + min_rating + exclude_live, 50)"),
                      ("text_p99", 'p99 text "love", limit 50'),
                      ("text_first_p99", f"p99 text, first ask of each of the {len(SHORT_WORDS)} title words "
                                         "of up to 4 letters, limit 50"),
                      ("text_long_first_p99", f"p99 text, first ask of each of the {len(LONG_WORDS)} longer "
                                              "title words, limit 50"),
                      ("random_p99", "p99 random sample of 50"),
                      ("stats_p99", "p99 library.stats, one genre")):
        goal = f"≤ 2× the first: {big[key] / small[key]:.1f}×"
        if key.startswith("text"):
            goal += ", ≤ 10 ms at 100k"
        row(name, [f"{r[key]:.2f} ms (p50 {r[key[:-3] + 'p50']:.2f})" for r in results], goal)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="floor + full sync pairs per size (best is shown)")
    parser.add_argument("--render-us-per-track", type=float, default=75.0,
                        help="a track page's render time per track (0: pre-rendered pages at once)")
    parser.add_argument("--concurrent-pages", type=int, default=None, help="sync.concurrent_pages (default: its default)")
    parser.add_argument("--shared-cpus", action="store_true",
                        help="sync.separate_cpus: false (the sync may use every CPU, as on an idle machine)")
    parser.add_argument("--emulator-cpu", type=int, default=None,
                        help="run the emulator's serving thread on this CPU only (default: wherever the OS puts it)")
    parser.add_argument("--baseline-max", type=int, default=100_000)
    parser.add_argument("--phases", action="store_true",
                        help="the daemon logs at info level: each sync's phase log (where its time went) on stderr")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--floor", nargs=3, metavar=("URL", "TOKEN", "PAGE_SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        fetch_floor_main(args.floor[0], args.floor[1], int(args.floor[2]))
        return 0
    results = [measure(int(s), args) for s in args.sizes.split(",")]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print()
    pages = args.concurrent_pages or "default"
    where = "any CPU" if args.emulator_cpu is None else f"CPU {args.emulator_cpu}"
    print(f"render {args.render_us_per_track:g} µs a track; sync.concurrent_pages {pages}; emulator on {where}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
