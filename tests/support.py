"""Test support: start the real mediasaged on a real socket, talk JSON-RPC to it.

Nothing here imitates the daemon: `DaemonProcess` runs `python -m mediasaged`
as a subprocess, learns that it is ready from a real ``NOTIFY_SOCKET`` datagram
(READY=1, as systemd would), and `RpcConnection` speaks newline-delimited
JSON-RPC over the Unix socket. Waiting is always on an event or a deadline poll.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent


def short_tmpdir() -> Path:
    """A short private directory (Unix socket paths are capped at 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ms", dir="/tmp"))


def write_config(directory: Path, plex_url: str = "http://127.0.0.1:9", token: str = "test-token",
                 **sections: dict) -> Path:
    """A config for one test daemon; ``sections`` override keys per section."""
    config = {
        "plex": {"url": plex_url, "token": token, "library": "Music", "timeout": 5},
        "cache": {"path": "cache.db"},
        # plex_events off: a test's own emulator edits must not start syncs of their own
        # (tests/test_plex_events.py turns it on)
        "sync": {"interval": "off", "stale_after": "off", "retries": 1, "page_size": 200, "plex_events": False},
        "daemon": {"socket": "d.sock", "log_level": "debug"},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    path.chmod(0o600)
    return path


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll an async predicate until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


class RpcFailure(Exception):
    def __init__(self, error: dict):
        super().__init__(f"{error.get('code')}: {error.get('message')} {error.get('data', '')}")
        self.error = error
        self.code = error.get("code")


class RpcConnection:
    """An asyncio JSON-RPC 2.0 client over one Unix socket connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[Any, asyncio.Future] = {}
        self.notifications: asyncio.Queue = asyncio.Queue()
        self._pump = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, path: Path) -> "RpcConnection":
        reader, writer = await asyncio.open_unix_connection(str(path), limit=16 << 20)
        return cls(reader, writer)

    async def _read(self) -> None:
        async for line in self.reader:
            msg = json.loads(line)
            if isinstance(msg, dict) and "id" not in msg:
                await self.notifications.put(msg)
            elif isinstance(msg, dict) and msg["id"] in self._waiting:
                self._waiting.pop(msg["id"]).set_result(msg)
        for fut in self._waiting.values():
            fut.set_exception(ConnectionError("daemon closed the connection"))

    async def request(self, method: str, params: Any = None, timeout: float = 20.0) -> dict:
        """Send one request; return the whole response object."""
        ident = next(self._ids)
        body = {"jsonrpc": "2.0", "method": method, "id": ident}
        if params is not None:
            body["params"] = params
        fut = asyncio.get_running_loop().create_future()
        self._waiting[ident] = fut
        self.writer.write(json.dumps(body).encode() + b"\n")
        await self.writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def call(self, method: str, **params: Any) -> Any:
        response = await self.request(method, params)
        if "error" in response:
            raise RpcFailure(response["error"])
        return response["result"]

    async def next_notification(self, method: str | None = None, timeout: float = 20.0) -> dict:
        while True:
            msg = await asyncio.wait_for(self.notifications.get(), timeout)
            if method is None or msg["method"] == method:
                return msg

    async def close(self) -> None:
        self.writer.close()
        self._pump.cancel()


async def raw_exchange(path: Path, data: bytes, expect_lines: int, timeout: float = 10.0) -> list[Any]:
    """Send raw bytes, read ``expect_lines`` JSON lines back."""
    reader, writer = await asyncio.open_unix_connection(str(path), limit=16 << 20)
    try:
        writer.write(data)
        await writer.drain()
        return [json.loads(await asyncio.wait_for(reader.readline(), timeout)) for _ in range(expect_lines)]
    finally:
        writer.close()


class NotifyListener:
    """A real sd_notify endpoint: a datagram socket whose path goes in NOTIFY_SOCKET."""

    def __init__(self, directory: Path):
        self.path = directory / f"notify-{uuid.uuid4().hex[:8]}.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        self.messages: list[str] = []

    async def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not any(needle in m for m in self.messages):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {needle!r} from the daemon; got {self.messages}")
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), remaining)
            self.messages.extend(data.decode().splitlines())
        return next(m for m in self.messages if needle in m)

    def close(self) -> None:
        self.sock.close()


class DaemonProcess:
    """The real mediasaged, started as a subprocess with its own config."""

    def __init__(self, directory: Path, config: Path, env: dict | None = None, pass_fds: tuple = (),
                 nofile: int | None = None):
        """``nofile``: the daemon's file descriptor limit (soft and hard), as systemd's LimitNOFILE= sets it."""
        self.dir = directory
        self._nofile = nofile
        self.config = config
        settings = yaml.safe_load(config.read_text())
        self.socket = directory / settings["daemon"]["socket"]
        self.db = directory / settings["cache"]["path"]
        self.notify = NotifyListener(directory)
        self._env = {**os.environ, "NOTIFY_SOCKET": str(self.notify.path), **(env or {})}
        self._pass_fds = pass_fds
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr_path = directory / "daemon.log"

    async def start(self, wait_ready: bool = True) -> "DaemonProcess":
        self._stderr = open(self.stderr_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mediasaged", "--config", str(self.config),
            env=self._env, stderr=self._stderr, stdout=self._stderr, pass_fds=self._pass_fds,
            preexec_fn=None if self._nofile is None else self._limit_nofile,
        )
        if wait_ready:
            ready = asyncio.ensure_future(self.notify.wait_for("READY=1"))
            exited = asyncio.ensure_future(self.proc.wait())
            await asyncio.wait({ready, exited}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                ready.cancel()
                exited.cancel()
                raise AssertionError(f"daemon did not become ready:\n{self.log()}")
            exited.cancel()
        return self

    def _limit_nofile(self) -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (self._nofile, self._nofile))

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    async def connect(self) -> RpcConnection:
        return await RpcConnection.open(self.socket)

    async def call(self, method: str, **params: Any) -> Any:
        conn = await self.connect()
        try:
            return await conn.call(method, **params)
        finally:
            await conn.close()

    async def wait_exit(self, timeout: float = 30.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            return await self.wait_exit(timeout)
        finally:
            self._stderr.close()

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self.proc is not None:
            self._stderr.close()
        self.notify.close()

    async def wait_sync(self, job_id: int, timeout: float = 60.0) -> dict:
        """Wait for a job to end (polling sync.status with a deadline)."""
        async def finished():
            job = await self.call("sync.status", job_id=job_id)
            return job if job["state"] != "running" else None

        return await wait_until(finished, timeout=timeout, interval=0.05)

    async def sync(self, mode: str = "full", timeout: float = 60.0) -> dict:
        result = await self.call("sync.start", mode=mode)
        assert result["started"], result
        return await self.wait_sync(result["job_id"], timeout)


def mediasagectl_path() -> str:
    found = shutil.which("mediasagectl", path=str(Path(sys.executable).parent))
    return found or "mediasagectl"


def at_the_keyboard(*argv: str) -> list[str]:
    """``argv`` run with SIGINT at its default, as a shell starts a job in the foreground.

    A process started in the background by a non-interactive shell (``pytest &``
    in a script) inherits SIGINT as ignored, and so does every program it
    starts: Python then installs no KeyboardInterrupt handler, and the child
    ignores the SIGINT a test sends it, as Unix programs started that way are
    meant to (tail -f and mpc idleloop do the same). A test that plays Ctrl-C
    starts the program through this exec wrapper (no ``preexec_fn``: the test
    process has threads).
    """
    reset = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", reset, *argv]


async def start_stalled_sync(daemon, emu) -> dict:
    """Start a full sync that stalls (a slow page) after writing some tracks."""
    emu.slow_seconds = 3.0
    emu.inject_fault("slow", page=3, times=1)
    start = await daemon.call("sync.start", mode="full")

    async def progressed():
        job = await daemon.call("sync.status")
        return job["phase"] == "tracks" and job["current"] > 0

    await wait_until(progressed)
    return start
