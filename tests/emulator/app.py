"""The emulator's HTTP + websocket server (aiohttp) and the PlexEmulator handle.

``PlexEmulator(library, token=...)`` runs an aiohttp server on its own event loop in a
background thread, bound to 127.0.0.1 (port 0 = any free port; ``emu.url`` has the real
one). Use it as a context manager or call start()/stop().
"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import socket
import ssl
import threading
import uuid
from typing import Iterable

from aiohttp import WSMsgType, web

from . import render
from .faults import Fault, FaultSet, RequestInfo
from .listing import ListingError, serve_listing
from .model import STATE_CREATED, Library

CONTENT_TYPE = "text/xml;charset=utf-8"
_SHORT = web.RequestKey("short_page", bool) if hasattr(web, "RequestKey") else "short_page"
_UNAUTHORIZED = b"<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>"


def xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": CONTENT_TYPE})


def _items_in(body: bytes) -> int:
    """The ``size`` of an answer's MediaContainer: how many items it holds."""
    found = _SIZE.search(body, 0, body.find(b">", body.find(b"<MediaContainer")))
    return int(found.group(1)) if found else 0


_SIZE = re.compile(rb'\ssize="([0-9]+)"')


def container_params(request: web.Request) -> tuple[int | None, int | None]:
    """X-Plex-Container-Start/Size from headers or the query string (query wins)."""
    out = []
    for name in ("X-Plex-Container-Start", "X-Plex-Container-Size"):
        v = request.query.get(name, request.headers.get(name))
        try:
            out.append(int(v) if v not in (None, "") else None)
        except ValueError:
            out.append(None)
    return out[0], out[1]


class PlexEmulator:
    def __init__(self, library: Library, *, token: str = "test-token", host: str = "127.0.0.1",
                 port: int = 0, slow_seconds: float = 5.0, render_seconds_per_track: float = 0.0,
                 other_music: Iterable[Library] = (), shared_tokens: Iterable[str] = (),
                 tls: ssl.SSLContext | None = None, gzip: bool = False):
        self.library = library
        self.tls = tls  # served over https (and wss) with this server context
        # answers compressed for a client that accepts it, as Plex Media Server compresses them
        # (PlexConnect#293: "allow PMS to gzip files requested by PlexConnect")
        self.gzip = gzip
        # tokens of users the owner shared the library with: Plex serves them the library but
        # refuses them its notification websocket (HTTP 401; PlexKodiConnect#97's server log:
        # "authenticating user as guest", then 401 for /:/websockets/notifications)
        self.shared_tokens = set(shared_tokens)
        # more music sections of the same server (another library, "Audiobooks" say), each a
        # Library of its own section key and rating keys; ``library`` is the one tests sync
        self.other_music = list(other_music)
        self.token = token
        self.host = host
        self.port = port
        self.faults = FaultSet()
        self.faults.slow_seconds = slow_seconds
        # Time a real server spends rendering each track of a listing page: each track
        # in the answer, so a "changed since" page of 10 tracks costs 10, not the page
        # size asked for. It is slept (not computed), so concurrent requests overlap
        # the way they do on a Plex server that renders pages on several threads.
        self.render_seconds_per_track = render_seconds_per_track
        self.request_log: collections.deque[str] = collections.deque(maxlen=100_000)
        # (path_qs, X-Plex-Container-Start, X-Plex-Container-Size) of every request: which pages were read
        self.page_log: collections.deque[tuple[str, int | None, int | None]] = collections.deque(maxlen=100_000)
        self.request_count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ws: set[web.WebSocketResponse] = set()
        self._ws_changed = threading.Condition()
        self._outbox: asyncio.Queue | None = None
        self._broadcaster: asyncio.Task | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # ---- lifecycle ----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.port}/:/websockets/notifications?X-Plex-Token={self.token}"

    def start(self) -> "PlexEmulator":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, args=(sock,), name="plex-emulator",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._start_error:
            raise RuntimeError("emulator failed to start") from self._start_error
        for lib in self._libraries():
            lib.listeners.append(self._on_library_change)
        return self

    def pin(self, cpus: set[int]) -> None:
        """Run the emulator's serving thread (its one event loop) on these CPUs only (benchmarks)."""
        assert self._thread is not None and self._thread.native_id is not None, "start() first"
        os.sched_setaffinity(self._thread.native_id, cpus)

    def _run(self, sock: socket.socket) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._setup(sock))
        except BaseException as e:  # pragma: no cover - reported by start()
            self._start_error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._teardown())
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:  # e.g. a "slow" fault still sleeping
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    async def _setup(self, sock: socket.socket) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        app.router.add_get("/", self._root)
        app.router.add_get("/identity", self._identity)
        app.router.add_get("/library", self._library)
        app.router.add_get("/library/sections", self._sections)
        app.router.add_get("/library/sections/{sid}/all", self._all)
        app.router.add_get("/library/sections/{sid}/collections", self._collections)
        app.router.add_get("/library/sections/{sid}/genre", self._genres)
        app.router.add_get("/library/metadata/{keys}", self._metadata)
        app.router.add_get("/library/metadata/{key}/children", self._children)
        app.router.add_get("/:/websockets/notifications", self._websocket)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=self.tls).start()
        self._outbox = asyncio.Queue()
        self._broadcaster = asyncio.ensure_future(self._broadcast_loop())

    async def _teardown(self) -> None:
        for ws in list(self._ws):
            await ws.close()
        if self._broadcaster:
            self._broadcaster.cancel()
        if self._runner:
            await self._runner.cleanup()

    def _libraries(self) -> list[Library]:
        return [self.library, *self.other_music]

    def _section(self, sid: str) -> Library:
        """The music library of section ``sid`` (``library`` for any other: it answers 404 or the
        movie section)."""
        return next((lib for lib in self.other_music if lib.section_key == sid), self.library)

    def _owner(self, key: str) -> Library:
        """The library holding item ``key`` (``library`` if none does: it answers 404)."""
        return next((lib for lib in self.other_music if lib.holds(key)), self.library)

    def stop(self) -> None:
        for lib in self._libraries():
            if self._on_library_change in lib.listeners:
                lib.listeners.remove(self._on_library_change)
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "PlexEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- test controls --------------------------------------------------------------
    def inject_fault(self, kind: str, *, path_contains: str = "/all", page: int | None = None,
                     times: int | None = 1, libtype: int | None = None,
                     delay: float | None = None, retry_after: str | None = None,
                     rewrite=None, content_type: str | None = None) -> Fault:
        return self.faults.add(kind, path_contains=path_contains, page=page, times=times,
                               libtype=libtype, delay=delay, retry_after=retry_after,
                               rewrite=rewrite, content_type=content_type)

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def slow_seconds(self) -> float:
        return self.faults.slow_seconds

    @slow_seconds.setter
    def slow_seconds(self, value: float) -> None:
        self.faults.slow_seconds = value

    # mutations: thin wrappers so tests can say emu.add_track(...)
    def add_track(self, **kw) -> str:
        return self.library.add_track(**kw)

    def delete_track(self, rating_key: str) -> None:
        self.library.delete_track(rating_key)

    def delete_album(self, album_key: str) -> None:
        self.library.delete_album(album_key)

    def edit_track(self, rating_key: str, **fields) -> int:
        return self.library.edit_track(rating_key, **fields)

    def rate_track(self, rating_key: str, rating: float | None) -> int:
        return self.library.rate_track(rating_key, rating)

    def play_track(self, rating_key: str) -> int:
        return self.library.play_track(rating_key)

    def set_album_genres(self, album_key: str, genres) -> int:
        return self.library.set_album_genres(album_key, genres)

    def edit_album(self, album_key: str, **kw) -> int:
        return self.library.edit_album(album_key, **kw)

    def edit_artist(self, artist_key: str, **kw) -> int:
        return self.library.edit_artist(artist_key, **kw)

    def set_machine_identifier(self, new: str) -> None:
        self.library.set_machine_identifier(new)

    # websocket helpers
    @property
    def ws_client_count(self) -> int:
        return len(self._ws)

    def wait_for_ws_clients(self, n: int = 1, timeout: float = 10.0) -> bool:
        with self._ws_changed:
            return self._ws_changed.wait_for(lambda: len(self._ws) >= n, timeout)

    def drop_websockets(self) -> None:
        """Close every notification socket (a Plex restart / network drop)."""
        async def _close():
            for ws in list(self._ws):
                await ws.close()
        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)

    def send_notification(self, container: dict) -> None:
        """Send one raw frame: {"NotificationContainer": container}."""
        self._loop.call_soon_threadsafe(self._outbox.put_nowait,
                                        json.dumps({"NotificationContainer": container}))

    def _on_library_change(self, entries: list[dict]) -> None:
        if any(e["state"] == STATE_CREATED for e in entries):
            self.send_notification({"type": "activity", "size": 1, "ActivityNotification": [{
                "event": "ended", "uuid": str(uuid.uuid4()), "Activity": {
                    "uuid": str(uuid.uuid4()), "type": "library.update.section",
                    "cancellable": False, "userID": 1, "title": f"Scanning {self.library.music_title}",
                    "subtitle": "", "progress": 100, "Context": {"librarySectionID": entries[0]["sectionID"]}}}]})
        self.send_notification({"type": "timeline", "size": len(entries), "TimelineEntry": entries})

    async def _broadcast_loop(self) -> None:
        while True:
            msg = await self._outbox.get()
            for ws in list(self._ws):
                try:
                    await ws.send_str(msg)
                except Exception:  # client went away
                    self._ws.discard(ws)

    # ---- middleware: auth, faults, logging ------------------------------------------
    def _authorized(self, request: web.Request) -> bool:
        tok = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token")
        return tok == self.token or tok in self.shared_tokens and request.path != "/:/websockets/notifications"

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        self.request_count += 1
        self.request_log.append(request.path_qs)
        start, size = container_params(request)
        self.page_log.append((request.path_qs, start, size))
        if request.path != "/identity" and not self._authorized(request):
            return web.Response(body=_UNAUTHORIZED, status=401, content_type="text/html")
        try:
            libtype = int(request.query.get("type", ""))
        except ValueError:
            libtype = None
        fault = self.faults.match(RequestInfo(request.path_qs, start, size, libtype))
        if fault is None:
            resp = await handler(request)
            if self.gzip and type(resp) is web.Response:
                resp.enable_compression()  # (by the request's Accept-Encoding)
            return resp
        kind = fault.kind
        if kind == "short":
            request[_SHORT] = True
            return await handler(request)
        if kind in ("500", "503", "429", "400", "401", "404"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            return web.Response(text=f"emulated fault {kind}", status=int(kind), headers=headers)
        if kind == "slow":
            await asyncio.sleep(fault.delay if fault.delay is not None else self.faults.slow_seconds)
            return await handler(request)
        if kind == "drop":
            request.transport.close()
            raise asyncio.CancelledError  # nothing is written: the client sees EOF
        resp = await handler(request)
        body = resp.body or b""
        if kind == "rewrite":
            return web.Response(body=fault.rewrite(body), status=resp.status,
                                headers={"Content-Type": fault.content_type or CONTENT_TYPE})
        half = body[: len(body) // 2]
        if kind == "truncate":  # a well-formed HTTP 200 whose XML stops halfway
            return xml_response(half, resp.status)
        # "cut": announce the full length, send half, then close the connection
        sr = web.StreamResponse(status=resp.status, headers={"Content-Type": CONTENT_TYPE})
        sr.content_length = len(body)
        await sr.prepare(request)
        await sr.write(half)
        request.transport.close()
        raise asyncio.CancelledError

    # ---- handlers -------------------------------------------------------------------
    async def _root(self, request):
        with self.library.lock:
            return xml_response(render.root(self.library))

    async def _identity(self, request):
        with self.library.lock:
            return xml_response(render.identity(self.library))

    async def _library(self, request):
        return xml_response(render.library_root())

    async def _sections(self, request):
        with self.library.lock:
            return xml_response(render.sections(self.library, self.other_music))

    def _listing(self, section: str, query, start, size, *, lib: Library | None = None, **kw) -> web.Response:
        """One listing as Plex answers it (of section ``section``, or ``lib``'s), or the HTTP error
        it would give."""
        lib = lib or self._section(section)
        try:
            return xml_response(serve_listing(lib, section, query, start, size, **kw))
        except ListingError as e:
            return web.Response(text=str(e), status=e.status)

    async def _all(self, request):
        start, size = container_params(request)
        if request.get(_SHORT) and size:
            size = max(1, size // 2)
        response = self._listing(request.match_info["sid"], request.query, start, size, what="all")
        if self.render_seconds_per_track and size and request.query.get("type") == "10":
            await asyncio.sleep(self.render_seconds_per_track * _items_in(response.body))
        return response

    async def _collections(self, request):
        start, size = container_params(request)
        return self._listing(request.match_info["sid"], request.query, start, size, what="collections")

    async def _genres(self, request):
        return self._listing(request.match_info["sid"], request.query, None, None, what="genre")

    async def _metadata(self, request):
        return self._listing(self.library.section_key, request.query, None, None, what="metadata",
                             keys=request.match_info["keys"], others=self.other_music)

    async def _children(self, request):
        start, size = container_params(request)
        lib = self._owner(request.match_info["key"])
        return self._listing(lib.section_key, request.query, start, size, lib=lib, what="children",
                             keys=request.match_info["key"])

    async def _websocket(self, request):
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._ws.add(ws)
        with self._ws_changed:
            self._ws_changed.notify_all()
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._ws.discard(ws)
            with self._ws_changed:
                self._ws_changed.notify_all()
        return ws
