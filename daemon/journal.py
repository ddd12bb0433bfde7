"""Logging to stderr, with syslog priority prefixes when stderr is the journal.

systemd connects a service's stderr to the journal and says so in
``$JOURNAL_STREAM`` (``DEVICE:INODE`` of that stream). When it matches our stderr,
every line starts with ``<N>``, the sd-daemon(3) priority (``<3>`` error,
``<4>`` warning, ``<6>`` info, ``<7>`` debug), so ``journalctl -p warning``
filters, and timestamps are left to the journal. Elsewhere (a terminal, a
file, a pipe that merely inherited the variable) lines carry a timestamp and
no prefix. Each line of a multi-line record (a traceback) gets the prefix: the
journal reads them as separate entries.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Mapping, TextIO

# sd-daemon(3) / syslog(3) levels
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
              (logging.INFO, 6), (logging.DEBUG, 7))


def priority(levelno: int) -> int:
    for threshold, value in PRIORITIES:
        if levelno >= threshold:
            return value
    return 7


def stream_is_journal(env: Mapping[str, str], fd: int) -> bool:
    """Whether ``fd`` is the stream ``$JOURNAL_STREAM`` names."""
    device, _, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class PriorityFormatter(logging.Formatter):
    """Prefixes every line of a formatted record with ``<N>``."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def setup_logging(level: str, fmt: str, stream: TextIO | None = None,
                  env: Mapping[str, str] | None = None) -> bool:
    """Configure the root logger on ``stream`` (stderr); True when it is the journal."""
    stream = stream or sys.stderr
    env = os.environ if env is None else env
    try:
        journal = stream_is_journal(env, stream.fileno())
    except (AttributeError, ValueError, OSError):
        journal = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PriorityFormatter(fmt) if journal else logging.Formatter("%(asctime)s " + fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    return journal
