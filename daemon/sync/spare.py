"""A sync worker started ahead of its job: an incremental sync does not wait for Python's imports.

A fresh worker spends ~150 ms starting Python and importing plexapi, requests,
lxml and SQLite before its first request; an incremental sync of a 100k library
takes a few hundred milliseconds in all. So when a job ends (and at startup) the
daemon starts a *spare* (`WorkerProcess.spawn(spare=True)`): in a session of its
own, dying with the daemon, at nice 10, it does those imports and waits for its
spec on stdin. The next incremental job takes it (`take`), pins it to the sync's
CPUs and hands it the spec, exactly as it would a fresh worker.

Only incremental jobs use it: a full job discards it first (an idle spare, ~25 MiB,
would count beside the full sync's memory peak) and starts a fresh worker. A
spare is only kept while the live library can take increments.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from .process import WorkerProcess

log = logging.getLogger(__name__)


class Spare:
    """At most one spare worker, started in the background."""

    def __init__(self, env: Callable[[], dict[str, str]]):
        self._env = env
        self._worker: WorkerProcess | None = None
        self._task: asyncio.Task | None = None
        self.closed = False

    def keep(self, wanted: Callable[[], Awaitable[bool]]) -> None:
        """Start a spare soon, unless one is alive or ``wanted()`` says no job could use it."""
        if not self.closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._start(wanted), name="spare-sync-worker")

    async def _start(self, wanted: Callable[[], Awaitable[bool]]) -> None:
        if self.closed or (self._worker is not None and not self._worker.exited):
            return
        try:
            if await wanted():
                self._worker = await WorkerProcess.spawn(self._env(), spare=True)
        except Exception as exc:  # noqa: BLE001 - the next job starts a fresh worker then
            log.warning("could not start a spare sync worker: %s", exc)

    async def take(self) -> WorkerProcess | None:
        """The spare, if one is alive; it is no longer ours. A start under way is awaited (milliseconds)."""
        if self._task is not None:
            await asyncio.shield(self._task)
        worker, self._worker = self._worker, None
        if worker is not None and worker.exited:
            await worker.discard()
            return None
        return worker

    async def discard(self) -> None:
        """No spare from now until the next `keep` (SIGKILL to its group; waited for)."""
        worker = await self.take()
        if worker is not None:
            await worker.discard()

    async def close(self) -> None:
        """The daemon stops: discard the spare, start no other."""
        self.closed = True
        await self.discard()
