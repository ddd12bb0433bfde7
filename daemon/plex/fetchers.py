"""Requests of one Plex library on several threads at once.

One rule for every kind of request that can overlap: ``sync.concurrent_pages``
requests in flight while the caller parses the answers that arrived (Plex's
bodies are parsed in the caller's thread, never here). `Prefetch` keeps the next
pages of one listing coming; `PlexLibrary._fetch_each` uses `Fetchers` for a list
of paths (album tracks, batched metadata).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .client import PlexLibrary


def raw(body: bytes) -> bytes:
    """`PlexLibrary._fetch`'s ``parse`` for an answer its caller parses."""
    return body


class Fetchers:
    """Requests of one `PlexLibrary` on ``n`` threads (their connections from its `Transport`'s pool).

    ``submit`` returns a future of the raw body; HTTP errors and retries are
    `PlexLibrary._fetch`'s, in the fetching thread. The caller parses.
    """

    def __init__(self, lib: "PlexLibrary", n: int):
        self._lib = lib
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="plex-pages")

    def _get(self, path: str, what: str, params: dict | None, headers: dict | None) -> bytes:
        return self._lib._fetch(path, params=params, what=what, parse=raw, headers=headers)

    def submit(self, path: str, what: str, params: dict | None = None, headers: dict | None = None) -> Future:
        return self._pool.submit(self._get, path, what, params, headers)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Prefetch(Fetchers):
    """The next pages of one listing, fetched on ``n`` threads while the caller parses.

    ``take(start, ...)`` returns the body of the page at ``start`` and keeps the
    ``n`` pages after it in flight; pages fetched for offsets the caller no longer
    wants (after a short page) are dropped.
    """

    def __init__(self, lib: "PlexLibrary", path: str, params: dict, size: int, n: int):
        super().__init__(lib, n)
        self._path, self.params, self._size, self._n = path, params, size, n
        self._pending: dict[int, Future] = {}

    def take(self, start: int, total: int, what: Callable[[int], str]) -> bytes:
        self.keep(start, total, what)
        return self._pending.pop(start).result()

    def keep(self, start: int, total: int, what: Callable[[int], str]) -> None:
        """Have the page at ``start`` and the ``n`` after it (those below ``total``) in flight."""
        wanted = [at for at in range(start, start + (self._n + 1) * self._size, self._size) if at < total]
        for at in [at for at in self._pending if at not in wanted]:
            self._pending.pop(at).cancel()
        for at in wanted:
            if at not in self._pending:
                self._pending[at] = self.submit(self._path, what(at), self.params,
                                                self._lib._page_headers(at, self._size))

    def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        self._pending.clear()
        super().close()
