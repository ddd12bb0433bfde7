"""The demo: a generated 20,000-track Plex library, the daemon, a sync, a status.

Starts the bundled Plex emulator and mediasaged (in a private temporary
directory), runs `mediasagectl sync --wait`, `status`, a query and stats, then
stops both cleanly. Run it with `make demo`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TRACKS = int(os.environ.get("DEMO_TRACKS", "20000"))


def ctl(socket: Path, *args: str, check: bool = True) -> int:
    print(f"\n$ mediasagectl {' '.join(args)}", flush=True)
    code = subprocess.call([str(BIN / "mediasagectl"), "--socket", str(socket), *args])
    if check and code != 0:
        raise SystemExit(f"mediasagectl {args[0]} exited {code}")
    return code


def wait_for_socket(socket: Path, daemon: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise SystemExit(f"mediasaged exited with {daemon.returncode}")
        probe = subprocess.run([str(BIN / "mediasagectl"), "--socket", str(socket), "call", "daemon.info"],
                               capture_output=True)
        if probe.returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("mediasaged did not start listening in time")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="msdemo", dir="/tmp"))
    emulator = daemon = None
    try:
        print(f"Starting the Plex emulator with a generated {TRACKS:,}-track library…", flush=True)
        emulator = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--tracks", str(TRACKS)],
                                    cwd=ROOT, stdout=subprocess.PIPE, text=True)
        url, token = emulator.stdout.readline().split()
        print(f"Plex emulator at {url}")
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump({
            "plex": {"url": url, "token": token, "library": "Music"},
            "cache": {"path": "library_cache.db"},
            "sync": {"stale_after": "off", "interval": "off"},
            "daemon": {"socket": "mediasaged.sock", "log_level": "warning"},
        }))
        config.chmod(0o600)
        socket = work / "mediasaged.sock"
        daemon = subprocess.Popen([str(BIN / "mediasaged"), "--config", str(config)])
        wait_for_socket(socket, daemon)
        ctl(socket, "status")
        ctl(socket, "sync", "--wait")
        ctl(socket, "status")
        ctl(socket, "query", "--genre", "Rock", "--decade", "1990s", "--exclude-live", "--limit", "10")
        ctl(socket, "query", "--text", "bjork", "--limit", "5")
        ctl(socket, "stats")
        return 0
    finally:
        for proc, name in ((daemon, "mediasaged"), (emulator, "emulator")):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=30)
                print(f"{name} stopped (exit {code})", flush=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
