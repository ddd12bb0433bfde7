"""The Python client API of mediasaged: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio).

    from mediasagectl import Client, NotSynced

    with Client() as ms:                      # finds the socket as mediasagectl does
        print(ms.call("library.status")["track_count"])
        try:
            page = ms.call("tracks.query", genres=["Jazz"], limit=5)
        except NotSynced:
            ms.call("sync.start")

Both speak JSON-RPC 2.0 over the Unix socket, one JSON text per line
(``\\n``-terminated, UTF-8). Errors are typed (:mod:`mediasagectl.errors`): the
daemon's error codes map to :class:`~mediasagectl.errors.DaemonError` subclasses
(``NotSynced`` -32001, ``PlexUnreachable`` -32002, ``PermissionDenied`` -32003,
``LimitExceeded`` -32004, ``InvalidParams`` -32602, ...); a daemon that cannot be reached raises
:class:`~mediasagectl.errors.Unreachable`, one that does not answer in time
:class:`~mediasagectl.errors.CallTimeout`. Events arrive after :meth:`subscribe`
and are read with :meth:`events` / :meth:`next_event` as :class:`Event` tuples.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any, AsyncIterator, Iterator, NamedTuple

from .discovery import discover
from .errors import CallTimeout, DaemonError, ProtocolError, Unreachable
from .rpc import RpcClient, connect_error, decode_line, encode_message, error_from_response

DEFAULT_TIMEOUT = 10.0
_LINE_LIMIT = 64 << 20  # a tracks.query of 10,000 tracks is a few MiB


class Event(NamedTuple):
    """A notification from the daemon: ``method`` is the event name (e.g. ``sync.progress``)."""

    method: str
    params: Any


def find_socket(socket: str | None = None, config: str | None = None) -> str:
    """The socket path by the discovery order (README "Finding the daemon");
    raises :class:`Unreachable` (reason ``not_found``) listing what was tried."""
    choice = discover(socket, config, os.environ, os.getcwd())
    if choice.path is None:
        raise Unreachable("", "not_found", choice.explain())
    return choice.path


def _params(params: Any, named: dict[str, Any]) -> Any:
    if named:
        if params is not None:
            raise TypeError("give params either as one object/list or as keyword arguments")
        return named
    return params


class Client:
    """A blocking connection to mediasaged. Use as a context manager, or call :meth:`close`.

    ``socket``: its path (default: discovered); ``timeout``: seconds allowed for
    connecting and for each call (a call may pass its own).
    """

    def __init__(self, socket: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 config: str | None = None):
        self.socket = socket or find_socket(None, config)
        self.timeout = timeout
        self._rpc = RpcClient(self.socket, timeout=timeout)

    def __enter__(self) -> "Client":
        self._rpc.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._rpc.close()

    def call(self, method: str, params: Any = None, /, *, timeout: float | None = None,
             **named: Any) -> Any:
        """Call ``method`` and return its result. Params go as one dict/list or as keywords:
        ``call("tracks.query", {"limit": 5})`` is ``call("tracks.query", limit=5)``."""
        return self._rpc.call(method, _params(params, named), timeout=timeout)

    def notify(self, method: str, params: Any = None, /, **named: Any) -> None:
        """Send a JSON-RPC notification (no response)."""
        self._rpc.notify(method, _params(params, named))

    def subscribe(self, *events: str) -> list[str]:
        """Subscribe this connection to events (``sync.started``, ``sync.progress``,
        ``sync.finished``, ``library.changed``); returns the subscribed names."""
        return self.call("events.subscribe", events=list(events))["subscribed"]

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (None: forever); None if none came."""
        note = self._rpc.next_notification(timeout)
        return None if note is None else Event(note["method"], note.get("params"))

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Events as they arrive; ends when none came for ``timeout`` seconds (None: never)."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event


class AsyncClient:
    """An asyncio connection to mediasaged: several calls may be in flight at once.

    ``async with AsyncClient() as ms: await ms.call("library.status")``.
    """

    def __init__(self, socket: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 config: str | None = None):
        self.socket = socket or find_socket(None, config)
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task | None = None
        self._closed_error: BaseException | None = None

    async def __aenter__(self) -> "AsyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> "AsyncClient":
        if self._writer is not None:
            return self
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket, limit=_LINE_LIMIT), self.timeout)
        except asyncio.TimeoutError:
            raise CallTimeout(self.socket, f"{self.timeout:g}s") from None
        except OSError as exc:
            raise connect_error(self.socket, exc, self.timeout) from None
        self._writer = writer
        self._pump = asyncio.create_task(self._read(reader))
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = None
        if self._pump is not None:
            self._pump.cancel()
            try:
                await self._pump
            except (asyncio.CancelledError, Exception):
                pass
            self._pump = None

    async def call(self, method: str, params: Any = None, /, *, timeout: float | None = None,
                   **named: Any) -> Any:
        """Call ``method`` and return its result (see :meth:`Client.call`)."""
        await self.connect()
        ident = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
        params = _params(params, named)
        if params is not None:
            request["params"] = params
        future = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        budget = self.timeout if timeout is None else timeout
        try:
            await self._send(request)
            response = await asyncio.wait_for(future, budget)
        except asyncio.TimeoutError:
            raise CallTimeout(self.socket, f"{budget:g}s") from None
        finally:
            self._waiting.pop(ident, None)
        if response.get("error") is not None:
            raise error_from_response(response["error"])
        if "result" not in response:
            raise ProtocolError(f"response to {method} has neither result nor error")
        return response["result"]

    async def notify(self, method: str, params: Any = None, /, **named: Any) -> None:
        await self.connect()
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        params = _params(params, named)
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def subscribe(self, *events: str) -> list[str]:
        return (await self.call("events.subscribe", events=list(events)))["subscribed"]

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (None: forever); None if none came."""
        await self.connect()
        try:
            item = await asyncio.wait_for(self._events.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if isinstance(item, BaseException):
            self._events.put_nowait(item)  # every later read sees the closed connection too
            raise item
        return item

    async def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """``async for event in ms.events():`` until none came for ``timeout`` seconds."""
        while True:
            event = await self.next_event(timeout)
            if event is None:
                return
            yield event

    # -- plumbing ---------------------------------------------------------------

    async def _send(self, message: dict) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        assert self._writer is not None
        data = encode_message(message)
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise Unreachable(self.socket, "closed") from None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        error: BaseException = Unreachable(self.socket, "closed")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.strip():
                    self._dispatch(line)
        except (ProtocolError, DaemonError) as exc:  # DaemonError: about the connection, not a call
            error = exc
        except (ConnectionResetError, ValueError):  # ValueError: a line over the limit
            pass
        self._closed_error = error
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._events.put_nowait(error)

    def _dispatch(self, line: bytes) -> None:
        responses, notifications = decode_line(line)
        for item in responses:
            if item.get("id") is None and item.get("error") is not None:
                # about the connection, not one call (a refusal over the caps, a parse
                # error): every call waiting on it fails with it, as in the sync client
                raise error_from_response(item["error"])
            future = self._waiting.get(item.get("id"))
            if future is not None and not future.done():
                future.set_result(item)
        for note in notifications:
            self._events.put_nowait(Event(note["method"], note["params"]))
