"""The daemon's only door to Plex (and its only importer of plexapi).

plexapi is used for what it is good at — connecting, server identity, finding the
music section. Bulk data (track pages, album genres) is fetched as raw XML, over
urllib3 with the connecting session's proxy and TLS settings (`transport.Transport`),
with explicit ``X-Plex-Container-Start/Size`` headers, and read with lxml: no plexapi
objects (slow, and they auto-reload on ``None`` attributes), no plexapi paging loop (it
skips items when a page comes back short).

Every failure surfaces as a :class:`PlexError` subclass whose message is meant for
the user and never contains the token (see ``redact``).
"""
from __future__ import annotations

import os

# Before plexapi is imported: never read ~/.config/plexapi, never auto-reload objects.
os.environ["PLEXAPI_CONFIG_PATH"] = os.devnull
os.environ["PLEXAPI_PLEXAPI_AUTORELOAD"] = "0"

import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
import urllib.parse  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import plexapi  # noqa: E402
import plexapi.exceptions as plex_exc  # noqa: E402
import requests  # noqa: E402
import urllib3  # noqa: E402
from lxml import etree  # noqa: E402
from plexapi.server import PlexServer  # noqa: E402

from .albums import AlbumReads  # noqa: E402
from .tracks import TrackReads  # noqa: E402
from .attrs import to_int  # noqa: E402
from .body import clean_xml, diagnose, looks_like_html  # noqa: E402
from .errors import (PlexBadResponse, PlexError, PlexHTTPError, PlexUnauthorized,  # noqa: E402
                     PlexUnreachable, SectionNotFound, connection_reason)
from . import retry  # noqa: E402
from .ledger import KeyLedger, PlexCountMismatch  # noqa: E402
from .redact import redact, safe_url  # noqa: E402
from .sections import MUSIC, Section, listed, music_section, same_name  # noqa: E402
from .xml import strict_parser  # noqa: E402
from .fetchers import Fetchers  # noqa: E402
from .transport import Transport, plex_session  # noqa: E402

plexapi.CONFIG.data = {}  # in case plexapi was imported before us with a user config

log = logging.getLogger("mediasaged.plex")

__all__ = ["PlexError", "PlexUnauthorized", "PlexUnreachable", "SectionNotFound",
           "PlexHTTPError", "PlexBadResponse", "PlexCountMismatch", "PlexLibrary"]


MAX_BACKOFF = 30.0  # seconds: the longest wait between retries of our own choosing
_NOT_FOUND_FAILS = object()  # `_fetch_each`: an HTTP 404 is an error


class _Retryable(retry.Retryable):
    def __init__(self, kind: str, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.kind, self.reason, self.status, self.retry_after = kind, reason, status, retry_after


# ---- the library ---------------------------------------------------------------------------

class PlexLibrary(TrackReads, AlbumReads):
    """One music section of one Plex server. Not thread-safe: use from one thread."""

    def __init__(self, server: PlexServer, section, *, url: str, token: str, timeout: float,
                 retries: int, backoff: float, sleep: Callable[[float], None] = time.sleep,
                 concurrent_pages: int = 1):
        self._server = server
        self._session: requests.Session = server._session
        self.concurrent_pages = max(1, int(concurrent_pages))
        # every request after connecting, from any thread (a listing's fetch threads, a reader's
        # genre thread and its prefetch beside the main thread): a connection each, kept alive
        self._transport = Transport.like(self._session, url, connections=2 * self.concurrent_pages + 2)
        self._base = url.rstrip("/")
        self._token = token
        self.url = safe_url(url)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self._backoff = retry.Backoff(backoff, MAX_BACKOFF, sleep)
        # lxml parsers are not to be shared between threads (the sync's reader parses album
        # genres on a thread of its own while its main thread parses track pages): one per thread.
        self._parsers = threading.local()
        self._last_total: int | None = None
        self.ledger = KeyLedger()  # the last track listing's accounting
        self._slim = True  # False once a server refused the slim listing parameters
        self._years_read: dict[str, int | None] = {}  # album -> year, of the last `genres_of_albums`
        self._pool: Fetchers | None = None  # `_fetch_each`'s threads, made at first use
        self._pool_lock = threading.Lock()
        self.request_count = 0
        self.bytes_received = 0
        self.server_id: str = server.machineIdentifier or ""
        self.server_name: str = server.friendlyName or ""
        self.server_version: str = server.version or ""
        self.section_id: str = str(section.key)
        self.section_title: str = section.title or ""

    # ---- connecting -----------------------------------------------------------------
    @classmethod
    def connect(cls, url: str, token: str, library: str, *, timeout: float, verify_ssl: bool = True,
                retries: int = 2, backoff: float = 0.5,
                sleep: Callable[[float], None] = time.sleep, concurrent_pages: int = 1) -> "PlexLibrary":
        """Connect, check the token, find the music section named ``library``
        (case-insensitive). Raises PlexUnauthorized / PlexUnreachable / SectionNotFound /
        PlexHTTPError / PlexError. ``sleep`` waits between retries (here and in every request)."""
        safe = safe_url(url)
        if not url or urllib.parse.urlsplit(url).scheme not in ("http", "https") \
                or not urllib.parse.urlsplit(url).hostname:
            raise PlexError(f"Plex URL {safe!r} is not an http(s) URL (plex.url)")
        url = safe  # no userinfo, query or fragment: the token travels in a header only
        session = plex_session(url, verify_ssl)
        if not verify_ssl:
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

        def attempt() -> tuple[PlexServer, list[Section]]:
            try:
                server = PlexServer(url, token, session=session, timeout=timeout)
                # the sections straight from their list (plexapi's `library.sections()` asks
                # `/library` first: a request more before the sync's first)
                return server, listed(server.query("/library/sections"))
            except Exception as exc:  # noqa: BLE001 - translated
                raise cls._translate(exc, safe, token, timeout) from None

        def retryable(err: Exception) -> bool:  # plexapi keeps the headers (no Retry-After here)
            return (isinstance(err, PlexUnreachable) and "refused" not in str(err)
                    or isinstance(err, PlexHTTPError) and (err.status or 0) >= 500)

        try:
            server, sections = retry.call(attempt, retries=retries, backoff=retry.Backoff(backoff, MAX_BACKOFF, sleep),
                                          retryable=retryable)
        except PlexError:
            session.close()
            raise
        key = music_section(sections, library)
        if key is None:
            matches = [s for s in sections if same_name(s.title, library)]
            listing = ", ".join(f"{s.title!r} ({'music' if s.type == MUSIC else s.type})"
                                for s in sections) or "none"
            why = (f"is a {matches[0].type} section, not a music section" if matches
                   else "was not found")
            session.close()
            raise SectionNotFound(redact(
                f"Library section {library!r} {why} on Plex server "
                f"{server.friendlyName!r} at {safe}; sections: {listing} (plex.library)", token))
        section = next(s for s in sections if s.key == key)
        return cls(server, section, url=url, token=token, timeout=timeout, retries=retries,
                   backoff=backoff, sleep=sleep, concurrent_pages=concurrent_pages)

    @staticmethod
    def _translate(exc: BaseException, safe: str, token: str, timeout: float) -> PlexError:
        if isinstance(exc, PlexError):
            return exc
        if isinstance(exc, plex_exc.Unauthorized):
            if not token:
                return PlexUnauthorized(f"Plex at {safe} requires a token and none is configured: "
                                        f"set plex.token / plex.token_file / $MEDIASAGE_PLEX_TOKEN")
            msg = (f"Plex at {safe} rejected the token (HTTP 401 Unauthorized): check "
                   f"plex.token / plex.token_file / $MEDIASAGE_PLEX_TOKEN")
            return PlexUnauthorized(msg)
        if isinstance(exc, requests.exceptions.RequestException):
            return PlexUnreachable(f"Plex unreachable at {safe}: "
                                   f"{connection_reason(exc, timeout)}")
        if isinstance(exc, plex_exc.NotFound):
            return PlexHTTPError(f"{safe} answered HTTP 404 Not Found: is this the URL of a "
                                 f"Plex Media Server? (plex.url)", 404)
        if isinstance(exc, plex_exc.BadRequest):
            status = to_int(str(exc)[1:4]) if str(exc).startswith("(") else None
            return PlexHTTPError(f"Plex at {safe} returned HTTP {status or 'error'} while "
                                 f"connecting", status)
        if isinstance(exc, TypeError):  # plexapi's codes.get() on an unknown status
            return PlexHTTPError(f"Plex at {safe} returned an unknown HTTP status while connecting")
        if isinstance(exc, etree.LxmlError) or type(exc).__name__ == "ParseError":
            return PlexBadResponse(f"{safe} did not answer with Plex XML: is this the URL of a "
                                   f"Plex Media Server? (plex.url)")
        return PlexError(redact(f"unexpected error talking to Plex at {safe}: "
                                 f"{type(exc).__name__}", token))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        for closing in (self._session, self._transport):
            try:
                closing.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> "PlexLibrary":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- raw requests with retries ------------------------------------------------------
    def _fetch(self, path: str, *, what: str, headers: dict | None = None,
               params: dict | None = None, parse: Callable | None = None):
        """GET path; return the parsed MediaContainer (or ``parse(body)``). Retries
        5xx/408/429, timeouts, dropped connections and unparseable bodies
        ``self.retries`` times with backoff (`retry`: a 429/503's Retry-After is honoured).
        A body that only parses once XML-illegal characters are stripped is read that way,
        as plexapi reads it (body.py)."""
        url = self._base + path
        hdrs = self._server._headers()
        if headers:
            hdrs.update(headers)
        def attempt():
            self.request_count += 1
            try:
                resp = self._transport.get(url, headers=hdrs, params=params, timeout=self.timeout)
                body = resp.body
                self.bytes_received += len(body)
            except urllib3.exceptions.HTTPError as exc:
                raise _Retryable("net", connection_reason(exc, self.timeout)) from None
            status = resp.status
            if status == 401:
                raise PlexUnauthorized(
                    f"Plex at {self.url} rejected the token (HTTP 401 Unauthorized) for "
                    f"{what}: check plex.token / plex.token_file / $MEDIASAGE_PLEX_TOKEN")
            if status >= 500 or status in (408, 429):
                raise _Retryable("http", f"HTTP {status}", status, retry.retry_after(status, resp.headers))
            if status != 200:
                raise PlexHTTPError(f"Plex returned HTTP {status} for {what}", status)
            return self._parse(body, resp.headers.get("Content-Type"), parse, what)

        def on_retry(r: Exception, delay: float) -> None:
            log.warning("Plex's answer to %s: %s; retrying in %.1fs", what, r, delay)

        try:
            return retry.call(attempt, retries=self.retries, backoff=self._backoff, on_retry=on_retry)
        except _Retryable as r:
            tries = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
            if r.kind == "http":
                raise PlexHTTPError(f"Plex returned {r.reason} for {what} ({tries})", r.status) from None
            if r.kind == "xml":
                raise PlexBadResponse(f"Plex's answer to {what} ({tries}) was {r.reason}") from None
            raise PlexUnreachable(f"Plex unreachable at {self.url}: {r.reason} ({what}, {tries})") from None

    def _strict_parser(self) -> etree.XMLParser:
        """This thread's parser for whole MediaContainers (see ``_parsers``)."""
        parser = getattr(self._parsers, "parser", None)
        if parser is None:
            parser = self._parsers.parser = strict_parser()
        return parser

    def _parse(self, body: bytes, content_type: str | None, parse: Callable | None, what: str):
        """One 200 answer as a MediaContainer (or ``parse(body)``), cleaned if it must be."""
        def once(data: bytes):
            if parse is not None:
                return parse(data)
            root = etree.fromstring(data, self._strict_parser())
            if root.tag != "MediaContainer":
                raise ValueError(f"<{root.tag}> is not a Plex MediaContainer")
            return root

        if looks_like_html(body, content_type):
            raise _Retryable("xml", diagnose(body, content_type, None))
        try:
            return once(body)
        except (etree.XMLSyntaxError, ValueError) as exc:
            error: BaseException = exc
        cleaned = clean_xml(body)
        if cleaned is not None:
            try:
                result = once(cleaned[0])
            except (etree.XMLSyntaxError, ValueError) as exc:
                error, body = exc, cleaned[0]
            else:
                log.warning("Plex sent %d XML-illegal control character(s) in %s; removed them, "
                            "as plexapi does", cleaned[1], what)
                return result
        raise _Retryable("xml", diagnose(body, content_type, error))

    @staticmethod
    def _page_headers(start: int, size: int) -> dict:
        return {"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)}

    def _fetch_each(self, paths: list[tuple[str, str]], parse: Callable | None = None,
                    not_found: object = _NOT_FOUND_FAILS) -> Iterator:
        """The answer to each ``(path, what)`` in order, parsed as `_fetch` would (``parse``, else the
        MediaContainer); ``not_found``, if given, is the answer to an HTTP 404. The rule of a
        listing's pages: ``concurrent_pages`` requests in flight (`Fetchers`, own connections)
        while answers are parsed here; an answer that does not parse is fetched again in
        sequence, with `_fetch`'s retries."""
        def missing(exc: PlexHTTPError):
            """``not_found`` for a 404 when one is given; else the error stands."""
            if exc.status != 404 or not_found is _NOT_FOUND_FAILS:
                raise exc
            return not_found

        def fetch(path: str, what: str):
            try:
                return self._fetch(path, what=what, parse=parse)
            except PlexHTTPError as exc:
                return missing(exc)

        if self.concurrent_pages <= 1 or len(paths) <= 1:
            for path, what in paths:
                yield fetch(path, what)
            return
        pool = self._fetchers()
        pending: deque = deque()
        todo = iter(paths)
        try:
            while True:
                while len(pending) <= self.concurrent_pages:
                    nxt = next(todo, None)
                    if nxt is None:
                        break
                    pending.append((*nxt, pool.submit(*nxt)))
                if not pending:
                    return
                path, what, future = pending.popleft()
                try:
                    result = self._parse(future.result(), None, parse, what)
                except _Retryable:
                    result = fetch(path, what)
                except PlexHTTPError as exc:
                    result = missing(exc)
                yield result
        finally:
            for *_, future in pending:
                future.cancel()

    def _fetchers(self) -> Fetchers:
        """The threads `_fetch_each` keeps its requests in flight on, each with its connection to
        Plex: made at the first call and kept until `close` (an incremental sync makes several such
        calls, each of which used to start its threads and open its connections anew)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = Fetchers(self, self.concurrent_pages)
            return self._pool
