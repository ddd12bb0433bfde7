"""The three bits of systemd integration mediasaged uses, without libsystemd.

* :func:`notify` - ``sd_notify(3)``: one datagram to ``$NOTIFY_SOCKET``
  (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``).
* :func:`watchdog_interval` - ``sd_watchdog_enabled(3)``: how often to send
  ``WATCHDOG=1`` (half of ``WatchdogSec=``).
* :func:`listen_fds` - ``sd_listen_fds(3)``: sockets passed by socket
  activation (``mediasaged.socket``).

Outside systemd every function is a harmless no-op (False / None / []).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import time

__all__ = [
    "SD_LISTEN_FDS_START",
    "listen_fds",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_interval",
    "watchdog_ping",
]

log = logging.getLogger(__name__)

# Passed file descriptors start at 3 (right after stdin/stdout/stderr).
SD_LISTEN_FDS_START = 3


def notify(message: str) -> bool:
    """Send ``message`` (newline-separated ``KEY=VALUE`` lines) to the service
    manager. Returns True if it was sent, False if ``$NOTIFY_SOCKET`` is unset
    or sending failed (logged; a failed notification must not kill the daemon).

    ``$NOTIFY_SOCKET`` is a filesystem path, or an abstract socket name written
    with a leading ``@`` (which stands for the leading NUL byte). Other forms
    (e.g. ``vsock:`` from newer systemd) are not supported and return False.
    The variable is left set: the watchdog keeps using it.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        target = "\0" + address[1:]  # abstract namespace
    elif address.startswith("/"):
        target = address
    else:
        log.warning("NOTIFY_SOCKET=%r is not a supported address; not notifying", address)
        return False
    try:
        # Non-blocking: a manager that does not read its socket (its queue holds only
        # a few datagrams) must not stall the event loop; the message is dropped.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(target)
            sock.sendall(message.encode("utf-8"))
        return True
    except BlockingIOError:
        log.debug("sd_notify to %s: its queue is full; dropped %r", address, message)
        return False
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", address, exc)
        return False


def ready(status_text: str | None = None) -> bool:
    """``READY=1``: startup finished (Type=notify units wait for this)."""
    return notify("READY=1" + (f"\nSTATUS={status_text}" if status_text else ""))


def status(text: str) -> bool:
    """Free-form one-line status shown by ``systemctl status``."""
    return notify("STATUS=" + text.replace("\n", " "))


def reloading() -> bool:
    """``RELOADING=1`` at the start of a SIGHUP reload; send :func:`ready`
    when done. MONOTONIC_USEC is included as systemd >= 253 requires it."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")


def stopping() -> bool:
    """``STOPPING=1``: graceful shutdown has begun."""
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    """``WATCHDOG=1``: tell systemd the main loop is alive."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings, or None when no watchdog is set.

    systemd sets ``WATCHDOG_USEC`` (the ``WatchdogSec=`` period) and usually
    ``WATCHDOG_PID``; if the pid is present it must be ours (otherwise the
    variables were inherited from a parent and are not meant for us). We
    return half the period, as sd_watchdog_enabled(3) recommends.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        period = int(usec)
    except ValueError:
        return None
    if period <= 0:
        return None
    return period / 1_000_000 / 2


def listen_fds(unset_environment: bool = True) -> list[socket.socket]:
    """Sockets handed over by socket activation, as ``socket.socket`` objects.

    systemd passes ``LISTEN_FDS=n`` descriptors starting at fd 3 and sets
    ``LISTEN_PID`` to the pid they are meant for. If the pid is not ours,
    nothing was meant for us. Like ``sd_listen_fds(1)`` the variables
    (``LISTEN_PID``, ``LISTEN_FDS``, ``LISTEN_FDNAMES``) are removed from the
    environment afterwards, so child processes (the sync worker) do not
    mistake them for their own, and each fd gets FD_CLOEXEC for the same
    reason. The socket family/type are read from the fd itself (the caller
    should check it got the AF_UNIX SOCK_STREAM listener it expects).
    Raises OSError if a promised fd is not open or not a socket.
    """
    try:
        pid_text = os.environ.get("LISTEN_PID")
        count_text = os.environ.get("LISTEN_FDS")
        if not pid_text or not count_text:
            return []
        try:
            pid, count = int(pid_text), int(count_text)
        except ValueError:
            log.warning("ignoring malformed LISTEN_PID/LISTEN_FDS")
            return []
        if pid != os.getpid() or count <= 0:
            return []
        sockets = []
        for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count):
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)  # raises OSError if fd is not open
            fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
            sockets.append(socket.socket(fileno=fd))
        return sockets
    finally:
        if unset_environment:
            for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                os.environ.pop(name, None)
