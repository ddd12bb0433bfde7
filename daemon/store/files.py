"""The cache database as files: their permissions, naming a storage fault, moving a corrupt file aside.

* Permissions: the database, its WAL and SHM are created 0600 (SQLite gives the
  WAL and SHM the database file's mode), or 0640 and the configured group
  (``cache.group``). A directory others may write to is refused: anyone could
  replace the files.
* ``describe``: a SQLite error as "what we did: the cause on the path (SQLite's
  words)", e.g. ``writing tracks to slot b: disk full on /var/lib/x.db (database
  or disk is full)``, so a sync's error says why without the log.
* ``move_aside``: a file that is not a database (or is corrupt beyond opening)
  is renamed ``<name>.corrupt-<UTC time>`` with its WAL and SHM; the daemon then
  starts from an empty cache and rebuilds it with a full sync.
* ``wal_removed``: whether our own process still holds the WAL open although
  its name is gone (someone deleted it): the data in it would be lost at the
  next restart, and new connections fail with an I/O error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

from .connection import StoreError

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm")
_CAUSES = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_CORRUPT: "corrupt database",
    sqlite3.SQLITE_NOTADB: "not a database",
    sqlite3.SQLITE_CANTOPEN: "cannot open the file",
    sqlite3.SQLITE_PERM: "permission denied",
    sqlite3.SQLITE_BUSY: "locked by another process",
}
CORRUPT = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def describe(exc: sqlite3.Error, path: Path, doing: str) -> str:
    """``doing: cause on path (SQLite's message)``; a removed WAL is named as such."""
    cause = _CAUSES.get(primary_code(exc))
    if cause is None:
        return f"{doing}: {exc} ({path})"
    if cause == "I/O error" and wal_removed(path, in_this_process=False):
        return f"{doing}: the write-ahead log {path}-wal was removed while in use ({exc})"
    return f"{doing}: {cause} on {path} ({exc})"


def storage_error(exc: sqlite3.Error, path: Path, doing: str) -> StoreError:
    return StoreError(describe(exc, path, doing))


def check_directory(directory: Path) -> None:
    """Refuse a directory that users other than us (and root) may write to."""
    st = directory.stat()
    if st.st_mode & stat.S_IWOTH:
        raise StoreError(f"the directory of the cache database {directory} is writable by every user; "
                         "refusing to use it (chmod o-w it, or put the cache in a directory of its own)")
    if st.st_mode & stat.S_IWGRP and st.st_uid != os.geteuid() and st.st_uid != 0:
        raise StoreError(f"the directory of the cache database {directory} is group-writable and owned by "
                         f"another user (uid {st.st_uid}); refusing to use it")


def file_mode(group: int | None) -> int:
    return 0o640 if group is not None else 0o600


def secure(path: Path, group: int | None = None) -> None:
    """Create the database file with its mode before SQLite does, and set the mode of every file.

    Never opens a file SQLite may have open: closing any descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's included.
    """
    mode = file_mode(group)
    try:
        if not os.path.exists(path):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode))
        for name in [str(path)] + [f"{path}{s}" for s in SIDE_FILES]:
            try:
                st = os.stat(name)
            except FileNotFoundError:
                continue
            if group is not None and st.st_gid != group:
                os.chown(name, -1, group)
            if stat.S_IMODE(st.st_mode) != mode:
                os.chmod(name, mode)
    except OSError as exc:
        raise StoreError(f"cannot set the permissions of the cache database {path}: {exc.strerror}") from None


def move_aside(path: Path) -> Path:
    """Rename the database (and its WAL and SHM) to ``<name>.corrupt-<UTC time>``; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        for suffix in SIDE_FILES:  # SQLite must not find a WAL that belongs to the old file
            side = Path(f"{path}{suffix}")
            if side.exists():
                side.rename(f"{target}{suffix}")
        path.rename(target)
    except OSError as exc:
        raise StoreError(f"the cache database {path} is corrupt and cannot be moved aside: {exc.strerror}") from None
    return target


def wal_removed(path: Path, in_this_process: bool = True) -> bool:
    """Whether the WAL of ``path`` was deleted while SQLite had it open.

    In this process: a descriptor of ours points at ``<path>-wal (deleted)``.
    Otherwise (the sync worker, which holds none yet): the SHM exists and the WAL
    does not -- or is empty while the SHM says frames are in use.
    """
    wal = f"{path.resolve()}-wal"
    if in_this_process:
        try:
            fds = os.listdir("/proc/self/fd")
        except OSError:
            return False
        for fd in fds:
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == f"{wal} (deleted)":
                    return True
            except OSError:
                continue
        return False
    return os.path.exists(f"{path}-shm") and (not os.path.exists(wal) or os.path.getsize(wal) == 0)
