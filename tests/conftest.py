"""Shared fixtures: short private dirs, real daemons, the Plex emulator."""

from __future__ import annotations

import shutil

import pytest
import pytest_asyncio

from tests.support import DaemonProcess, short_tmpdir, write_config

pytest_plugins = ["tests.emulator.fixtures"]


@pytest.fixture
def sdir():
    """A short private directory for sockets and databases, removed afterwards."""
    path = short_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def daemon_factory(sdir):
    """Start real daemons: ``await start(plex_url=..., sync={...}, ...)``; all are killed at teardown."""
    started: list[DaemonProcess] = []

    async def start(plex_url: str = "http://127.0.0.1:9", token: str = "test-token", directory=None,
                    wait_ready: bool = True, env: dict | None = None, pass_fds: tuple = (),
                    nofile: int | None = None, **sections):
        directory = directory or sdir
        config = write_config(directory, plex_url, token, **sections)
        daemon = DaemonProcess(directory, config, env=env, pass_fds=pass_fds, nofile=nofile)
        started.append(daemon)
        return await daemon.start(wait_ready=wait_ready)

    yield start
    for daemon in started:
        await daemon.close()


@pytest.fixture
async def daemon(daemon_factory):
    """A daemon with a never-synced cache (its Plex URL answers nothing)."""
    return await daemon_factory()


@pytest.fixture
async def plex_daemon(daemon_factory, plex_emulator):
    """A never-synced daemon pointed at the in-process Plex emulator."""
    return await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token)


@pytest.fixture
async def synced_daemon(plex_daemon):
    """A daemon after one successful full sync of the emulator's library."""
    job = await plex_daemon.sync()
    assert job["state"] == "succeeded", (job, plex_daemon.log())
    return plex_daemon


# ---- one synced daemon shared by a whole module of read-only tests ----------------
# Use with ``pytestmark = pytest.mark.asyncio(loop_scope="module")`` in that module.


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_synced_daemon(module_emulator):
    """A daemon after one full sync of ``module_emulator``, shared by a module's read-only tests."""
    directory = short_tmpdir()
    daemon = DaemonProcess(directory, write_config(directory, module_emulator.url, module_emulator.token))
    try:
        await daemon.start()
        job = await daemon.sync()
        assert job["state"] == "succeeded", (job, daemon.log())
        yield daemon
    finally:
        await daemon.close()
        shutil.rmtree(directory, ignore_errors=True)
