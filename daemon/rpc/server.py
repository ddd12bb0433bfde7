"""The Unix socket: binding, newline framing, limits, peer credentials, pushes.

One task per connection reads lines; each line is answered by its own task, so a
connection may have several requests in flight and a client that stalls
half-way through a line holds up nobody else. A line over ``MAX_LINE`` bytes is
answered with -32600 and the connection is closed. A client that stops reading
is dropped once ``MAX_BUFFERED`` bytes wait for it, so pushes never grow memory
without bound.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20  # CONTRACT §2: a line over 1 MiB is refused
MAX_BUFFERED = 16 << 20  # unread output before a connection is dropped
MAX_IN_FLIGHT = 64  # concurrent requests per connection


class SocketError(Exception):
    """The socket cannot be bound (another daemon owns it, bad directory...)."""


def bind_unix_socket(path: Path, mode: int) -> socket.socket:
    """Bind and listen on ``path`` with permissions ``mode``.

    A socket file left by a dead daemon (connect refused) is replaced; one that a
    live daemon answers on is not, and neither is anything that is not a socket.
    """
    directory = path.parent
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    if directory.stat().st_mode & stat.S_IWOTH:  # CONTRACT §6 (/tmp included: anyone could squat the name)
        raise SocketError(f"socket directory {directory} is world-writable; refusing to use it "
                          "(put the socket in a directory of its own)")
    if len(os.fsencode(path)) > 107:
        raise SocketError(f"socket path too long for a Unix socket ({len(os.fsencode(path))} > 107 bytes): {path}")
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise SocketError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise SocketError(f"cannot check existing socket {path}: {exc.strerror}") from None
            log.info("replacing stale socket %s", path)
            path.unlink(missing_ok=True)
        else:
            raise SocketError(f"socket {path} is in use by a running mediasaged")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)  # the file is born with the right mode
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise SocketError(f"cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    os.chmod(path, mode)
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Peer(*struct.unpack("3i", raw))


@dataclass(eq=False)
class Connection:
    peer: Peer
    read_only: bool
    writer: asyncio.StreamWriter
    subscriptions: set[str] = field(default_factory=set)

    def send_line(self, text: str) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("dropping connection of pid %s: it stopped reading", self.peer.pid)
            self.writer.transport.abort()
            return
        self.writer.write(text.encode() + b"\n")



Dispatch = Callable[[str, Connection], Awaitable["str | None"]]


class Server:
    """Accepts connections on a listening socket and feeds lines to ``dispatch``."""

    def __init__(self, dispatch: Dispatch, *, allowed_uids: Iterable[int] = (), read_only_uids: Iterable[int] = ()):
        self._dispatch = dispatch
        self.configure(allowed_uids, read_only_uids)
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    def configure(self, allowed_uids: Iterable[int], read_only_uids: Iterable[int]) -> None:
        self._allowed = frozenset(allowed_uids)
        self._read_only = frozenset(read_only_uids)

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE + 1)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def publish(self, event: str, params: object) -> None:
        """Push an event notification to every connection subscribed to it (encoded once)."""
        line = None
        for conn in list(self.connections):
            if event in conn.subscriptions:
                if line is None:
                    body = {"jsonrpc": "2.0", "method": event, "params": params}
                    line = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
                conn.send_line(line)

    def _admits(self, peer: Peer) -> bool:
        # Read-only uids are implicitly allowed to connect (to read).
        return (not self._allowed or peer.uid in self._allowed or peer.uid in self._read_only
                or peer.uid in (0, os.getuid()))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            peer = peer_of(writer.get_extra_info("socket"))
            if not self._admits(peer):
                log.warning("refused connection from uid %d (not in daemon.allowed_uids)", peer.uid)
                writer.write(_error_line(-32003, "permission_denied", f"uid {peer.uid} may not connect"))
                await writer.drain()
                return
            read_only = peer.uid in self._read_only
            conn = Connection(peer, read_only, writer)
            self.connections.add(conn)
            try:
                await self._read_lines(reader, conn)
            finally:
                self.connections.discard(conn)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _read_lines(self, reader: asyncio.StreamReader, conn: Connection) -> None:
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        pending: set[asyncio.Task] = set()
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    raw = exc.partial  # last line without a newline, or EOF
                    if not raw.strip():
                        break
                except asyncio.LimitOverrunError:
                    conn.writer.write(_error_line(-32600, "Invalid Request", "request line exceeds 1 MiB"))
                    await conn.writer.drain()
                    break
                if len(raw) > MAX_LINE + 1:
                    conn.writer.write(_error_line(-32600, "Invalid Request", "request line exceeds 1 MiB"))
                    break
                if not raw.strip():
                    continue
                await in_flight.acquire()
                task = asyncio.create_task(self._answer(raw, conn))
                pending.add(task)
                task.add_done_callback(lambda t: (pending.discard(t), in_flight.release()))
                if reader.at_eof():
                    break
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await conn.writer.drain()
        finally:
            for task in pending:
                task.cancel()

    async def _answer(self, raw: bytes, conn: Connection) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            conn.writer.write(_error_line(-32700, "Parse error", "request is not valid UTF-8"))
            return
        answer = await self._dispatch(line, conn)
        if answer is not None:
            conn.send_line(answer)
            try:
                await conn.writer.drain()
            except ConnectionError:
                pass


def _error_line(code: int, message: str, data: str) -> bytes:
    body = {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "id": None}
    return json.dumps(body).encode() + b"\n"
