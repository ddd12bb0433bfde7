"""python -m tests.emulator --tracks 20000 [--seed N] [--port 0] [--token T]

Prints "URL TOKEN" on one line once serving, then serves until SIGTERM/SIGINT (exit 0)."""
from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading

from .app import PlexEmulator
from .render import prerender
from .generator import generate_library


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    p.add_argument("--tracks", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", default=None, help="default: a random token")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--render-us-per-track", type=float, default=0.0,
                   help="microseconds a track listing page waits per track (a real server's rendering time)")
    args = p.parse_args(argv)
    token = args.token or secrets.token_hex(10)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lib = generate_library(args.tracks, seed=args.seed)
    prerender(lib)  # so the first full sync is served at full speed
    emu = PlexEmulator(lib, token=token, host=args.host, port=args.port,
                       slow_seconds=args.slow_seconds,
                       render_seconds_per_track=args.render_us_per_track / 1e6)
    with emu:
        print(f"{emu.url} {token}", flush=True)
        while not stop.wait(3600):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
