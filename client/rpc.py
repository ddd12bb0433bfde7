"""A small blocking JSON-RPC 2.0 client over a Unix stream socket (CONTRACT §2).

Framing is newline-delimited JSON: one JSON text per line, UTF-8, ``\\n``-terminated.
Responses are matched by ``id``; anything that arrives without an ``id`` while we
wait (a notification, e.g. ``sync.progress`` after ``events.subscribe``) is queued
and handed out by :meth:`RpcClient.next_notification`. Single-threaded on purpose:
the CLI does one thing at a time, so a read loop with deadlines is all it needs.
"""

from __future__ import annotations

import collections
import errno
import itertools
import json
import os
import socket
import stat
import time
from typing import Any

from .errors import CallTimeout, DaemonError, ProtocolError, Unreachable, daemon_error

_RECV_SIZE = 65536


class RpcClient:
    """One connection to mediasaged. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str, timeout: float = 10.0):
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self._responses: dict[Any, dict] = {}
        self._notifications: collections.deque[dict] = collections.deque()

    # -- connection -------------------------------------------------------------

    def connect(self) -> "RpcClient":
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise connect_error(self.path, exc, self.timeout) from None
        self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> "RpcClient":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------

    def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """Send one request and return its ``result``; raise :class:`DaemonError` on an error.

        ``timeout`` (default: the client's) bounds the whole call; notifications that
        arrive meanwhile are queued, not lost.
        """
        self.connect()
        req_id = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            request["params"] = params
        self._send(request)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while req_id not in self._responses:
            self._read_some(deadline, timeout if timeout is not None else self.timeout)
        response = self._responses.pop(req_id)
        if "error" in response and response["error"] is not None:
            raise _daemon_error(response["error"])
        if "result" not in response:
            raise ProtocolError(f"response to {method} has neither result nor error")
        return response["result"]

    def notify(self, method: str, params: Any = None) -> None:
        """Send a JSON-RPC notification (no id, no response)."""
        self.connect()
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def next_notification(self, timeout: float | None) -> dict | None:
        """The next server notification ``{"method", "params"}``, waiting up to ``timeout``
        seconds (``None`` = forever); ``None`` if none arrived in time."""
        self.connect()
        if self._notifications:
            return self._notifications.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._notifications:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                self._read_some(deadline, timeout)
            except Unreachable as exc:
                if exc.reason == "timeout":
                    return None
                raise
        return self._notifications.popleft()

    # -- plumbing ---------------------------------------------------------------

    def _send(self, message: dict) -> None:
        assert self._sock is not None
        data = encode_message(message)
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(data)
        except socket.timeout:
            raise CallTimeout(self.path, _secs(self.timeout)) from None
        except (BrokenPipeError, ConnectionResetError):
            raise Unreachable(self.path, "closed") from None

    def _read_some(self, deadline: float | None, budget: float | None) -> None:
        """Read until at least one complete line is processed, or raise on deadline/EOF."""
        assert self._sock is not None
        while True:
            newline = self._buf.find(b"\n")
            if newline >= 0:
                line = bytes(self._buf[:newline])
                del self._buf[: newline + 1]
                if line.strip():
                    self._dispatch(line)
                    return
                continue
            if deadline is None:
                self._sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CallTimeout(self.path, _secs(budget))
                self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(_RECV_SIZE)
            except socket.timeout:
                raise CallTimeout(self.path, _secs(budget)) from None
            except ConnectionResetError:
                raise Unreachable(self.path, "closed") from None
            if not chunk:
                raise Unreachable(self.path, "closed")
            self._buf += chunk

    def _dispatch(self, line: bytes) -> None:
        responses, notifications = decode_line(line)
        for item in responses:
            if item.get("id") is None:
                # An error about something we sent that could not be attributed
                # (e.g. a parse error): nothing else to match it to.
                raise _daemon_error(item.get("error") or {})
            self._responses[item["id"]] = item
        self._notifications.extend(notifications)


def encode_message(message: Any) -> bytes:
    """A message as one line: compact JSON, UTF-8, ``\\n``-terminated (CONTRACT §2). Shared with the async client."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode_line(line: bytes) -> tuple[list[dict], list[dict]]:
    """One line mediasaged sent (a message or a batch): its responses and its
    notifications (``{"method", "params"}``), in order; anything else is ignored,
    as the contract only ever adds. Shared with the async client.

    Raises ProtocolError when the line is not JSON or holds a message that is not an object.
    """
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"mediasaged sent invalid JSON: {exc}") from None
    responses: list[dict] = []
    notifications: list[dict] = []
    for item in message if isinstance(message, list) else [message]:
        if not isinstance(item, dict):
            raise ProtocolError("mediasaged sent a JSON-RPC message that is not an object")
        if "result" in item or "error" in item:
            responses.append(item)
        elif "method" in item:
            notifications.append({"method": item["method"], "params": item.get("params")})
    return responses, notifications


def _daemon_error(error: Any) -> DaemonError:
    if not isinstance(error, dict):
        return DaemonError(-32603, str(error))
    code = error.get("code")
    message = error.get("message") or "unknown error"
    return daemon_error(code if isinstance(code, int) else -32603, str(message), error.get("data"))


def connect_error(path: str, exc: OSError, timeout: float | None) -> Unreachable:
    """The :class:`Unreachable` for a failed ``connect`` to ``path`` (shared with the async client)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return CallTimeout(path, _secs(timeout))
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOTDIR:
        return Unreachable(path, "missing")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(path, _refused_reason(path))
    if isinstance(exc, PermissionError):
        return Unreachable(path, "denied")
    if exc.errno == errno.ENOTSOCK:
        return Unreachable(path, "not_socket")
    return Unreachable(path, "other", exc.strerror or str(exc))


def error_from_response(error: Any) -> DaemonError:
    """A JSON-RPC error object → the typed :class:`DaemonError` for its code."""
    return _daemon_error(error)


def _refused_reason(path: str) -> str:
    """Linux answers ECONNREFUSED both for a stale socket and for a non-socket file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "refused"
    return "refused" if stat.S_ISSOCK(mode) else "not_socket"


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "the time allowed"
    return f"{seconds:g}s"
