"""The Unix socket: binding, newline framing, limits, peer credentials, pushes.

One task per connection reads lines; each line is answered by its own task, so a
connection may have several requests in flight (at most ``MAX_IN_FLIGHT``; then
the connection is not read until one is answered) and a client that stalls
half-way through a line holds up nobody else. A line over ``MAX_LINE`` bytes is
answered with -32600 and the connection is closed. A client that stops reading
is dropped once ``MAX_BUFFERED`` bytes wait for it, so pushes never grow memory
without bound; a connection does not start another heavy call before its
client has read what was already written to it.

Connections beyond ``daemon.max_connections`` (or ``daemon.max_connections_per_uid``
for one uid) get one -32004 ``limit_exceeded`` line, then EOF (`Server._refuse`); the cap is
kept ``FD_HEADROOM`` file descriptors under the process's limit, so a running
sync always has descriptors to work with. Requests of a connection whose peer
has gone are cancelled, not run to the end.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import select
import socket
import stat
import struct
import sys
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterable

from .lanes import FairLane

log = logging.getLogger(__name__)

MAX_LINE = 1 << 20  # CONTRACT §2: a line over 1 MiB is refused
MAX_BUFFERED = 16 << 20  # unread output before a connection is dropped
MAX_IN_FLIGHT = 16  # request lines in flight per connection (was 64; more wait in the socket)
FD_HEADROOM = 64  # file descriptors kept free for the database, the sync worker's pipes and Plex
LIMIT_EXCEEDED = -32004
LINGER = 0.5  # seconds a refused connection is read (and dropped) before it is closed
MAX_LINGERING = 16  # refused connections lingering at once (the rest are closed at once)


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


@dataclass(frozen=True)
class Lanes:
    """The server's lanes for heavy calls and for batches that hold some (rpc/lanes.py)."""

    heavy: FairLane
    batches: FairLane


@dataclass(eq=False)
class Connection:
    peer: Peer
    read_only: bool
    writer: asyncio.StreamWriter
    subscriptions: set[str] = field(default_factory=set)
    lanes: Lanes = field(default_factory=lambda: Lanes(FairLane(4), FairLane(4)))

    def send_line(self, line: str | bytes) -> None:
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("dropping connection of pid %s: it stopped reading", self.peer.pid)
            self.writer.transport.abort()
            return
        self.writer.write(line if type(line) is bytes else line.encode())  # no copy to append the newline
        self.writer.write(b"\n")

    @asynccontextmanager
    async def heavy(self) -> AsyncIterator[None]:
        """A slot of the heavy lane, once the client has read what it was sent."""
        await self._drained()
        async with self.lanes.heavy.slot(self):
            yield

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        async with self.lanes.batches.slot(self):
            yield

    async def _drained(self) -> None:
        try:
            await self.writer.drain()
        except ConnectionError:
            raise asyncio.CancelledError from None  # the peer is gone: its request is dropped

    def peer_gone(self) -> bool:
        """True once the peer closed its end completely (not merely shut down its writing)."""
        sock = self.writer.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return True
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        return any(events & (select.POLLHUP | select.POLLERR) for _, events in poll.poll(0))


def open_fds() -> int:
    """How many file descriptors this process has open."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 32


def fd_budget(wanted: int, in_use: int) -> int:
    """How many connections the descriptor limit allows, at most ``wanted``.

    Raises the soft RLIMIT_NOFILE to the hard one first (systemd's LimitNOFILE=
    sets both); keeps ``FD_HEADROOM`` descriptors free besides the ``in_use`` ones.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - in_use - FD_HEADROOM))


Dispatch = Callable[[str, Connection], Awaitable["bytes | None"]]


class Server:
    """Accepts connections on a listening socket and feeds lines to ``dispatch``."""

    def __init__(self, dispatch: Dispatch, *, allowed_uids: Iterable[int] = (), read_only_uids: Iterable[int] = (),
                 heavy_slots: int = 4, max_connections: int = 256, max_connections_per_uid: int = 64):
        self._dispatch = dispatch
        self._fds_base: int | None = None  # descriptors open besides client connections, counted at start
        self.configure(allowed_uids, read_only_uids, max_connections, max_connections_per_uid)
        self.lanes = Lanes(FairLane(heavy_slots), FairLane(heavy_slots))
        self.connections: set[Connection] = set()
        self._lingering = 0  # refused connections being closed (`_refuse`)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    def configure(self, allowed_uids: Iterable[int], read_only_uids: Iterable[int],
                  max_connections: int = 256, max_connections_per_uid: int = 64) -> None:
        """Set who may connect and who may only read (open connections follow at once: SIGHUP) and the caps."""
        self._allowed = frozenset(allowed_uids)
        self._read_only = frozenset(read_only_uids)
        self._wanted_connections = max_connections
        self.max_connections_per_uid = max_connections_per_uid
        self._apply_fd_budget()
        for conn in list(getattr(self, "connections", ())):
            conn.read_only = conn.peer.uid in self._read_only
            if not self._admits(conn.peer):
                log.warning("closing the connection of uid %d (no longer in daemon.allowed_uids)", conn.peer.uid)
                conn.writer.write(_error_line(-32003, "permission_denied", f"uid {conn.peer.uid} may not connect"))
                conn.writer.close()

    def _apply_fd_budget(self) -> None:
        wanted = self._wanted_connections
        self.max_connections = fd_budget(wanted, open_fds() if self._fds_base is None else self._fds_base)
        if self._fds_base is not None and self.max_connections < wanted:
            log.warning("daemon.max_connections %d is more than the file descriptor limit allows; serving at most %d "
                        "(raise LimitNOFILE=)", wanted, self.max_connections)

    async def start(self, sock: socket.socket) -> None:
        """Serve on ``sock``; the store and everything else long-lived should be open by now (fd budget)."""
        self._fds_base = open_fds()
        self._apply_fd_budget()
        # Python 3.13 unlinks a Unix server's socket file on close by default
        # (cleanup_socket=True). The file is not ours to remove: under socket
        # activation it belongs to systemd (the socket unit keeps listening on it
        # across restarts), and a socket we bound is unlinked by the daemon itself.
        extra = {"cleanup_socket": False} if sys.version_info >= (3, 13) else {}
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE + 1, **extra)

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
                await self._refuse(reader, writer, _error_line(-32003, "permission_denied",
                                                                f"uid {peer.uid} may not connect"))
                return
            refusal = self._over_limit(peer)
            if refusal:
                log.warning("refused connection from pid %d uid %d: %s", peer.pid, peer.uid, refusal)
                await self._refuse(reader, writer, _error_line(LIMIT_EXCEEDED, "limit_exceeded", refusal))
                return
            read_only = peer.uid in self._read_only
            conn = Connection(peer, read_only, writer, lanes=self.lanes)
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

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> None:
        """Send the refusal ``line``, then close without losing it (a lingering close).

        Closing a Unix socket with unread input makes the client's next read fail
        with ECONNRESET, and asyncio's StreamReader then raises instead of handing
        out the line it already holds: a client that sent its request right after
        connecting would see "connection reset" instead of why. So the write side
        is shut first (the client reads the line, then EOF) and what the client
        sends is read and dropped until it closes, for at most ``LINGER`` seconds;
        at most ``MAX_LINGERING`` connections linger at once (within FD_HEADROOM),
        the others are closed at once.
        """
        writer.write(line)
        await writer.drain()
        if self._lingering >= MAX_LINGERING or not writer.can_write_eof():
            return
        self._lingering += 1
        try:
            writer.write_eof()
            async with asyncio.timeout(LINGER):
                while await reader.read(1 << 16):
                    pass
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._lingering -= 1

    def _over_limit(self, peer: Peer) -> str | None:
        if len(self.connections) >= self.max_connections:
            return (f"the daemon serves at most {self.max_connections} connections (daemon.max_connections); "
                    "try again later")
        if sum(1 for c in self.connections if c.peer.uid == peer.uid) >= self.max_connections_per_uid:
            return (f"uid {peer.uid} already has {self.max_connections_per_uid} connections open "
                    "(daemon.max_connections_per_uid)")
        return None

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
            if pending and not conn.peer_gone():  # a half-close still gets its answers
                await _until_answered_or_lost(pending, conn)
            if not conn.writer.is_closing():
                await conn.writer.drain()
        finally:
            unfinished = [task for task in pending if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                log.debug("cancelled %d requests of a closed connection (pid %s)", len(unfinished), conn.peer.pid)

    async def _answer(self, raw: bytes, conn: Connection) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            conn.writer.write(_error_line(-32700, "Parse error", "request is not valid UTF-8"))
            return
        answer = await self._dispatch(line, conn)
        if answer is not None and not conn.writer.is_closing():
            conn.send_line(answer)
            del answer  # what the socket did not take at once is in the transport's buffer now
            try:
                await conn.writer.drain()
            except ConnectionError:
                pass


async def _until_answered_or_lost(pending: set[asyncio.Task], conn: Connection) -> None:
    """Wait for ``pending`` to finish, or for the connection to be lost (then return at once)."""
    lost = asyncio.ensure_future(conn.writer.wait_closed())
    lost.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        while pending and not lost.done():
            await asyncio.wait({*pending, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()


def _error_line(code: int, message: str, data: str) -> bytes:
    body = {"jsonrpc": "2.0", "error": {"code": code, "message": message, "data": data}, "id": None}
    return json.dumps(body).encode() + b"\n"
