"""Fault injection for the Plex emulator.

A fault matches a request by a substring of its path+query (``path_contains``) and,
optionally, by container page: ``page=N`` is the N-th page (0-based) computed as
``X-Plex-Container-Start // X-Plex-Container-Size`` of a listing of ``libtype``
(default: tracks, type=10) with a non-zero container size. ``times`` is how many
requests it fires on; then it is spent (so a retry succeeds), unless times is None
(fires forever).

Kinds: "500"/"503"/"429"/"400"/"401"/"404" answer that status (with ``Retry-After: retry_after``
when that is set); "slow" sleeps ``delay`` (default
``slow_seconds``) before answering; "drop" closes the connection without a byte;
"truncate" answers 200 with the first half of the XML (consistent Content-Length);
"cut" announces the full Content-Length, sends half and closes; "short" answers a
valid page with half as many items as asked for (what makes plexapi skip items);
"rewrite" answers 200 with ``rewrite(body)`` (and ``content_type``, if given): an odd
answer a real server or a proxy in front of it sends (no totalSize, an HTML page,
non-UTF-8 bytes, a control character in a title).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

KINDS = ("500", "503", "429", "400", "401", "404", "slow", "drop", "truncate", "cut", "short", "rewrite")


@dataclass
class Fault:
    kind: str
    path_contains: str = "/all"
    page: int | None = None
    libtype: int | None = None
    times: int | None = 1
    delay: float | None = None
    retry_after: str | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    content_type: str | None = None
    fired: int = 0
    hits: list[str] = field(default_factory=list)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times


@dataclass
class RequestInfo:
    path_qs: str
    container_start: int | None
    container_size: int | None
    libtype: int | None

    @property
    def page(self) -> int | None:
        if not self.container_size:
            return None
        return (self.container_start or 0) // self.container_size


class FaultSet:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.slow_seconds = 5.0

    def add(self, kind: str, *, path_contains: str = "/all", page: int | None = None,
            times: int | None = 1, libtype: int | None = None,
            delay: float | None = None, retry_after: str | None = None,
            rewrite: Callable[[bytes], bytes] | None = None, content_type: str | None = None) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {KINDS}")
        if (kind == "rewrite") != (rewrite is not None):
            raise ValueError("a rewrite fault needs rewrite=, and only it takes one")
        if page is not None and libtype is None:
            libtype = 10
        f = Fault(kind, path_contains, page, libtype, times, delay, retry_after, rewrite, content_type)
        with self._lock:
            self._faults.append(f)
        return f

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.spent]

    def match(self, req: RequestInfo) -> Fault | None:
        """Return (and consume one firing of) the first live fault matching req."""
        with self._lock:
            for f in self._faults:
                if f.spent or f.path_contains not in req.path_qs:
                    continue
                if f.libtype is not None and req.libtype != f.libtype:
                    continue
                if f.page is not None and req.page != f.page:
                    continue
                f.fired += 1
                f.hits.append(req.path_qs)
                return f
        return None
