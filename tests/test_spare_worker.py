"""The spare sync worker: started ahead of an incremental job, replaced after use, never left behind.

Real processes found through /proc, real signals. See daemon/sync/spare.py.
"""

from __future__ import annotations

import os
import signal

import pytest

from mediasaged.sync.cpus import split
from tests.mirror import assert_mirror, cached_library, expected_library
from tests.processes import alive, cmdline, sync_worker
from tests.support import wait_until

MINE = frozenset(os.sched_getaffinity(0))


async def spare_of(daemon, other_than: int | None = None) -> int:
    """The daemon's idle spare worker (waited for), other than ``other_than``."""
    async def found():
        pid = sync_worker(daemon.proc.pid, spare=True)
        return pid if pid != other_than else None
    return await wait_until(found, timeout=10)


async def gone(pid: int, timeout: float = 5.0) -> None:
    async def dead():
        return not alive(pid)
    await wait_until(dead, timeout=timeout)


def session_empty(pid: int) -> bool:
    """Nothing is left in the process group (session) the worker led."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def incremental_is_exact(daemon, emu) -> dict:
    start = await daemon.call("sync.start", mode="incremental")
    assert start["started"], start
    job = await daemon.wait_sync(start["job_id"])
    assert job["state"] == "succeeded", (job, daemon.log()[-3000:])
    assert job["mode"] == "incremental", job
    assert_mirror(await cached_library(daemon), expected_library(emu))
    return job


def test_a_malloc_arena_cap_of_the_environment_wins(monkeypatch):
    from mediasaged.sync.spec import worker_env

    monkeypatch.setenv("MEDIASAGE_PLEX_TOKEN", "secret")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    env = worker_env()
    assert env["MALLOC_ARENA_MAX"] == "4" and "MEDIASAGE_PLEX_TOKEN" not in env
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert worker_env()["MALLOC_ARENA_MAX"] == "2"


async def test_an_incremental_sync_runs_in_the_spare_and_a_new_one_replaces_it(synced_daemon, plex_emulator):
    spare = await spare_of(synced_daemon)
    status = open(f"/proc/{spare}/status").read()
    assert "--spare" in cmdline(spare) and plex_emulator.token not in cmdline(spare)
    environ = open(f"/proc/{spare}/environ", "rb").read().split(b"\0")
    assert not [v for v in environ if v.startswith(b"MEDIASAGE_PLEX_TOKEN=")]
    arenas = os.environ.get("MALLOC_ARENA_MAX", "2")  # sync/spec.py: the reader's memory; ours wins
    assert f"MALLOC_ARENA_MAX={arenas}".encode() in environ

    async def niced():  # background work, also while importing (from its first lines on)
        return os.getpriority(os.PRIO_PROCESS, spare) == 10
    await wait_until(niced, timeout=5)
    assert os.getsid(spare) == spare  # a session (process group) of its own
    assert "PPid:\t%d" % synced_daemon.proc.pid in status
    plex_emulator.edit_track(next(iter(plex_emulator.library.tracks)), title="Edited For The Spare")
    job = await incremental_is_exact(synced_daemon, plex_emulator)
    assert job["updated"] == 1
    await gone(spare)  # it ran the job and exited
    assert await spare_of(synced_daemon, other_than=spare) != spare


@pytest.mark.skipif(len(MINE) < 2, reason="needs at least two usable CPUs")
async def test_the_spare_is_pinned_to_the_sync_cpus_when_its_job_begins(synced_daemon, plex_emulator):
    spare = await spare_of(synced_daemon)
    assert frozenset(os.sched_getaffinity(spare)) == MINE  # idle: not pinned
    plex_emulator.slow_seconds = 1.0  # every "changed since" request (the daemon's check asks some too)
    plex_emulator.inject_fault("slow", path_contains="updatedAt", times=None)
    plex_emulator.edit_track(next(iter(plex_emulator.library.tracks)), title="Slowly")
    start = await synced_daemon.call("sync.start", mode="incremental")

    async def pinned():
        try:
            return frozenset(os.sched_getaffinity(spare)) == split(MINE)[1]
        except ProcessLookupError:
            raise AssertionError("the spare ended before it was seen pinned") from None
    await wait_until(pinned, timeout=10)
    plex_emulator.clear_faults()
    job = await synced_daemon.wait_sync(start["job_id"])
    assert job["state"] == "succeeded", job


@pytest.mark.parametrize("wait_for_the_daemon", [True, False])
async def test_a_spare_killed_while_idle_does_not_fail_the_next_job(synced_daemon, plex_emulator, wait_for_the_daemon):
    """Killed and reaped before the job, or killed just before it (the daemon hands the spec to a
    dead process): the job runs in a fresh worker either way."""
    spare = await spare_of(synced_daemon)
    os.kill(spare, signal.SIGKILL)
    if wait_for_the_daemon:
        await gone(spare)
    plex_emulator.add_track(title="After The Spare", album_title="Spare Parts", artist="Reserve")
    job = await incremental_is_exact(synced_daemon, plex_emulator)
    assert job["added"] == 1
    await spare_of(synced_daemon, other_than=spare)  # and a new spare waits


async def test_a_full_sync_discards_the_spare_first(synced_daemon, plex_emulator):
    spare = await spare_of(synced_daemon)
    job = await synced_daemon.sync("full")
    assert job["state"] == "succeeded", job
    await gone(spare)
    assert await spare_of(synced_daemon, other_than=spare)


async def test_stopping_the_daemon_leaves_no_spare_behind(synced_daemon):
    spare = await spare_of(synced_daemon)
    assert await synced_daemon.stop(signal.SIGTERM) == 0
    await gone(spare, timeout=1.0)  # discarded by the daemon before it exited
    assert session_empty(spare)


async def test_a_spare_dies_with_a_killed_daemon(synced_daemon):
    spare = await spare_of(synced_daemon)
    synced_daemon.proc.kill()
    await synced_daemon.wait_exit()
    await gone(spare)  # the parent-death signal (its zombie is init's to reap)


async def test_no_spare_before_the_first_sync(plex_daemon):
    """An empty cache's next job is a full one: nothing to start ahead."""
    assert (await plex_daemon.call("library.status"))["track_count"] == 0
    assert sync_worker(plex_daemon.proc.pid, spare=True) is None
