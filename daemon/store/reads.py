"""Reading one snapshot: what a read function gets (`ReadContext`) and the per-snapshot memo."""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable, TypeVar

from .connection import State
from .schema import slot_tables

T = TypeVar("T")


class SnapshotMemo:
    """Values computed from one snapshot, kept until the live snapshot changes (thread-safe).

    A snapshot is named by (live slot, generation, synced_at, track_count): a sync
    that flips the slot changes it, and so does every change set written in place
    (it advances the generation); nothing else writes a live slot. What it holds is
    bounded by weight (a total weighs 1, a stats answer 1 per genre and decade in
    it): past ``MAX_WEIGHT`` the values used longest ago go.
    """

    MAX_WEIGHT = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: tuple | None = None
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()  # key -> (value, weight)
        self._weight = 0

    def get(self, snapshot: tuple, key: Any, compute: Callable[[], T], weight: Callable[[T], int] = lambda v: 1) -> T:
        with self._lock:
            if snapshot == self._snapshot and key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        value = compute()  # outside the lock: other readers go on meanwhile
        w = max(1, weight(value))
        with self._lock:
            if snapshot != self._snapshot:
                self._snapshot, self._items, self._weight = snapshot, OrderedDict(), 0
            if key not in self._items and w <= self.MAX_WEIGHT:
                self._items[key] = (value, w)
                self._weight += w
                while self._weight > self.MAX_WEIGHT:
                    self._weight -= self._items.popitem(last=False)[1][1]
        return value


class ReadContext:
    """What a read function gets: the snapshot's state, the live slot's tables, ``run``, ``cached``."""

    def __init__(self, conn: sqlite3.Connection, state: State, memo: SnapshotMemo | None = None):
        self._conn = conn
        self._memo = memo
        self.state = state
        self.tables = slot_tables(state.live_slot)

    def run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        for name, table in self.tables.items():
            sql = sql.replace("{" + name + "}", table)
        return self._conn.execute(sql, tuple(params)).fetchall()

    def cached(self, key: Any, compute: Callable[[], T], weight: Callable[[T], int] = lambda v: 1) -> T:
        """``compute()``, remembered for this snapshot under ``key`` (`SnapshotMemo`, ``weight`` of the
        value: about how many small items it holds); the value must not be mutated."""
        if self._memo is None:
            return compute()
        s = self.state
        return self._memo.get((s.live_slot, s.generation, s.synced_at, s.track_count), key, compute, weight)
