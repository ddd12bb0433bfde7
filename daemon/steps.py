"""Where a long operation's time went: named steps timed one after another, for one log line.

The sync's phase logs use it (the full sync in ``sync/worker.py``, its finish in
``store/slots.py``, the incremental sync in ``sync/increment.py``); see
docs/PERFORMANCE.md for what they showed.
"""

from __future__ import annotations

import logging
import time


class Steps:
    """``steps("name")`` ends the step that began at the previous call (or at creation).

    A name used again adds to its total. ``debug`` names a logger that gets each
    step as it ends. ``str(steps)`` is ``name 12 ms, other 3 ms``.
    """

    def __init__(self, debug: logging.Logger | None = None):
        self._debug = debug
        self._last = time.perf_counter()
        self.took: dict[str, float] = {}  # name -> seconds

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self._debug is not None:
            self._debug.debug("%s: %.0f ms", name, (now - self._last) * 1000)
        self.took[name] = self.took.get(name, 0.0) + now - self._last
        self._last = now

    def once(self, name: str) -> None:
        """End a step only the first time: a point reached again and again (the first rows)."""
        if name not in self.took:
            self(name)

    def skip(self) -> None:
        """Start the next step now: the time since the last call counts nowhere."""
        self._last = time.perf_counter()

    def add(self, name: str, seconds: float) -> None:
        """Count time measured elsewhere (e.g. within another step) under ``name``."""
        self.took[name] = self.took.get(name, 0.0) + seconds

    def __str__(self) -> str:
        return took_text(self.took)


def took_text(took: dict[str, float]) -> str:
    """``name 12 ms, other 3 ms`` for step names and their seconds."""
    return ", ".join(f"{name} {seconds * 1000:,.0f} ms" for name, seconds in took.items())
