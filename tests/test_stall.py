"""Telling a stuck process tree from a busy or waiting one (daemon/sync/stall.py), on real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from mediasaged.plex.retry import MAX_RETRY_AFTER
from mediasaged.sync.stall import StallWatch, activity, quiet_limit
from tests.support import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")


def test_the_limit_is_never_below_what_one_request_may_wait():
    assert quiet_limit(None, 30, 2) is None  # off
    assert quiet_limit(900, 30, 2) == 900
    assert quiet_limit(1, 30, 2) == 3 * 30 + 2 * MAX_RETRY_AFTER  # every attempt, the longest waits
    assert quiet_limit(1, 0.5, 0) == 1


@pytest.fixture
def spawn():
    started: list[subprocess.Popen] = []

    def start(code: str) -> subprocess.Popen:
        # the child's work runs in a grandchild: the watch follows the whole tree
        proc = subprocess.Popen([sys.executable, "-c",
                                 f"import subprocess, sys; subprocess.run([sys.executable, '-c', {code!r}])"],
                                start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        os.killpg(proc.pid, signal.SIGKILL)  # the grandchild too: it would outlive its parent
        proc.wait()


async def test_a_sleeping_tree_is_stuck_after_the_limit(spawn):
    proc = spawn("import time; time.sleep(60)")
    watch = StallWatch(proc.pid, limit=0.5)
    assert not watch.stuck()  # the limit has not passed yet

    async def stuck():
        return watch.stuck()
    assert await wait_until(stuck, timeout=10, interval=0.1)


async def test_a_grandchild_that_works_keeps_the_tree_alive(spawn):
    proc = spawn("while True: pass")
    watch = StallWatch(proc.pid, limit=0.5)
    for _ in range(10):  # samples over 2 s, four limits
        await asyncio.sleep(0.2)  # time must pass for "not stuck" to mean anything
        assert not watch.stuck()


def test_a_gone_process_is_not_stuck():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    watch = StallWatch(proc.pid, limit=0.0)
    assert activity(proc.pid) is None and not watch.stuck()
