"""Shared pieces of the benchmarks: emulator and daemon processes, a socket client, RSS.

Benchmarks are scripts, not tests: they print numbers for docs/PERFORMANCE.md.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.emulator.process import emulator_process  # noqa: E402

BIN = Path(sys.executable).parent
emulator = emulator_process  # (tracks, seed=0, cpus=None, render_us=0.0) -> (url, token): tests/emulator/process.py


class Rpc:
    """A minimal blocking JSON-RPC client over the daemon's Unix socket."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        self.ids = itertools.count(1)

    def call(self, method: str, **params):
        ident = next(self.ids)
        self.file.write(json.dumps({"jsonrpc": "2.0", "id": ident, "method": method, "params": params}).encode()
                        + b"\n")
        self.file.flush()
        while True:
            msg = json.loads(self.file.readline())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def close(self):
        self.file.close()
        self.sock.close()


@contextmanager
def daemon(url: str, token: str, work: Path | None = None, log_level: str = "warning", **sync):
    """mediasaged in a private directory against ``url``: yields (process, socket path).

    ``work``: use (and keep) this directory, e.g. to start a daemon again on the same cache.
    """
    keep = work is not None
    work = work or Path(tempfile.mkdtemp(prefix="msbench", dir="/tmp"))
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "plex": {"url": url, "token": token},
        "cache": {"path": "cache.db"},
        "sync": {"stale_after": "off", "interval": "off", **sync},
        "daemon": {"socket": "d.sock", "log_level": log_level},
    }))
    config.chmod(0o600)
    proc = subprocess.Popen([str(BIN / "mediasaged"), "--config", str(config)])
    path = work / "d.sock"
    deadline = time.monotonic() + 30
    while True:
        try:
            Rpc(path).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("mediasaged did not start")
            time.sleep(0.05)
    try:
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if not keep:
            subprocess.run(["rm", "-rf", str(work)])


def timed_job(rpc: Rpc, path: Path, mode: str) -> tuple[float, dict]:
    """Start a sync and wait for its ``sync.finished`` event (on a connection of its own): (seconds
    from the call to the event, the job). The daemon pushes the event once the outcome is recorded,
    so the time carries no polling interval (`wait_job` adds up to its ``interval``)."""
    events = Rpc(path)
    try:
        events.call("events.subscribe", events=["sync.finished"])
        t0 = time.perf_counter()
        job_id = rpc.call("sync.start", mode=mode)["job_id"]
        while True:
            msg = json.loads(events.file.readline())
            if msg.get("method") == "sync.finished" and msg["params"]["job_id"] == job_id:
                return time.perf_counter() - t0, msg["params"]
    finally:
        events.close()


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def wait_job(rpc: Rpc, job_id: int, on_poll=None, interval: float = 0.02) -> dict:
    while True:
        job = rpc.call("sync.status", job_id=job_id)
        if on_poll:
            on_poll(job)
        if job["state"] != "running":
            return job
        time.sleep(interval)


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return p50, p99
