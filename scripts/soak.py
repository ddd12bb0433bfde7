"""Soak: the daemon against a changing, failing Plex, with kills, for a while. Not in CI.

    .venv/bin/python scripts/soak.py [--minutes 10] [--tracks 3000] [--seed 1]

Runs the Plex emulator in this process and the real mediasaged as a child (with
``sync.plex_events`` on). Until the time is up, one action at a time, at random:

* the emulator's library changes (tracks added, deleted, edited; album genres;
  artist renames), which Plex's notifications turn into incremental syncs;
* Plex's notification socket drops, and the library changes before it is back
  (Plex does not notify those changes again: the daemon's catch-up sync reads them);
* a fault is injected into Plex's pages (500, drop, truncate, cut, short, slow)
  and a full sync started: it must fail with the fault's cause, or survive it;
* a sync's worker (or its reader) is killed with SIGKILL: the job must fail
  within 2 s with ``... died: signal 9``;
* once, halfway, a sync's worker is stopped (SIGSTOP) and left so: the daemon must
  find it stuck and fail the job (``sync.stalled_after``; here the floor, ~66 s);
* the daemon is killed with SIGKILL mid-sync and started again: the interrupted
  job must say so and the library must be the one before.

Meanwhile clients query (``tracks.query``, ``library.stats``, ``library.status``)
on their own connections and one subscribes to every event. The daemon's
memory is sampled throughout. At the end, faults are cleared, and an incremental
sync, then a full one, run: after each the cache must equal the emulator's library
exactly (no missing, phantom or wrong track; the incremental one's figures are
``incremental_*``). Prints the figures as JSON (docs/RELIABILITY.md has a run's).
Exit status 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from benchlib import Rpc, tree_rss_kib  # noqa: E402
from tests.emulator.app import PlexEmulator  # noqa: E402
from tests.emulator.generator import generate_library  # noqa: E402
from tests.mirror import expected_library  # noqa: E402

FAULTS = ("500", "drop", "truncate", "cut", "short", "slow")
STUCK_WITHIN = 90  # seconds from a SIGSTOP to the failed job: the 66 s floor, a 13 s sample, slack
CAUSE_WORDS = {"500": ["500"], "drop": ["connection", "closed", "aborted", "reset"], "truncate": ["xml", "parse"],
               "cut": ["connection", "incomplete", "xml", "closed", "read", "chunked"],
               "short": ["short", "fewer", "items", "count", "missing"], "slow": ["timed out", "timeout"]}


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(tempfile.mkdtemp(prefix="mssoak", dir="/tmp"))
        self.emu = PlexEmulator(generate_library(args.tracks, seed=args.seed), token="soak-token",
                                slow_seconds=8.0).start()
        self.config = self.work / "config.yaml"
        self.config.write_text(json.dumps({
            "plex": {"url": self.emu.url, "token": "soak-token", "library": "Music", "timeout": 3},
            "cache": {"path": "cache.db"},
            "sync": {"interval": "off", "stale_after": "off", "retries": 1, "page_size": 500, "plex_events": True,
                     "stalled_after": 1},  # the floor decides: (1 + 1) x 3 s + 60 s
            "daemon": {"socket": "d.sock", "log_level": "info"},
        }))
        self.config.chmod(0o600)
        self.sock = self.work / "d.sock"
        self.log = open(self.work / "daemon.log", "ab")
        self.proc: subprocess.Popen | None = None
        self.figures = {"syncs_started": 0, "syncs_succeeded": 0, "syncs_failed": 0, "syncs_cancelled": 0,
                        "faults_injected": 0, "faults_reported": 0, "faults_survived": 0, "library_edits": 0,
                        "worker_kills": 0, "worker_stops": 0, "reader_kills": 0, "daemon_kills": 0,
                        "resumes_refused": 0, "socket_drops": 0, "queries": 0,
                        "query_errors": 0, "queries_refused_while_restarting": 0, "events_received": 0,
                        "problems": []}
        self.rss: list[tuple[float, int, int]] = []  # (seconds, VmRSS KiB, RssAnon KiB) of the daemon
        self.stop = threading.Event()

    # -- the daemon ------------------------------------------------------------------

    def start_daemon(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "mediasaged", "--config", str(self.config)],
                                     stdout=self.log, stderr=self.log, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                Rpc(self.sock).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"mediasaged did not start; see {self.work / 'daemon.log'}")
                time.sleep(0.05)

    def rpc(self, method: str, **params):
        conn = Rpc(self.sock)
        try:
            return conn.call(method, **params)
        finally:
            conn.close()

    def children(self, pid: int) -> list[int]:
        out = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
        except OSError:
            pass
        return out

    def worker_pids(self) -> list[int]:
        """The daemon's sync workers: the job's, and a spare started ahead for the next incremental job."""
        out = []
        for pid in self.children(self.proc.pid):
            try:
                if b"mediasaged.sync.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(pid)
            except OSError:
                continue
        return out

    def wait_job(self, job_id: int, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.rpc("sync.status", job_id=job_id)
            if job["state"] != "running":
                return job
            time.sleep(0.05)
        self.problem(f"job {job_id} still running after {timeout}s")
        return job

    def wait_idle(self) -> None:
        """Let a running sync (e.g. one Plex's notifications started) end first."""
        deadline = time.monotonic() + 120
        while self.rpc("library.status")["is_syncing"] and time.monotonic() < deadline:
            time.sleep(0.05)

    def start_sync(self, mode: str = "full") -> int | None:
        self.wait_idle()
        start = self.rpc("sync.start", mode=mode)
        if not start["started"]:
            return None
        self.figures["syncs_started"] += 1
        return start["job_id"]

    def count(self, job: dict) -> None:
        self.figures[f"syncs_{job['state']}"] = self.figures.get(f"syncs_{job['state']}", 0) + 1

    def problem(self, text: str) -> None:
        self.figures["problems"].append(f"{datetime.now():%H:%M:%S} {text}")
        print("PROBLEM:", text, flush=True)

    # -- actions ---------------------------------------------------------------------

    def edit_library(self) -> None:
        lib, emu, rng = self.emu.library, self.emu, self.rng
        keys = sorted(lib.tracks)
        # deletions notified with the item's type, or with -1 as current servers do (DESIGN.md)
        lib.deleted_entry_type = rng.choice([None, -1])
        for _ in range(rng.randint(1, 20)):
            what = rng.random()
            if what < 0.35:
                some = lib.tracks[rng.choice(keys)]
                emu.add_track(title=f"Soak {rng.randrange(10**6)}", album_key=some.album_key)
            elif what < 0.55 and len(keys) > 100:
                key = rng.choice(keys)
                keys.remove(key)
                emu.delete_track(key)
            elif what < 0.7:
                emu.edit_track(rng.choice(keys), title=f"Edited {rng.randrange(10**6)}",
                               user_rating=float(rng.randint(0, 10)), view_count=rng.randint(0, 99))
            elif what < 0.85:  # as Plex records them: no updatedAt moves, nothing is notified
                if rng.random() < 0.5:
                    emu.rate_track(rng.choice(keys), rng.choice([None, float(rng.randint(0, 10))]))
                else:
                    emu.play_track(rng.choice(keys))
            elif what < 0.95:
                emu.set_album_genres(lib.tracks[rng.choice(keys)].album_key,
                                     rng.sample(["Rock", "Jazz", "Pop", "Ambient", "Folk", "Soul"], rng.randint(0, 3)))
            else:
                emu.edit_artist(lib.albums[lib.tracks[rng.choice(keys)].album_key].artist_key, title=f"Renamed {rng.randrange(10**6)}")
            self.figures["library_edits"] += 1

    def drop_socket(self) -> None:
        """Plex drops the notification socket and the library changes before it is back: nobody
        is told (the emulator's listeners are off for the edits)."""
        library = self.emu.library
        listeners, library.listeners = library.listeners, []
        try:
            self.emu.drop_websockets()
            self.edit_library()
        finally:
            library.listeners = listeners
        self.figures["socket_drops"] += 1

    def fault(self) -> None:
        kind = self.rng.choice(FAULTS)
        pages = max(1, len(self.emu.library.tracks) // 500)
        self.emu.inject_fault(kind, page=self.rng.randrange(pages), times=self.rng.choice([1, 10]))
        self.figures["faults_injected"] += 1
        job_id = self.start_sync("full")
        if job_id is None:  # a notified sync began first: the fault must not outlive this action
            self.emu.clear_faults()
            return
        job = self.wait_job(job_id)
        self.emu.clear_faults()
        self.count(job)
        if job["state"] == "succeeded":
            self.figures["faults_survived"] += 1  # within the retries, or a page the sync never needed
        elif job["state"] == "failed":
            error = (job["error"] or "").lower()
            if "internal error" in error or not error:
                self.problem(f"fault {kind}: unclear error {job['error']!r}")
            else:
                self.figures["faults_reported"] += 1

    def kill_sync_process(self, which: str, sig: int = signal.SIGKILL) -> None:
        self.emu.slow_seconds = 8.0
        self.emu.inject_fault("slow", page=self.rng.randrange(1, 4), times=1)
        # A spare worker alive now is not this job's: a full sync discards it (after sync.start has
        # answered) and starts a fresh worker. Killing the spare would leave the job untouched.
        spares = set(self.worker_pids())
        job_id = self.start_sync("full")
        if job_id is None:
            self.emu.clear_faults()
            return
        deadline = time.monotonic() + 10
        victim = None
        while victim is None and time.monotonic() < deadline:
            worker = next((pid for pid in self.worker_pids() if pid not in spares), None)
            if worker and which == "reader":
                victim = next(iter(self.children(worker)), None)
            else:
                victim = worker
            time.sleep(0.01)
        time.sleep(self.rng.uniform(0, 1.5))  # somewhere in the sync
        if victim is None:
            self.problem(f"no {which} process found")
            return
        try:
            os.kill(victim, sig)
        except ProcessLookupError:
            pass
        t0 = time.monotonic()
        stuck = sig == signal.SIGSTOP
        self.figures["worker_stops" if stuck else f"{which}_kills"] += 1
        job = self.wait_job(job_id, timeout=STUCK_WITHIN + 10 if stuck else 10)
        self.emu.clear_faults()
        self.count(job)
        if job["state"] == "succeeded":  # the process had done its part (a reader at its last page)
            self.figures["kills_after_the_work"] = self.figures.get("kills_after_the_work", 0) + 1
        if job["state"] == "failed":
            error = job["error"] or ""
            if error.startswith("the resumed sync holds"):
                # It resumed a partial slot cut by a daemon kill, Plex lost tracks meanwhile, and the
                # deletion check could not tell which: it fails by design (README, "Recovering by
                # itself"), here before the kill meant for it landed.
                self.figures["resumes_refused"] += 1
                return
            if stuck:
                if time.monotonic() - t0 > STUCK_WITHIN or not error.startswith("the sync worker did nothing"):
                    self.problem(f"stopped {which}: after {time.monotonic() - t0:.1f}s, error {error!r}")
                else:
                    self.figures["stuck_workers_stopped"] = self.figures.get("stuck_workers_stopped", 0) + 1
                    self.figures["stuck_worker_seconds"] = round(time.monotonic() - t0, 1)
                return
            if time.monotonic() - t0 > 2.5:
                self.problem(f"{which} kill: the job took {time.monotonic() - t0:.1f}s to fail")
            if "died: signal 9" not in error and "stopped unexpectedly" not in error:
                self.problem(f"{which} kill: error {error!r}")

    def kill_daemon(self) -> None:
        before = self.rpc("library.status")
        job_id = self.start_sync("full") if self.rng.random() < 0.7 else None
        time.sleep(self.rng.uniform(0, 1.0))
        self.proc.kill()
        self.proc.wait()
        self.figures["daemon_kills"] += 1
        self.start_daemon()
        after = self.rpc("library.status")
        if job_id is not None:
            job = self.rpc("sync.status", job_id=job_id)
            if job["state"] == "running":
                self.problem(f"job {job_id} still running after the daemon's restart")
        if after["generation"] < before["generation"] or (after["synced_at"] is None) != (before["synced_at"] is None):
            self.problem(f"library went back after a daemon kill: {before} -> {after}")

    # -- clients and sampling --------------------------------------------------------

    def query_loop(self, seed: int) -> None:
        rng = random.Random(seed)
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or Rpc(self.sock)
                method = rng.choice(["tracks.query", "tracks.query", "library.stats", "library.status"])
                params = {}
                if method != "library.status":
                    params = rng.choice([{}, {"genres": ["Rock"]}, {"decades": ["1990s"], "min_rating": 6},
                                         {"text": "love"}, {"sort": "random", "limit": 20}])
                try:
                    conn.call(method, **params)
                except RuntimeError as exc:
                    if exc.args[0].get("code") != -32001:  # not_synced before the first sync
                        self.figures["query_errors"] += 1
                        self.problem(f"{method} {params}: {exc.args[0]}")
                self.figures["queries"] += 1
            except (OSError, ValueError):
                self.figures["queries_refused_while_restarting"] += 1
                conn = None
                time.sleep(0.1)
            time.sleep(0.01)

    def subscriber(self) -> None:
        while not self.stop.is_set():
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(self.sock))
                s.settimeout(1.0)
                f = s.makefile("rwb")
                f.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": {
                    "events": ["sync.started", "sync.progress", "sync.finished", "library.changed"]}}).encode() + b"\n")
                f.flush()
                while not self.stop.is_set():
                    try:
                        line = f.readline()
                    except socket.timeout:
                        continue
                    if not line:
                        break
                    if b'"method"' in line:
                        self.figures["events_received"] += 1
                s.close()
            except OSError:
                time.sleep(0.1)

    def sampler(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set():
            if self.proc is not None and self.proc.poll() is None:
                try:
                    with open(f"/proc/{self.proc.pid}/status") as f:
                        status = dict(line.split(":", 1) for line in f if ":" in line)
                    # (VmRSS, RssAnon): the daemon's readers map the database, so VmRSS grows towards
                    # its size as queries touch it; a leak shows in the anonymous part
                    self.rss.append((time.monotonic() - t0, int(status["VmRSS"].split()[0]),
                                     int(status["RssAnon"].split()[0])))
                    self.figures["peak_tree_rss_mib"] = max(self.figures.get("peak_tree_rss_mib", 0),
                                                            round(tree_rss_kib(self.proc.pid) / 1024, 1))
                except (OSError, KeyError, ValueError):
                    pass
            time.sleep(0.2)

    # -- the run ---------------------------------------------------------------------

    def run(self) -> int:
        t_end = time.monotonic() + self.args.minutes * 60
        self.start_daemon()
        job = self.wait_job(self.start_sync("full"))
        self.count(job)
        threads = [threading.Thread(target=self.query_loop, args=(i,), daemon=True) for i in range(3)]
        threads += [threading.Thread(target=self.subscriber, daemon=True),
                    threading.Thread(target=self.sampler, daemon=True)]
        for t in threads:
            t.start()
        actions = [(self.edit_library, 4), (self.drop_socket, 1), (self.fault, 3),
                   (lambda: self.kill_sync_process("worker"), 2),
                   (lambda: self.kill_sync_process("reader"), 1), (self.kill_daemon, 1)]
        halfway = time.monotonic() + self.args.minutes * 30
        while time.monotonic() < t_end:
            action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
            if halfway is not None and time.monotonic() > halfway:  # once a run: it waits out the floor
                action, halfway = (lambda: self.kill_sync_process("worker", signal.SIGSTOP)), None
            try:
                action()
            except (OSError, RuntimeError, KeyError) as exc:
                self.problem(f"{getattr(action, '__name__', 'action')}: {exc!r}")
            time.sleep(self.rng.uniform(0.2, 1.5))
        self.emu.clear_faults()
        # A last rating and play, which Plex neither stamps with updatedAt nor notifies (the run's own
        # may all lie before its last full sync): the incremental sync below must read them too.
        keys = sorted(self.emu.library.tracks)
        rated = self.rng.choice(keys)
        self.emu.rate_track(rated, 10.0 if self.emu.library.tracks[rated].user_rating != 10.0 else 2.0)
        self.emu.play_track(self.rng.choice(keys))
        # Every edit of the run is stamped: an incremental sync alone must bring the cache level
        # with the emulator, whatever the failed, cut and notified syncs before it left behind.
        self.check_mirror(self.wait_job(self.start_until_started("incremental")), "incremental_")
        job = self.wait_job(self.start_sync("full") or self.rpc("sync.status")["job_id"])
        self.count(job)
        self.stop.set()
        for t in threads:
            t.join(5)
        jobs = self.rpc("sync.history", limit=1000)["jobs"]
        self.figures["syncs_all_triggers"] = len(jobs)  # with the incremental ones Plex's notifications started
        self.figures["syncs_by_trigger"] = {t: sum(1 for j in jobs if j["trigger"] == t)
                                            for t in sorted({j["trigger"] for j in jobs})}
        self.check_mirror(job, "")
        self.report_memory()
        return self.finish()

    def start_until_started(self, mode: str) -> int:
        """A sync of ``mode`` that starts after every edit (one Plex's notifications start first is
        waited for, and the start asked again)."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job_id = self.start_sync(mode)
            if job_id is not None:
                return job_id
        raise RuntimeError(f"no {mode} sync could start within 300 s")

    def check_mirror(self, job: dict, figure: str) -> None:
        """The cache against the emulator after ``job``, as figures named ``figure`` + ..."""
        which = f"the {figure.rstrip('_') or 'final'} sync"
        if job["state"] != "succeeded":
            self.problem(f"{which} did not succeed: {job}")
            return
        expected = expected_library(self.emu)
        cached = {}
        offset = 0
        while True:
            page = self.rpc("tracks.query", limit=1000, offset=offset)
            for t in page["tracks"]:
                t = dict(t)
                for key in ("last_viewed_at", "added_at", "updated_at"):
                    v = t[key]
                    t[key] = None if v is None else int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp())
                cached[t["rating_key"]] = t
            offset += len(page["tracks"])
            if not page["tracks"] or offset >= page["total"]:
                break
        missing = expected.keys() - cached.keys()
        phantom = cached.keys() - expected.keys()
        wrong = [k for k in expected.keys() & cached.keys() if expected[k] != cached[k]]
        self.figures.update({f"{figure}final_tracks": len(cached), f"{figure}emulator_tracks": len(expected),
                             f"{figure}lost_tracks": len(missing), f"{figure}phantom_tracks": len(phantom),
                             f"{figure}wrong_tracks": len(wrong)})
        if missing or phantom or wrong:
            self.problem(f"cache differs after {which}: {len(missing)} missing, {len(phantom)} phantom, "
                         f"{len(wrong)} wrong")

    def report_memory(self) -> None:
        if len(self.rss) < 10:
            return
        span = self.rss[-1][0]

        def median(values: list[int]) -> float:
            return sorted(values)[len(values) // 2] / 1024

        first = [sample for sample in self.rss if sample[0] < span * 0.25]
        last = [sample for sample in self.rss if sample[0] > span * 0.75]
        if first and last:
            quarters = {}
            for i, name in ((1, "rss"), (2, "anon")):
                quarters[name] = a, b = median([s[i] for s in first]), median([s[i] for s in last])
                self.figures.update({f"daemon_{name}_first_quarter_mib": round(a, 1),
                                     f"daemon_{name}_last_quarter_mib": round(b, 1)})
            a, b = quarters["anon"]  # anonymous memory: what a leak would grow
            if b > a * 1.5 + 20:
                self.problem(f"daemon memory grew: median {a:.0f} MiB -> {b:.0f} MiB anonymous")

    def finish(self) -> int:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.problem("the daemon did not stop within 30 s of SIGTERM")
                self.proc.kill()
        self.emu.stop()
        self.figures["minutes"] = self.args.minutes
        self.figures["library_tracks_at_start"] = self.args.tracks
        print(json.dumps(self.figures, indent=2))
        if not self.figures["problems"]:
            subprocess.run(["rm", "-rf", str(self.work)])
        else:
            print(f"kept {self.work} (daemon.log)")
        return 1 if self.figures["problems"] else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--tracks", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    return Soak(p.parse_args()).run()


if __name__ == "__main__":
    sys.exit(main())
