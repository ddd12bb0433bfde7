"""Benchmark: a full sync cut short at 80 % and resumed, against an uninterrupted one.

    .venv/bin/python scripts/bench_resume.py [--tracks 100000] [--cut 0.8] [--render-us-per-track 0]

One emulator process with a generated library. First an uninterrupted full sync
into an empty cache, timed from `sync.start` to the job's end. Then, into another
empty cache: a full sync killed (SIGKILL to the daemon and its sync processes, as
systemd's cgroup kill does after a crash) once `--cut` of the tracks are
committed, a fresh daemon on the same cache, and the resumed full sync, timed
from its `sync.start`, and again from the fresh daemon's start (the restart counted
too: starting Python, opening the cache, the socket ready). Prints the times and
their ratios; the figures go into docs/PERFORMANCE.md.

``--render-us-per-track`` makes each track listing page wait that long per track before
it is sent, without using a CPU, as a Plex server spends that time rendering pages (as in
bench_scale.py; 0, the default: pre-rendered pages at once, which no server reaches).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Rpc, daemon, emulator, wait_job  # noqa: E402


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(c) for c in f.read().split()]
                    found.extend(kids)
                    stack.extend(kids)
        except FileNotFoundError:
            continue
    return found


def timed_full_sync(rpc: Rpc) -> tuple[float, float, dict]:
    """(seconds from sync.start to the job's end, of which in `finish` (phase "indexing" on), the job)."""
    t0 = time.perf_counter()
    finishing: list[float] = []

    def on_poll(job: dict) -> None:
        if not finishing and job.get("phase") in ("indexing", "swapping", "done"):
            finishing.append(time.perf_counter())

    job = wait_job(rpc, rpc.call("sync.start", mode="full")["job_id"], on_poll, interval=0.02)
    end = time.perf_counter()
    return end - t0, end - (finishing[0] if finishing else end), job


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--cut", type=float, default=0.8)
    ap.add_argument("--render-us-per-track", type=float, default=0.0,
                    help="a track listing page's render time per track (0: pre-rendered pages at once)")
    args = ap.parse_args()
    with emulator(args.tracks, render_us=args.render_us_per_track) as (url, token):  # one library for both runs
        with daemon(url, token) as (_, path):
            rpc = Rpc(path)
            full, full_finish, job = timed_full_sync(rpc)
            rpc.close()
            assert job["state"] == "succeeded", job
        work = Path(tempfile.mkdtemp(prefix="msresume", dir="/tmp"))
        try:
            with daemon(url, token, work=work) as (proc, path):
                rpc = Rpc(path)
                rpc.call("sync.start", mode="full")
                while True:
                    job = rpc.call("sync.status")
                    if job["state"] != "running":
                        raise SystemExit(f"the sync ended before the cut: {job}")
                    if job["total"] and job["current"] >= args.cut * job["total"]:
                        break
                    time.sleep(0.01)
                for pid in [proc.pid, *descendants(proc.pid)]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:  # died with the daemon already
                        pass
                proc.wait()
                cut_at = job["current"]
            time.sleep(0.5)  # the killed processes are gone (reaped by init)
            restart = time.perf_counter()
            with daemon(url, token, work=work) as (_, path):
                rpc = Rpc(path)
                resumed, resumed_finish, job = timed_full_sync(rpc)
                since_restart = time.perf_counter() - restart
                rpc.close()
                assert job["state"] == "succeeded" and job["resumed_from"], job
        finally:
            subprocess.run(["rm", "-rf", str(work)])
    print(f"tracks {args.tracks:,}, render {args.render_us_per_track:g} µs a track; cut after {cut_at:,} tracks committed (resumed job {job['resumed_from']})")
    print(f"uninterrupted full sync  {full:7.1f} s   (finish {full_finish:.1f} s)")
    print(f"resumed full sync        {resumed:7.1f} s   (finish {resumed_finish:.1f} s; {resumed / full:.0%} of uninterrupted)")
    print(f"  from the daemon's start {since_restart:6.1f} s   ({since_restart / full:.0%} of uninterrupted)")
    print(f"load average at the end  {os.getloadavg()[0]:7.1f}")


if __name__ == "__main__":
    main()
