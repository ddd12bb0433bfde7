"""Finding and watching the daemon's real child processes through /proc (Linux)."""

from __future__ import annotations

from pathlib import Path

from mediasaged.sync.stall import children  # the daemon's own rule: the direct children of a pid

__all__ = ["alive", "children", "cmdline", "plex_reader", "state", "sync_worker", "wchan"]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def state(pid: int) -> str | None:
    """The kernel's one-letter state (R, S, T stopped, Z zombie...), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def wchan(pid: int) -> str:
    """Where in the kernel ``pid``'s main thread sleeps (``anon_pipe_write``: writing into a full pipe)."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running or stopped: not gone and not a zombie."""
    return state(pid) not in (None, "Z", "X")


def sync_worker(daemon_pid: int, *, spare: bool = False) -> int | None:
    """The daemon's sync worker process started for a job (a full one), if one runs; ``spare``: the
    worker started ahead (``--spare``), idle or running the incremental job that took it."""
    for child in children(daemon_pid):
        line = cmdline(child)
        if "mediasaged.sync.worker" in line and ("--spare" in line) == spare and alive(child):
            return child
    return None


def plex_reader(worker_pid: int) -> int | None:
    """The worker's forked Plex reader, if it runs."""
    live = [c for c in children(worker_pid) if alive(c)]
    return live[0] if live else None

