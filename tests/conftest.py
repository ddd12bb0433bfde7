"""Shared fixtures: short private dirs, real daemons, the Plex emulator."""

from __future__ import annotations

import shutil

import pytest

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
                    wait_ready: bool = True, env: dict | None = None, pass_fds: tuple = (), **sections):
        directory = directory or sdir
        config = write_config(directory, plex_url, token, **sections)
        daemon = DaemonProcess(directory, config, env=env, pass_fds=pass_fds)
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
