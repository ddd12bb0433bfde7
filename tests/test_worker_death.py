"""A sync worker or its reader may die at any moment: the job fails within 2 s, the cache is
untouched, nothing is left running, and the next sync starts normally and is exact.

Real processes and real signals: the worker and its reader are found through /proc,
stopped at a named point by a real SIGSTOP (``$MEDIASAGE_SYNC_STOP_AT``, see
daemon/sync/lifeline.py) or caught waiting on a slow Plex page, and killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.mirror import assert_mirror, cached_library, expected_library
from tests.processes import alive, plex_reader, state, sync_worker, wchan
from tests.support import DaemonProcess, wait_until

FAIL_WITHIN = 2.0  # seconds from the kill to a failed job


@pytest.fixture
async def stoppable(daemon_factory, plex_emulator, sdir):
    """A synced daemon whose sync processes stop where the file ``stop_at`` says."""
    stop_at = sdir / "stop-at"
    daemon = await daemon_factory(plex_url=plex_emulator.url, env={"MEDIASAGE_SYNC_STOP_AT": str(stop_at)})
    assert (await daemon.sync())["state"] == "succeeded", daemon.log()
    return daemon, stop_at


async def find_worker(daemon) -> int:
    async def worker():
        return sync_worker(daemon.proc.pid)
    return await wait_until(worker, timeout=10)


PHASE_AT = {"worker:tracks": "tracks", "reader:tracks": "tracks", "reader:genres": "tracks",
            "worker:indexing": "indexing", "worker:swap": "indexing"}


async def stopped_at(daemon, stop_at, where: str) -> tuple[int, dict, int | None, int | None]:
    """Start a full sync and wait until the process named by ``where`` stopped there
    and the daemon has read everything it wrote before (the job's phase says so).

    Returns (job_id, the job, worker pid, reader pid)."""
    stop_at.write_text(where)
    start = await daemon.call("sync.start", mode="full")
    assert start["started"], start
    worker = await find_worker(daemon)

    async def stopped():
        reader = plex_reader(worker)
        target = reader if where.startswith("reader:") else worker
        return target is not None and state(target) == "T" and (reader, target)

    reader, _ = await wait_until(stopped, timeout=20)
    stop_at.unlink()  # the next sync runs through

    async def phase_reached():
        job = await daemon.call("sync.status")
        return job["phase"] == PHASE_AT[where] and job

    return start["job_id"], await wait_until(phase_reached, timeout=5), worker, reader


async def fails_quickly(daemon, job_id: int) -> dict:
    t0 = time.monotonic()
    job = await daemon.wait_sync(job_id, timeout=FAIL_WITHIN + 3)
    elapsed = time.monotonic() - t0
    assert job["state"] == "failed", job
    assert elapsed < FAIL_WITHIN, f"the job took {elapsed:.1f}s to fail"
    return job


async def gone(*pids: int | None, timeout: float = FAIL_WITHIN) -> None:
    async def all_gone():
        return not any(p is not None and alive(p) for p in pids)
    await wait_until(all_gone, timeout=timeout)


async def next_sync_is_exact(daemon, emu) -> None:
    emu.add_track(title="After The Crash", album_title="Recovery", artist="Survivor")
    again = await daemon.call("sync.start", mode="auto")
    assert again["started"], again
    job = await daemon.wait_sync(again["job_id"])
    assert job["state"] == "succeeded", (job, daemon.log()[-3000:])
    assert_mirror(await cached_library(daemon), expected_library(emu))


@pytest.mark.parametrize("where", ["worker:tracks", "reader:genres", "worker:indexing", "worker:swap"])
async def test_killed_worker_fails_the_job_at_once(stoppable, plex_emulator, where):
    daemon, stop_at = stoppable
    before = await cached_library(daemon)
    job_id, job, worker, reader = await stopped_at(daemon, stop_at, where)
    assert job["current"] == (0 if where == "reader:genres" else job["total"] if where != "worker:tracks" else 200)
    os.kill(worker, signal.SIGKILL)
    job = await fails_quickly(daemon, job_id)
    assert job["error"] == "sync worker died: signal 9"
    await gone(worker, reader)  # the reader too, stopped or not
    status = await daemon.call("library.status")
    assert (status["error"], status["is_syncing"], status["generation"]) == (job["error"], False, 1)
    assert await cached_library(daemon) == before
    await next_sync_is_exact(daemon, plex_emulator)


@pytest.mark.parametrize("where", ["reader:tracks", "reader:genres"])
async def test_killed_reader_fails_the_job_at_once(stoppable, plex_emulator, where):
    daemon, stop_at = stoppable
    before = await cached_library(daemon)
    job_id, _, worker, reader = await stopped_at(daemon, stop_at, where)
    os.kill(reader, signal.SIGKILL)
    job = await fails_quickly(daemon, job_id)
    assert job["error"] == "the Plex reader process died: signal 9"
    await gone(worker, reader)
    assert await cached_library(daemon) == before
    await next_sync_is_exact(daemon, plex_emulator)


async def test_a_reader_killed_halfway_through_a_page_fails_the_job_at_once(daemon_factory, plex_emulator, sdir):
    """The reader killed while it writes a page into the pipe: pages of 700 tracks (~0.2 MB) do
    not fit in a pipe (64 KiB), and the worker is stopped after its first page, so the reader
    is caught halfway through the second. The worker then reads half a message, which is the
    reader's death too (the soak once saw "sync failed: got end of file during message")."""
    stop_at = sdir / "stop-at"
    daemon = await daemon_factory(plex_url=plex_emulator.url, env={"MEDIASAGE_SYNC_STOP_AT": str(stop_at)},
                                  sync={"page_size": 700})
    assert (await daemon.sync())["state"] == "succeeded", daemon.log()
    before = await cached_library(daemon)
    stop_at.write_text("worker:tracks")
    start = await daemon.call("sync.start", mode="full")
    worker = await find_worker(daemon)

    async def reader_halfway():
        reader = plex_reader(worker)
        return state(worker) == "T" and reader and "pipe_write" in wchan(reader) and reader
    reader = await wait_until(reader_halfway, timeout=20)
    stop_at.unlink()
    os.kill(reader, signal.SIGKILL)
    os.kill(worker, signal.SIGCONT)
    job = await fails_quickly(daemon, start["job_id"])
    assert job["error"] == "the Plex reader process died: signal 9"
    await gone(worker, reader)
    assert await cached_library(daemon) == before
    await next_sync_is_exact(daemon, plex_emulator)


async def test_a_crashed_reader_fails_the_job_and_leaves_its_stack_in_the_log(stoppable, plex_emulator):
    """A reader that dies in C code (a real SIGSEGV) fails the job like any death, and its
    Python stack (faulthandler) is in the daemon's log for whoever looks into it."""
    daemon, stop_at = stoppable
    before = await cached_library(daemon)
    job_id, _, worker, reader = await stopped_at(daemon, stop_at, "reader:tracks")
    os.kill(reader, signal.SIGSEGV)  # pending while it is stopped
    os.kill(reader, signal.SIGCONT)
    job = await fails_quickly(daemon, job_id)
    assert job["error"] == "the Plex reader process died: signal 11"
    await gone(worker, reader)
    assert "Fatal Python error: Segmentation fault" in daemon.log()
    assert await cached_library(daemon) == before
    await next_sync_is_exact(daemon, plex_emulator)


async def stalled(daemon, emu) -> tuple[int, int, int]:
    """A full sync whose reader waits on a slow Plex page (20 s): (job_id, worker, reader)."""
    emu.slow_seconds = 20.0
    fault = emu.inject_fault("slow", page=3, times=1)
    start = await daemon.call("sync.start", mode="full")

    async def waiting():
        worker = sync_worker(daemon.proc.pid)
        reader = worker and plex_reader(worker)
        return fault.fired and reader and (worker, reader)

    worker, reader = await wait_until(waiting)
    return start["job_id"], worker, reader


async def test_worker_killed_while_its_reader_waits_on_plex(synced_daemon, plex_emulator):
    """The issue's case: kill -9 in the tracks phase wedged the daemon (the reader held the pipe)."""
    before = await cached_library(synced_daemon)
    job_id, worker, reader = await stalled(synced_daemon, plex_emulator)
    os.kill(worker, signal.SIGKILL)
    job = await fails_quickly(synced_daemon, job_id)
    assert job["error"] == "sync worker died: signal 9"
    await gone(reader)
    assert await cached_library(synced_daemon) == before
    plex_emulator.clear_faults()
    await next_sync_is_exact(synced_daemon, plex_emulator)


async def test_cancel_answers_at_once_while_a_page_is_slow(synced_daemon, plex_emulator):
    job_id, worker, reader = await stalled(synced_daemon, plex_emulator)
    t0 = time.monotonic()
    assert await synced_daemon.call("sync.cancel") == {"cancelled": True, "job_id": job_id}
    assert time.monotonic() - t0 < 2.0
    assert (await synced_daemon.call("sync.status", job_id=job_id))["state"] == "cancelled"
    await gone(worker, reader)


async def test_cancel_of_a_stuck_worker_answers_within_the_grace(stoppable):
    daemon, stop_at = stoppable
    job_id, _, worker, reader = await stopped_at(daemon, stop_at, "worker:tracks")  # SIGTERM stays pending
    t0 = time.monotonic()
    assert await daemon.call("sync.cancel") == {"cancelled": True, "job_id": job_id}
    assert time.monotonic() - t0 < 5.0 + 1.5  # CANCEL_GRACE, then SIGKILL
    assert (await daemon.call("sync.status", job_id=job_id))["state"] == "cancelled"
    await gone(worker, reader)
    assert (await daemon.call("sync.start"))["started"] is True


async def test_sigterm_mid_sync_exits_promptly(synced_daemon, plex_emulator):
    _, worker, reader = await stalled(synced_daemon, plex_emulator)
    t0 = time.monotonic()
    assert await synced_daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 3.0
    await gone(worker, reader)


async def test_a_worker_outliving_its_daemon_stops_by_itself(synced_daemon, plex_emulator):
    before = await cached_library(synced_daemon)
    _, worker, reader = await stalled(synced_daemon, plex_emulator)
    synced_daemon.proc.kill()
    await synced_daemon.wait_exit()
    await gone(worker, reader)  # the parent-death signal, not the dead daemon, stopped them
    plex_emulator.clear_faults()
    restarted = DaemonProcess(synced_daemon.dir, synced_daemon.config)
    try:
        await restarted.start()
        assert await cached_library(restarted) == before
        await next_sync_is_exact(restarted, plex_emulator)
    finally:
        await restarted.close()


# ---- a worker that is not dead but stuck (`sync.stalled_after`, daemon/sync/stall.py) ----------

STALLED_AFTER = 2  # seconds; with one attempt of 1 s a request the floor is below it


@pytest.fixture
async def watched(daemon_factory, plex_emulator, sdir):
    """`stoppable`, with jobs stopped whose worker does nothing for STALLED_AFTER seconds."""
    stop_at = sdir / "stop-at"
    daemon = await daemon_factory(plex_url=plex_emulator.url, env={"MEDIASAGE_SYNC_STOP_AT": str(stop_at)},
                                  plex={"timeout": 1}, sync={"stalled_after": STALLED_AFTER, "retries": 0})
    assert (await daemon.sync())["state"] == "succeeded", daemon.log()
    return daemon, stop_at


@pytest.mark.parametrize("where", ["worker:tracks", "reader:tracks"])
async def test_a_stuck_worker_is_stopped_and_the_next_sync_is_exact(watched, plex_emulator, where):
    """Stopped for good (here by SIGSTOP; in the field a deadlock or a hung disk), a worker ends no
    job by itself, and every later sync would wait behind it: the daemon kills it."""
    daemon, stop_at = watched
    before = await cached_library(daemon)
    job_id, _, worker, reader = await stopped_at(daemon, stop_at, where)
    t0 = time.monotonic()
    job = await daemon.wait_sync(job_id, timeout=STALLED_AFTER + 10)
    assert (job["state"], job["error"]) == (
        "failed", f"the sync worker did nothing for {STALLED_AFTER} s (no CPU time, no I/O; "
                  "sync.stalled_after): stopped it"), job
    assert time.monotonic() - t0 < STALLED_AFTER + 3  # the limit, a sample, the kill
    await gone(worker, reader)
    assert await cached_library(daemon) == before
    await next_sync_is_exact(daemon, plex_emulator)
    assert (await daemon.call("sync.status"))["resumed_from"] == job_id  # the stopped one's pages kept


async def test_a_worker_waiting_on_a_slow_plex_answer_is_not_stopped(daemon_factory, plex_emulator):
    """Waiting on Plex moves nothing either, so the limit is never less than what one request may
    wait (its timeout here: 5 s): a page that takes 3 s is waited for, though stalled_after is 1 s."""
    daemon = await daemon_factory(plex_url=plex_emulator.url, plex={"timeout": 5},
                                  sync={"stalled_after": 1, "retries": 0, "concurrent_pages": 1})
    fault = plex_emulator.inject_fault("slow", page=2, delay=3.0)
    job = await daemon.sync()
    assert fault.fired and job["state"] == "succeeded", (job, daemon.log()[-2000:])
    assert_mirror(await cached_library(daemon), expected_library(plex_emulator))
