"""Keep queries fast during a sync: the sync and the daemon run on separate CPUs.

A full sync keeps one or two CPUs busy (the worker writing SQLite, its reader
parsing Plex's XML). Niceness alone does not protect queries on a small
machine: a woken daemon thread can wait for the next scheduler tick behind a
busy sync process, and on 2 vCPUs that doubled the query tail latency (see
docs/PERFORMANCE.md). So while a sync runs (``sync.separate_cpus``, default
on) the CPUs this daemon may use are split in two:

- the sync worker and its reader process run on the upper half (rounded down,
  at least one CPU): the daemon pins the worker as soon as it has started
  it, and the worker's reader process inherits that;
- every thread of the daemon is pinned to the rest, and put back on all of
  them when the sync ends.

On a one-CPU machine nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

TASKS = "/proc/self/task"


def split(allowed: Iterable[int]) -> tuple[frozenset[int], frozenset[int]] | None:
    """``(daemon_cpus, sync_cpus)`` out of ``allowed``; None with fewer than two CPUs."""
    cpus = sorted(set(allowed))
    if len(cpus) < 2:
        return None
    cut = len(cpus) - len(cpus) // 2
    return frozenset(cpus[:cut]), frozenset(cpus[cut:])


def pin_all_threads(cpus: Iterable[int]) -> None:
    """Set the CPU affinity of every thread of this process.

    ``os.sched_setaffinity(0, …)`` changes only the calling thread; threads
    started later inherit the affinity of the thread that starts them.
    """
    _pin_tasks(TASKS, cpus)


def pin_process(pid: int, cpus: Iterable[int]) -> None:
    """Set the CPU affinity of every thread of process ``pid`` (a sync worker); gone is fine."""
    _pin_tasks(f"/proc/{pid}/task", cpus)


def _pin_tasks(tasks: str, cpus: Iterable[int]) -> None:
    cpus = set(cpus)
    try:
        tids = os.listdir(tasks)
    except FileNotFoundError:  # the process is gone: its exit is reported elsewhere
        return
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


@contextmanager
def separated(enabled: bool) -> Iterator[frozenset[int] | None]:
    """Pin this process's threads to the daemon's share; yield the sync's share.

    Yields None (and pins nothing) when disabled or when there is only one
    CPU. On exit every thread gets back the CPUs it was allowed before.
    """
    before = frozenset(os.sched_getaffinity(0))
    parts = split(before) if enabled else None
    if parts is None:
        yield None
        return
    daemon_cpus, sync_cpus = parts
    pin_all_threads(daemon_cpus)
    try:
        yield sync_cpus
    finally:
        pin_all_threads(before)
