"""Telling a stuck sync worker from a slow one.

A worker that is merely slow keeps doing something: it spends CPU time (parsing,
SQLite) or reads and writes files and pipes (the database, the reader's pages, its
progress lines). One that is stuck does neither: stopped (SIGSTOP) or blocked for good
(a deadlock, a hung file system) -- and nothing else would ever end its job, so every
later sync would wait behind it. Waiting on Plex is bounded apart: a request's own
timeout, its retries and the waits between them.

So while a job runs the daemon samples the worker's process tree through /proc (CPU
time from ``stat``; bytes read and written from ``io``, which counts files and pipes but
not sockets; its Plex reader included) and stops the job when none of it moved for
``sync.stalled_after`` -- never less than one Plex request with all its retries may wait
without a byte (`quiet_limit`). Linux only: where /proc can't tell, nothing is stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..plex.retry import MAX_RETRY_AFTER


def quiet_limit(stalled_after: float | None, timeout: float, retries: int) -> float | None:
    """Seconds of no activity after which a worker counts as stuck (None: never): ``stalled_after``,
    but at least what one Plex request may wait in silence -- every attempt's ``timeout`` and the
    longest wait between attempts."""
    if stalled_after is None:
        return None
    return max(stalled_after, (retries + 1) * timeout + retries * MAX_RETRY_AFTER)


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's list in /proc)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return found


def activity(pid: int) -> tuple[int, int] | None:
    """(CPU clock ticks, bytes read and written) of ``pid`` and every process below it; None when
    /proc does not show ``pid`` (gone, or no /proc)."""
    ticks = moved = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on: utime is 14, stime 15
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not Linux's /proc
            if p == pid:
                return None
            continue
        try:
            for line in Path(f"/proc/{p}/io").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("rchar", "wchar"):  # read(2)/write(2) on files and pipes (not send/recv)
                    moved += int(value)
        except (OSError, ValueError):
            pass
        todo += children(p)
    return ticks, moved


class StallWatch:
    """Samples one worker (`stuck`, every `interval` seconds)."""

    def __init__(self, pid: int, limit: float, clock: Callable[[], float] = time.monotonic):
        self.pid, self.limit, self._clock = pid, limit, clock
        self._last = activity(pid)
        self._since = clock()

    @property
    def interval(self) -> float:
        return max(0.1, min(self.limit / 5, 30.0))

    def stuck(self) -> bool:
        """Whether the worker did nothing at all for ``limit`` seconds up to now."""
        now, at = activity(self.pid), self._clock()
        if now is None or now != self._last:  # gone (its exit is seen elsewhere), or busy
            self._last, self._since = now, at
            return False
        return at - self._since >= self.limit
