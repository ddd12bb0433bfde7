"""A new Plex server replaces the cached library in one step, only once its library is complete."""

from __future__ import annotations

from tests.mirror import assert_mirror, cached_library, expected_library
from tests.support import wait_until

NEW_ID = "another-server-0000000000000000000000002"


async def test_server_change_with_failing_pages_keeps_the_old_library(daemon_factory, plex_emulator_factory):
    first = plex_emulator_factory(600, seed=1)
    daemon = await daemon_factory(plex_url=first.url)
    assert (await daemon.sync())["state"] == "succeeded"
    before = await cached_library(daemon)
    old_id = first.library.machine_identifier
    port = first.port
    first.stop()
    second = plex_emulator_factory(400, seed=2, port=port)
    second.set_machine_identifier(NEW_ID)

    # While the new server's sync runs, the old library answers and status says why.
    second.slow_seconds = 20.0
    second.inject_fault("slow", page=1, times=1)
    start = await daemon.call("sync.start")

    async def changed_and_running():
        status = await daemon.call("library.status")
        return status["server_changed"] and status["is_syncing"] and status

    status = await wait_until(changed_and_running)
    assert (status["track_count"], status["plex_server_id"]) == (600, old_id)
    assert await cached_library(daemon) == before
    assert (await daemon.call("sync.cancel"))["cancelled"] is True

    # A failed sync of the new server leaves the old library in place.
    second.clear_faults()
    second.inject_fault("500", page=1, times=10)
    job = await daemon.sync(mode="full")
    assert job["state"] == "failed" and "500" in job["error"], job
    status = await daemon.call("library.status")
    assert (status["track_count"], status["plex_server_id"], status["server_changed"]) == (600, old_id, True)
    assert await cached_library(daemon) == before
    assert (await daemon.call("tracks.query", limit=0))["total"] == 600
    assert start["job_id"] < job["job_id"]

    # The first complete sync of the new server replaces it in one step.
    second.clear_faults()
    job = await daemon.sync(mode="auto")
    assert (job["state"], job["mode"], job["added"] + job["updated"]) == ("succeeded", "full", 400), job
    assert_mirror(await cached_library(daemon), expected_library(second))
    status = await daemon.call("library.status")
    assert (status["track_count"], status["plex_server_id"], status["server_changed"]) == (400, NEW_ID, False)
