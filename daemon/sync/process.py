"""The sync worker seen from the daemon: a process group whose exit is seen at once, every wait bounded.

The worker runs in a process group (session) of its own, so its reader and
anything else it started go with it: stopping a sync signals the whole group.
Its exit is noticed when the kernel reports it (the protocol's
``process_exited``), not when its output ends -- a process that kept a copy of
the pipe cannot hide the death. After the exit, output still in the pipe is read
for at most ``DRAIN_WAIT`` seconds, and anything left in the group is killed.

A worker may be started ahead of its job (a *spare*, `spawn`): it does its
imports and then waits for the spec on stdin; `begin` pins it and hands it the
spec. A spare nobody needs is `discard`ed (SIGKILL to its group).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import AsyncIterator

from .cpus import pin_process
from .stall import StallWatch

DRAIN_WAIT = 1.0  # seconds to read what a dead worker left in the pipe
EXIT_WAIT = 2.0  # seconds a worker whose output ended gets to exit by itself
KILL_WAIT = 2.0  # seconds for the kernel to report a SIGKILLed worker's exit
LINE_LIMIT = 1 << 20  # the longest progress line we read


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Sets ``exited`` when the process exits (whether or not its pipes are closed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__(limit=LINE_LIMIT, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class WorkerProcess:
    """One running ``python -m mediasaged.sync.worker``; start it with :meth:`start`."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _Protocol):
        self._transport = transport
        self._protocol = protocol
        self.pid: int = transport.get_pid()
        self.terminated = False
        self.stuck_for: float | None = None  # set when `kill_if_stuck` killed it: seconds it did nothing
        self._kill_timer: asyncio.TimerHandle | None = None

    @classmethod
    async def start(cls, spec: dict, env: dict[str, str], cpus: frozenset[int] | None = None) -> "WorkerProcess":
        """Start the worker and hand it ``spec`` on stdin (never argv or env: it holds the token)."""
        worker = await cls.spawn(env)
        worker.begin(spec, cpus)
        return worker

    @classmethod
    async def spawn(cls, env: dict[str, str], *, spare: bool = False) -> "WorkerProcess":
        """Start the worker without its spec. ``spare``: it imports what a job needs (plexapi,
        lxml, SQLite: ~150 ms) before it waits for the spec, at nice 10, dying with us."""
        loop = asyncio.get_running_loop()
        args = ["--spare", str(os.getpid())] if spare else []
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop), sys.executable, "-m", "mediasaged.sync.worker", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None, env=env,
            start_new_session=True)
        return cls(transport, protocol)

    def begin(self, spec: dict, cpus: frozenset[int] | None = None) -> None:
        """Hand the worker its job: pinned to ``cpus`` first, so its reader process inherits them."""
        if cpus:
            pin_process(self.pid, cpus)
        stdin = self._transport.get_pipe_transport(0)
        stdin.write(json.dumps({**spec, "daemon_pid": os.getpid()}).encode())
        stdin.close()

    async def discard(self) -> None:
        """A spare nobody needs (or a worker whose job is gone): SIGKILL to its group, wait for it."""
        self.signal_group(signal.SIGKILL)
        await self._wait_exit(KILL_WAIT)
        self._transport.close()

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    @property
    def exited(self) -> bool:
        return self._protocol.exited.is_set()

    async def messages(self) -> AsyncIterator[dict]:
        """The worker's JSON lines, until its output ends or it has exited and the pipe is drained."""
        stdout = self._protocol.stdout
        exited = asyncio.ensure_future(self._protocol.exited.wait())
        try:
            while True:
                line = asyncio.ensure_future(stdout.readline())
                if not exited.done():
                    await asyncio.wait({line, exited}, return_when=asyncio.FIRST_COMPLETED)
                if not line.done():  # it exited: what it wrote comes at once, unless someone holds the pipe
                    self.signal_group(signal.SIGKILL)
                    try:
                        await asyncio.wait_for(line, DRAIN_WAIT)
                    except asyncio.TimeoutError:
                        return
                raw = line.result()
                if not raw:
                    return
                yield json.loads(raw)
        finally:
            exited.cancel()

    async def kill_if_stuck(self, limit: float) -> None:
        """SIGKILL to the group once the worker has done nothing for ``limit`` seconds (`stall.py`):
        stopped or blocked for good, no signal it could act on would end it. The samples (a few
        /proc files each) are read in a thread, off the event loop."""
        watch = await asyncio.to_thread(StallWatch, self.pid, limit)
        while not self.exited:
            await asyncio.sleep(watch.interval)
            if await asyncio.to_thread(watch.stuck):
                self.stuck_for = limit
                self.signal_group(signal.SIGKILL)
                return

    def signal_group(self, sig: int) -> None:
        """Signal the worker's whole process group (the worker, its reader, anything they started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def terminate(self, kill_after: float | None = None) -> None:
        """Cancel: SIGTERM to the group (the worker rolls back and exits; the reader just stops),
        and SIGKILL ``kill_after`` seconds later if it has not exited by then."""
        self.terminated = True
        self.signal_group(signal.SIGTERM)
        if kill_after is not None and self._kill_timer is None:
            self._kill_timer = asyncio.get_running_loop().call_later(kill_after, self._kill_if_running)

    def _kill_if_running(self) -> None:
        if not self.exited:
            self.signal_group(signal.SIGKILL)

    async def _wait_exit(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._protocol.exited.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self, grace: float) -> None:
        """Make sure it is gone: a worker still running after its output ended gets ``EXIT_WAIT``
        seconds, then SIGTERM and ``grace`` seconds, then SIGKILL. Stragglers in its group are
        killed; the pipes are closed. Returns within about EXIT_WAIT + grace + KILL_WAIT seconds."""
        if not self.exited and (self.terminated or not await self._wait_exit(EXIT_WAIT)):
            if not self.terminated:
                self.terminate()
            if not await self._wait_exit(grace):
                self.signal_group(signal.SIGKILL)
                await self._wait_exit(KILL_WAIT)
        self.signal_group(signal.SIGKILL)  # a reader it left behind
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._transport.close()


def exit_reason(returncode: int | None) -> str:
    """Why a worker ended without a word: ``sync worker died: signal 9``."""
    if returncode is None:
        return "sync worker stopped answering"
    if returncode < 0:
        return f"sync worker died: signal {-returncode}"
    return f"sync worker exited with status {returncode} without a result"


def stuck_reason(seconds: float) -> str:
    """Why a worker `kill_if_stuck` killed has no result."""
    return f"the sync worker did nothing for {seconds:g} s (no CPU time, no I/O; sync.stalled_after): stopped it"
