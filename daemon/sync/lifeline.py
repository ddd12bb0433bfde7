"""Tying the sync processes to their parents: they stop when it dies and never write after it.

A worker that outlives its daemon (``kill -9``, the OOM killer) must not go on
filling a slot that a new daemon's sync may be filling, or may already have made
live. Three guards, in the worker and its reader:

* ``die_with_parent``: the kernel sends SIGKILL when the parent dies
  (``prctl(PR_SET_PDEATHSIG)``, Linux); elsewhere a thread polls ``getppid``.
  A parent that died before the call is noticed at once.
* ``still_wanted``: the worker checks its parent before every write (cheap).
* ``SyncLock``: the worker holds an exclusive ``flock`` on ``<database>.sync-lock``
  while it works, so a second worker waits for the first one's death instead of
  writing beside it.

``pause_point`` lets fault tests stop a process at a named point with a real
SIGSTOP, to kill it exactly there: ``$MEDIASAGE_SYNC_STOP_AT`` names a file, and
a process reaching the point the file names (``worker:indexing``...) stops.
Unset (always, outside tests), it costs one dictionary lookup.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PARENT_POLL = 0.5  # seconds between getppid checks where prctl is missing
LOCK_WAIT = 10.0  # seconds a new worker waits for an old one to let go of the sync lock
STOP_AT_ENV = "MEDIASAGE_SYNC_STOP_AT"


def die_with_parent(parent_pid: int) -> None:
    """Be killed when ``parent_pid`` (our parent) dies; exit at once if it already has."""
    armed = False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != parent_pid:  # it died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_poll_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


def _poll_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL)
    os._exit(1)


def still_wanted(parent_pid: int) -> None:
    """Exit (without a word: nobody listens) if the daemon that started us is gone."""
    if os.getppid() != parent_pid:
        os._exit(1)


class SyncLock:
    """An exclusive ``flock`` on ``<database>.sync-lock`` (mode 0600), held while a worker works."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.path = Path(f"{db_path}.sync-lock")
        self._fd: int | None = None

    def acquire(self, timeout: float = LOCK_WAIT) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:  # e.g. a read-only file system: the database cannot be written either
            raise LockBusy(f"cache database {self.db_path}: {exc.strerror.lower()} "
                           f"(cannot open the sync lock {self.path})") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(fd)
                    raise LockBusy(f"another sync worker still holds {self.path}") from None
                time.sleep(0.05)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None


class LockBusy(Exception):
    pass


def pause_point(where: str) -> None:
    """Fault tests: SIGSTOP this process at ``where`` if the file ``$MEDIASAGE_SYNC_STOP_AT`` names it."""
    path = os.environ.get(STOP_AT_ENV)
    if path:
        try:
            wanted = Path(path).read_text().strip()
        except OSError:
            return
        if wanted == where:
            log.info("stopping at %s for a fault test", where)
            os.kill(os.getpid(), signal.SIGSTOP)
