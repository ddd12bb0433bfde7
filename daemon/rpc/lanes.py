"""Fair scheduling of heavy calls between connections.

Cheap calls (``library.status``, ``sync.status``, ``daemon.info``...) never
queue here: they read the one-row sync state on a reader of their own (see
``Store.read(quick=True)``). Heavy calls (queries, stats, history) each take a
slot of a `FairLane` sized to the store's reader pool, so the pool itself never
holds a queue; a waiting call is granted a slot in round-robin order of the
connections waiting, not first come first served. A connection with 64
queries queued therefore delays another connection's query by at most one
query per connection ahead of it, never by its whole queue.

Batches that hold heavy calls also take a slot of a second lane of the same
size while they run, because a batch keeps its answers in memory until the
last one is done: at most that many batches build their answers at a time
(see README, "Limits").
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from typing import AsyncIterator, Hashable


class FairLane:
    """At most ``slots`` holders at once; waiters are served round-robin by key."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError("a lane needs at least one slot")
        self.slots = slots
        self._free = slots
        self._waiting: OrderedDict[Hashable, deque[asyncio.Future]] = OrderedDict()

    @property
    def busy(self) -> int:
        return self.slots - self._free

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @asynccontextmanager
    async def slot(self, key: Hashable) -> AsyncIterator[None]:
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, key: Hashable) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # granted just as we were cancelled: pass it on
            else:
                queue = self._waiting.get(key)
                if queue is not None:
                    try:
                        queue.remove(fut)
                    except ValueError:
                        pass
                    if not queue:
                        del self._waiting[key]
            raise

    def _release(self) -> None:
        while self._waiting:
            key, queue = next(iter(self._waiting.items()))
            fut = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)  # this key had its turn: to the back
            else:
                del self._waiting[key]
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self._free += 1
