"""Recovering by itself: an owed sync is retried, runs when Plex comes back, and a
rejected token is not hammered (README, "Recovering by itself")."""

from __future__ import annotations

import signal
import socket
import time

import yaml

from tests.support import wait_until
from tests.mirror import iso_to_unix


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def owed_status(daemon) -> dict | None:
    status = await daemon.call("library.status")
    return status if status["sync_owed"] and status["sync_owed"]["retry_at"] and not status["is_syncing"] else None


async def filled(daemon, count: int):
    status = await daemon.call("library.status")
    return status if status["track_count"] == count and status["synced_at"] and not status["is_syncing"] else None


async def test_plex_coming_up_after_the_daemon_fills_the_cache_on_its_own(daemon_factory, plex_emulator_factory):
    port = free_port()
    daemon = await daemon_factory(plex_url=f"http://127.0.0.1:{port}",
                                  sync={"stale_after": "24h", "interval": "24h"})
    status = await wait_until(lambda: owed_status(daemon))
    owed = status["sync_owed"]
    assert "connection refused" in owed["reason"] and owed["attempts"] == 1 and not owed["token_rejected"]
    assert status["next_sync_at"] == owed["retry_at"]  # the retry, not the schedule a day later
    assert 5 <= iso_to_unix(owed["retry_at"]) - time.time() <= 16
    assert status["plex_reachable"] is False

    emu = plex_emulator_factory(port=port)
    await wait_until(lambda: filled(daemon, 1500), timeout=30, interval=0.2)

    jobs = (await daemon.call("sync.history"))["jobs"]
    assert [(j["trigger"], j["state"]) for j in jobs] == [("startup", "succeeded"), ("startup", "failed")]
    status = await daemon.call("library.status")
    assert status["sync_owed"] is None and status["error"] is None
    assert iso_to_unix(status["next_sync_at"]) > time.time() + 23 * 3600  # back on the schedule
    assert emu.request_count > 0


async def test_the_notification_socket_connecting_starts_the_owed_sync_at_once(daemon_factory,
                                                                             plex_emulator_factory):
    port = free_port()
    daemon = await daemon_factory(plex_url=f"http://127.0.0.1:{port}",
                                  sync={"stale_after": "24h", "interval": "24h", "plex_events": True})
    status = await wait_until(lambda: owed_status(daemon))
    retry_at = iso_to_unix(status["sync_owed"]["retry_at"])

    plex_emulator_factory(port=port)
    try:
        await wait_until(lambda: filled(daemon, 1500), timeout=30, interval=0.2)
    except AssertionError:
        print(daemon.log())
        raise

    jobs = (await daemon.call("sync.history"))["jobs"]
    assert iso_to_unix(jobs[0]["started_at"]) < retry_at - 2, (jobs, retry_at)  # did not wait for the backoff
    assert "Plex answers again: starting the owed sync now" in daemon.log()


async def test_a_rejected_token_is_asked_once_per_interval_and_said_plainly(daemon_factory, plex_emulator):
    emu = plex_emulator
    interval = 3
    daemon = await daemon_factory(plex_url=emu.url, token="wrong-token",
                                  sync={"stale_after": "0", "interval": f"{interval}s", "plex_events": True})
    t0 = time.monotonic()

    async def rejected():
        status = await daemon.call("library.status")
        owed = status["sync_owed"]
        return status if owed and owed["token_rejected"] and not status["is_syncing"] else None
    status = await wait_until(rejected)
    assert "rejected the token" in status["error"]
    assert status["next_sync_at"] == status["sync_owed"]["retry_at"]
    assert -1 <= iso_to_unix(status["next_sync_at"]) - time.time() <= interval + 1

    async def attempts(n):
        jobs = (await daemon.call("sync.history"))["jobs"]
        return jobs if len(jobs) >= n and jobs[0]["state"] != "running" else None
    await wait_until(lambda: attempts(3), timeout=4 * interval + 10)
    elapsed = time.monotonic() - t0
    assert emu.request_count <= elapsed / interval + 1, (emu.request_count, elapsed, list(emu.request_log))
    assert not any("websockets" in p for p in emu.request_log)  # the listener waits for a token that works
    assert "wrong-token" not in daemon.log()

    # A reload with the right token: the owed sync runs at once, and notifications are followed.
    config = yaml.safe_load(daemon.config.read_text())
    config["plex"]["token"] = emu.token
    config["sync"]["interval"] = "24h"
    daemon.config.write_text(yaml.safe_dump(config))
    daemon.proc.send_signal(signal.SIGHUP)
    try:
        await wait_until(lambda: filled(daemon, 1500), timeout=30, interval=0.1)
    except BaseException:
        print(daemon.log())
        raise
    assert (await daemon.call("library.status"))["sync_owed"] is None
    assert emu.wait_for_ws_clients(1, 20)
