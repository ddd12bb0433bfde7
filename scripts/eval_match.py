"""Evaluate tracks.match on the labelled set of tests/match_eval.py, through a real daemon.

    .venv/bin/python scripts/eval_match.py [--tracks 20000] [--per-category 150] [--seed 11]

Generates the emulator's library (plus studio/live/remaster versions of some
songs), serves it from the in-process emulator, syncs a real mediasaged, sends
every reference through tracks.match (default min_score) and prints precision,
recall per category and every miss as Markdown for docs/MATCHING.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.emulator.app import PlexEmulator  # noqa: E402
from tests.emulator.generator import generate_library  # noqa: E402
from tests.match_eval import Report, build_cases, with_versions  # noqa: E402
from tests.support import DaemonProcess, short_tmpdir, write_config  # noqa: E402


def describe(lib, rating_key: str | None) -> str:
    if rating_key is None:
        return "nothing"
    t = lib.expected_track(rating_key)
    return f"{t['artist']} - {t['title']} [{t['album']}]"


async def run(tracks: int, per_category: int, seed: int) -> int:
    lib = generate_library(tracks, seed=seed)
    versions = with_versions(lib, per_category)
    cases = build_cases(lib, per_category, seed=seed, versions=versions)
    directory = short_tmpdir()
    found: list[str | None] = []
    with PlexEmulator(lib, token="eval-token") as emu:
        d = DaemonProcess(directory, write_config(directory, emu.url, "eval-token", daemon={"log_level": "warning"}))
        try:
            await d.start()
            job = await d.sync()
            assert job["state"] == "succeeded", d.log()
            t0 = time.perf_counter()
            for i in range(0, len(cases), 1000):
                result = await d.call("tracks.match", candidates=[c.ref for c in cases[i:i + 1000]])
                found += [m["track"]["rating_key"] if m["track"] else None for m in result["matches"]]
            elapsed = time.perf_counter() - t0
        finally:
            await d.close()
            shutil.rmtree(directory, ignore_errors=True)
    report = Report(cases, found)
    variants = sum(1 for c in cases if not c.absent)
    print(f"library: {tracks:,} generated tracks (seed {seed}) + {len(versions)} songs in 3 versions; "
          f"{len(cases):,} references ({variants:,} variants, {len(cases) - variants:,} absent), "
          f"resolved in {elapsed:.1f} s\n")
    print(f"- variants resolved to the right track (recall): **{report.variant_recall:.2%}**")
    print(f"- absent references that matched something: **{report.absent_matched:.2%}**")
    print(f"- precision (right among all that matched a track): **{report.precision:.2%}**\n")
    print("| category | right | of |\n|---|---|---|")
    for category, (right, n) in report.by_category().items():
        print(f"| {category} | {right} | {n} |")
    print("\nMisses:\n")
    for case, got in report.misses():
        want = "nothing" if case.absent else describe(lib, sorted(case.expected)[0])
        print(f"- {case.category}: `{case.text()}` → {describe(lib, got)} (expected {want})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--per-category", type=int, default=150)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    return asyncio.run(run(args.tracks, args.per_category, args.seed))


if __name__ == "__main__":
    sys.exit(main())
