"""While a sync runs, the sync's processes and the daemon's threads use separate CPUs."""

from __future__ import annotations

import os

import pytest

from mediasaged.sync.cpus import split
from tests.processes import children
from tests.support import start_stalled_sync, wait_until

MINE = frozenset(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(MINE) < 2, reason="needs at least two usable CPUs")


@pytest.mark.parametrize(("allowed", "expected"), [
    ((), None),
    ((3,), None),
    ((0, 1), ({0}, {1})),
    ((0, 1, 2), ({0, 1}, {2})),
    (range(8), ({0, 1, 2, 3}, {4, 5, 6, 7})),
    ((9, 2, 5, 2), ({2, 5}, {9})),
])
def test_split_gives_the_sync_the_upper_half_and_the_daemon_the_rest(allowed, expected):
    assert split(allowed) == (None if expected is None else tuple(map(frozenset, expected)))


def threads(pid: int) -> dict[int, frozenset[int]]:
    """The CPU affinity of every thread of ``pid``."""
    out = {}
    for tid in map(int, os.listdir(f"/proc/{pid}/task")):
        try:
            out[tid] = frozenset(os.sched_getaffinity(tid))
        except ProcessLookupError:  # the thread ended meanwhile
            pass
    return out


def sync_processes(daemon_pid: int) -> list[int]:
    """The sync worker and everything it started (its reader process)."""
    found, stack = [], children(daemon_pid)
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack += children(pid)
    return found


async def worker_and_reader(daemon_pid: int) -> list[int] | None:
    found = sync_processes(daemon_pid)
    return found if len(found) >= 2 else None


@two_cpus
async def test_a_sync_runs_on_its_own_cpus_and_the_daemon_gets_all_back(synced_daemon, plex_emulator):
    daemon_cpus, sync_cpus = split(MINE)
    pid = synced_daemon.proc.pid
    assert set(threads(pid).values()) == {MINE}  # idle: every thread may use every CPU
    start = await start_stalled_sync(synced_daemon, plex_emulator)

    workers = await wait_until(lambda: worker_and_reader(pid))
    for worker in workers:
        assert set(threads(worker).values()) == {sync_cpus}, worker
    assert set(threads(pid).values()) == {daemon_cpus}

    assert (await synced_daemon.call("tracks.query", limit=0))["total"] > 0  # queries keep working
    job = await synced_daemon.wait_sync(start["job_id"])
    assert job["state"] == "succeeded", job
    assert set(threads(pid).values()) == {MINE}


@two_cpus
async def test_separate_cpus_off_leaves_affinity_alone(daemon_factory, plex_emulator):
    d = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token,
                             sync={"separate_cpus": False})
    await start_stalled_sync(d, plex_emulator)
    workers = await wait_until(lambda: worker_and_reader(d.proc.pid))
    assert {cpus for w in workers for cpus in threads(w).values()} == {MINE}
    assert set(threads(d.proc.pid).values()) == {MINE}
    await d.call("sync.cancel")


@two_cpus
def test_sqlite_sorts_get_no_helper_thread_in_a_worker_pinned_to_one_cpu():
    """Pinned to one CPU (as `separated` pins the sync worker), SQLite's sorter threads only take
    turns with the worker and each hold a sort buffer: the worker's connection asks for none."""
    import subprocess
    import sys

    code = "from mediasaged.store.connection import sorter_threads; print(sorter_threads())"
    one = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, {min(MINE)}))
    every = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (int(one.stdout), int(every.stdout)) == (0, min(2, len(MINE) - 1))
