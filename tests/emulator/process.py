"""The emulator in a process of its own (``python -m tests.emulator``), for the runs where
serving a large library must not compete with the caller for one GIL: the benchmarks
(scripts/benchlib.py) and the 1M test (tests/test_large.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout: ``tests`` is importable from here
STOP_WAIT = 60.0  # seconds for it to exit after SIGTERM (a 1M library takes a while to free)


@contextmanager
def emulator_process(tracks: int, seed: int = 0, cpus: frozenset[int] | None = None,
                     render_us: float = 0.0) -> Iterator[tuple[str, str]]:
    """A generated library of ``tracks`` tracks served from its own process: yields (url, token).

    ``cpus``: keep it on these CPUs (None: wherever the scheduler puts it). ``render_us``: how
    long a track listing page waits per track before it is sent (``--render-us-per-track``).
    """
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulator", "--tracks", str(tracks), "--seed", str(seed),
                             "--render-us-per-track", str(render_us)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if cpus:  # before it starts its server threads, which inherit this
        os.sched_setaffinity(proc.pid, cpus)
    try:
        url, token = proc.stdout.readline().split()
        yield url, token
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=STOP_WAIT)
