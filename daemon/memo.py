"""A bounded memo for the sync's hot loops: names repeat across neighbouring tracks.

Tracks come artist by artist and album by album, so a memo of the last few
thousand names hits nearly every time; one that kept every name would grow with
the library (at a million tracks, ~100k albums and their keys: tens of MB).
"""

from __future__ import annotations

from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MEMO_SIZE = 4096  # entries; emptied when full (a few MB at most per memo)


class Memo(Generic[K, V]):
    """``memo(key)`` = ``compute(key)``, remembered until ``size`` entries are held, then forgotten at once."""

    __slots__ = ("_compute", "_values", "size")

    def __init__(self, compute: Callable[[K], V], size: int = MEMO_SIZE):
        self._compute = compute
        self._values: dict[K, V] = {}
        self.size = size

    def __call__(self, key: K) -> V:
        value = self._values.get(key)
        if value is None:
            if len(self._values) >= self.size:
                self._values.clear()
            value = self._values[key] = self._compute(key)
        return value

    def __len__(self) -> int:
        return len(self._values)
