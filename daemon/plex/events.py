"""Following Plex's notification websocket (``sync.plex_events``).

Plex pushes a "timeline" frame when a library item is created, edited
(state 5) or deleted (state 9). A `NotificationListener` runs in its own
thread, keeps one websocket open -- Plex restarts and network drops are
normal, so it reconnects with backoff (`retry`: 1 s doubling to 60 s, or what
a 429/503's Retry-After asks). A connection that died without a word (Plex's
host lost power, a NAT forgot it: nothing ever arrives again, and nothing says
so) is found by a websocket ping after ``PING_AFTER`` quiet seconds, which Plex
answers (home automation's Plex integration pings it every 15 s): no answer
within ``PONG_WITHIN`` and the socket is dropped and reopened. It calls
``on_change(entries)`` for every frame that names a music item (artist, album,
track) of our section, or an item deleted without its kind (``type`` -1). The daemon turns those calls into one incremental
sync once Plex has been quiet for a moment (see ``daemon.py``); the periodic
sync stays as the safety net. ``on_connect()`` is called each time the socket
opens (Plex answers again: an owed sync need not wait for its retry time);
after HTTP 401 the listener calls ``on_rejected()`` and ends -- asking again
with the same token would only hammer Plex (the daemon starts a new listener
after a reload that changes the token, or once a sync succeeds).

This talks to Plex without plexapi (whose AlertListener does not reconnect),
using websocket-client. The URL carries the token (Plex takes it only in the
query string), so it is never logged: messages name ``plex.url`` without it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import websocket

from .cabundle import websocket_sslopt
from .frames import UNKNOWN_KIND, notifications_url, timeline_entries
from .items import FetchFailed, ItemFetcher
from .redact import redact, safe_url
from .retry import Backoff, retry_after

log = logging.getLogger(__name__)

MUSIC_TYPES = frozenset({8, 9, 10})  # artist, album, track
FOLLOWED_TYPES = MUSIC_TYPES | {UNKNOWN_KIND}  # and an item deleted without its kind
CHANGE_STATES = frozenset({0, 5, 9})  # created, done (also after edits), deleted
RECV_TIMEOUT = 1.0  # seconds; how quickly stop() is noticed
MAX_BACKOFF = 60.0
PING_AFTER = 30.0  # seconds without a frame from Plex before we ping it
PONG_WITHIN = 15.0  # seconds it has to answer (any frame counts) before the socket is taken for dead
# bytes of one message from Plex: a timeline frame is a few KB (10,000 entries ~1.3 MB), and a
# frame's length is Plex's to say: a wrong one must not fill the daemon's memory
MAX_MESSAGE = 16 << 20


class NotificationListener:
    """One thread holding Plex's notification websocket open; see the module docstring."""

    def __init__(self, url: str, token: str, *, verify_ssl: bool, timeout: float,
                 on_change: Callable[[list[dict]], None], section_id: Callable[[], str | None] = lambda: None,
                 on_connect: Callable[[], None] = lambda: None, on_rejected: Callable[[], None] = lambda: None,
                 on_refused: Callable[[], None] = lambda: None, ping_after: float = PING_AFTER,
                 pong_within: float = PONG_WITHIN, max_message: int = MAX_MESSAGE):
        self._url = url
        self._token = token
        self._verify_ssl = verify_ssl
        self._timeout = timeout
        self._on_change = on_change
        self._section_id = section_id
        self._on_connect = on_connect
        self._on_rejected = on_rejected
        self._on_refused = on_refused
        self._ping_after, self._pong_within, self._max_message = ping_after, pong_within, max_message
        self._stop = threading.Event()
        self._backoff = Backoff(1.0, MAX_BACKOFF, sleep=self._stop.wait)  # a stop ends the wait
        self._thread = threading.Thread(target=self._run, name="plex-notifications", daemon=True)
        self.connected = threading.Event()
        self.connections = 0  # made so far (a second one follows a drop)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (within about RECV_TIMEOUT); does not wait."""
        self._stop.set()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the thread to end (blocking: run it off the event loop)."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        attempt = 0
        where = safe_url(self._url)
        while not self._stop.is_set():
            asked = None
            try:
                self._follow(where)
                reason = "the connection closed"
            except websocket.WebSocketBadStatusException as exc:  # its text carries headers and body
                if exc.status_code == 401:
                    self.connected.clear()
                    if self._serves_library():
                        log.warning("Plex notifications at %s: Plex refuses them to this token (HTTP 401) but "
                                    "serves it the library: a token of a user the owner shared the server "
                                    "with? Following Plex stays off until the token changes; syncs run as "
                                    "scheduled", where)
                        self._on_refused()
                    else:
                        log.warning("Plex notifications at %s: Plex rejected the token (HTTP 401); not "
                                    "asking again until the token changes or a sync succeeds", where)
                        self._on_rejected()
                    return
                reason = f"HTTP {exc.status_code}"
                asked = retry_after(exc.status_code, exc.resp_headers)
            except (websocket.WebSocketException, OSError) as exc:
                reason = redact(str(exc), self._token) or type(exc).__name__
            if self.connected.is_set():  # it was up: a drop is news, retry soon
                attempt = 0
            self.connected.clear()
            if self._stop.is_set():
                break
            delay = self._backoff.delay(attempt, asked)
            log.warning("Plex notifications at %s: %s; reconnecting in %.0f s", where, reason, delay)
            self._backoff.sleep(delay)
            attempt += 1

    def _serves_library(self) -> bool:
        """Whether Plex answers a library request with this token (a 401 on the websocket alone
        is a user Plex serves the library but not its notifications: not the owner)."""
        try:
            ItemFetcher(self._url, self._token, timeout=self._timeout, verify_ssl=self._verify_ssl).sections()
        except FetchFailed:
            return False
        return True

    def _follow(self, where: str) -> None:
        """Connect and read frames until the connection ends or stop() is called."""
        sslopt = websocket_sslopt(self._verify_ssl)
        ws = websocket.create_connection(notifications_url(self._url, self._token), timeout=self._timeout,
                                         sslopt=sslopt, enable_multithread=True)
        try:
            ws.settimeout(min(RECV_TIMEOUT, self._ping_after / 2, self._pong_within / 2))
            taken = ws.frame_buffer.recv = _Taken(ws.frame_buffer.recv, self._max_message)
            self.connected.set()
            self.connections += 1
            log.info("following Plex notifications at %s", where)
            self._on_connect()
            heard, pinged = time.monotonic(), None
            while not self._stop.is_set():
                try:
                    opcode, frame = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    at = time.monotonic()
                    if pinged is not None and at - pinged >= self._pong_within:
                        ws.shutdown()  # (no close handshake with a peer that is not there)
                        raise TimeoutError(f"no answer to a ping within {self._pong_within:g} s") from None
                    if pinged is None and at - heard >= self._ping_after:
                        ws.ping()
                        pinged = at
                    continue
                heard, pinged, taken.bytes = time.monotonic(), None, 0
                if opcode == websocket.ABNF.OPCODE_CLOSE:  # closed by Plex
                    return
                if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                    continue  # a ping (answered by websocket-client) or pong: Plex is there
                entries = [e for e in timeline_entries(frame, self._section_id())
                           if e["type"] in FOLLOWED_TYPES and e["state"] in CHANGE_STATES]
                if entries:
                    self._on_change(entries)
        finally:
            ws.close()


class _Taken:
    """websocket-client's frame reader takes bytes off the socket through this (its
    ``frame_buffer.recv``; tests/test_plex.py checks the bound on the version installed): past
    ``limit`` since the last whole message, the connection is given up (`MAX_MESSAGE`)."""

    def __init__(self, recv: Callable[[int], bytes], limit: int):
        self._recv, self._limit, self.bytes = recv, limit, 0

    def __call__(self, n: int) -> bytes:
        data = self._recv(n)
        self.bytes += len(data)
        if self.bytes > self._limit:
            raise websocket.WebSocketPayloadException(f"a message of over {self._limit:,} bytes")
        return data
