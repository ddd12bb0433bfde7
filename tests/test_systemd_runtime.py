"""The real daemon under systemd's own tools: socket activation by
``systemd-socket-activate`` and log lines with journal priorities.

Runs on every interpreter ``make test`` uses: Python 3.13's asyncio unlinks a
Unix server's socket file on close unless told not to, which would leave a
socket unit listening on a deleted path after ``systemctl restart``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import stat
import sys

import pytest

from mediasaged import journal
from tests.support import DaemonProcess, wait_until, write_config

ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.mark.skipif(ACTIVATE is None, reason="systemd-socket-activate is not installed")
async def test_socket_activated_daemon_leaves_the_socket_file_on_stop(sdir):
    path = sdir / "activated.sock"
    config = write_config(sdir)
    daemon = DaemonProcess(sdir, config)
    log = open(daemon.stderr_path, "wb")
    # systemd-socket-activate binds the socket, waits for a first connection, then
    # execs the daemon (same pid) with LISTEN_FDS=1 / LISTEN_PID, as a socket unit does.
    # It passes on no environment but what -E names.
    daemon.proc = await asyncio.create_subprocess_exec(
        ACTIVATE, "-l", str(path), "-E", f"NOTIFY_SOCKET={daemon.notify.path}",
        sys.executable, "-m", "mediasaged", "--config", str(config),
        stdout=log, stderr=log)
    daemon._stderr = log
    try:
        async def bound():
            return path.exists() or daemon.proc.returncode is not None
        await wait_until(bound, timeout=20)
        daemon.socket = path
        # the first connection starts the daemon; it answers on the passed socket
        info = await daemon.call("daemon.info")
        await daemon.notify.wait_for("READY=1", timeout=20)
        assert info["socket"] == str(path) and info["pid"] == daemon.proc.pid
        assert not (sdir / "d.sock").exists()  # it did not bind its own
        assert await daemon.stop(signal.SIGTERM) == 0, daemon.log()
        assert path.exists() and stat.S_ISSOCK(path.lstat().st_mode), (
            f"the daemon removed systemd's socket file on stop (Python {sys.version.split()[0]})")
    finally:
        await daemon.close()


async def test_log_lines_carry_journal_priorities_when_stderr_is_the_journal(daemon_factory, sdir):
    stderr = sdir / "daemon.log"
    stderr.touch()
    st = stderr.stat()
    daemon = await daemon_factory(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert daemon.stderr_path == stderr and stderr.stat().st_ino == st.st_ino
    with pytest.raises(Exception):
        await daemon.call("sync.status", job_id=99)  # a warning? at least debug lines
    await daemon.stop()
    lines = [line for line in daemon.log().splitlines() if line]
    assert lines, "the daemon logged nothing"
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>INFO ") for line in lines), lines
    assert any(line.startswith("<7>DEBUG ") for line in lines), lines
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", line) for line in lines)  # the journal adds times


async def test_no_priorities_when_journal_stream_names_another_stream(daemon_factory):
    daemon = await daemon_factory(env={"JOURNAL_STREAM": "1:2"})
    await daemon.stop()
    lines = [line for line in daemon.log().splitlines() if line]
    assert lines and not any(line.startswith("<") for line in lines), lines
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines), lines


def test_priority_formatter_prefixes_every_line(tmp_path):
    assert [journal.priority(level) for level in
            (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG, 5)] == \
        [2, 3, 4, 6, 7, 7]
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "one\ntwo", None, None)
    assert journal.PriorityFormatter("%(message)s").format(record) == "<3>one\n<3>two"
    with open(tmp_path / "f", "w") as fh:
        st = os.fstat(fh.fileno())
        assert journal.stream_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fh.fileno())
        assert not journal.stream_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, fh.fileno())
        assert not journal.stream_is_journal({}, fh.fileno())
        assert not journal.stream_is_journal({"JOURNAL_STREAM": "garbage"}, fh.fileno())


async def test_status_is_answered_during_a_sync_when_the_manager_reads_no_notifications(daemon_factory, plex_emulator):
    """A manager's datagram queue holds only a few messages (net.unix.max_dgram_qlen, 10 by
    default). A 1M-track sync sends a STATUS line per second of progress; once the queue was
    full, sd_notify blocked the event loop and sync.status went unanswered for the rest of the
    sync (minutes; found by the 1M test). Here the queue is full from the start."""
    daemon = await daemon_factory(plex_url=plex_emulator.url, token=plex_emulator.token)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
        filler.setblocking(False)
        filler.connect(str(daemon.notify.path))
        with contextlib.suppress(BlockingIOError):
            for _ in range(100_000):
                filler.send(b"STATUS=filler")
    conn = await daemon.connect()
    try:
        job_id = (await conn.request("sync.start", {"mode": "full"}, timeout=5))["result"]["job_id"]

        async def synced_and_told():  # every poll answered within seconds, until the last STATUS was tried
            job = (await conn.request("sync.status", {"job_id": job_id}, timeout=5))["result"]
            return job["state"] != "running" and "queue is full; dropped 'STATUS=Library: 1,500 tracks'" in daemon.log()

        await wait_until(synced_and_told, timeout=60, interval=0.05)
        assert (await conn.request("library.status", timeout=5))["result"]["track_count"] == 1500
    finally:
        await conn.close()
