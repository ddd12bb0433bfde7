"""Where mediasaged's socket is: the discovery order of README "Finding the daemon".

1. ``--socket PATH``
2. ``$MEDIASAGE_SOCKET``
3. ``daemon.socket`` of the first config file that exists among ``--config``,
   ``$MEDIASAGE_CONFIG``, ``./config.yaml`` and ``/etc/mediasaged/config.yaml``
   (relative to that file's directory; ``data/mediasaged.sock`` when it names none,
   as the daemon does)
4. ``/run/mediasaged/mediasaged.sock`` (the systemd units' socket) if it exists
5. ``./data/mediasaged.sock`` (a daemon started here without a config) if it exists

Pure apart from reading the filesystem through ``exists``/``read``: :func:`discover`
returns the path, where it came from, and what was tried, so that an unreachable
daemon's message (exit 3) can list the steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

DEFAULT_SOCKET = "data/mediasaged.sock"       # the daemon's default, relative to its config
SYSTEM_CONFIG = "/etc/mediasaged/config.yaml"
SYSTEM_SOCKET = "/run/mediasaged/mediasaged.sock"


@dataclass(frozen=True)
class SocketChoice:
    """The socket to use (``path`` is None when nothing was found)."""

    path: str | None
    source: str = ""
    tried: tuple[str, ...] = field(default=())

    def explain(self) -> str:
        """``tried: --socket (not given), ...`` for messages."""
        return "tried: " + "; ".join(self.tried)


def discover(
    cli_socket: str | None,
    cli_config: str | None,
    env: Mapping[str, str],
    cwd: str,
    exists: Callable[[str], bool] = os.path.exists,
    read_socket: Callable[[str], str | None] | None = None,
) -> SocketChoice:
    """Walk the discovery order; never raises (a broken config counts as naming no socket)."""
    read_socket = read_socket or socket_from_config
    tried: list[str] = []
    if cli_socket:
        return SocketChoice(cli_socket, "--socket", ("--socket",))
    tried.append("--socket (not given)")
    if env.get("MEDIASAGE_SOCKET"):
        return SocketChoice(env["MEDIASAGE_SOCKET"], "$MEDIASAGE_SOCKET", (*tried, "$MEDIASAGE_SOCKET"))
    tried.append("$MEDIASAGE_SOCKET (not set)")

    configs = [("--config", cli_config), ("$MEDIASAGE_CONFIG", env.get("MEDIASAGE_CONFIG")),
               ("./config.yaml", "config.yaml"), (SYSTEM_CONFIG, SYSTEM_CONFIG)]
    for label, name in configs:
        if not name:
            tried.append(f"{label} (not {'given' if label.startswith('-') else 'set'})")
            continue
        path = os.path.normpath(os.path.join(cwd, os.path.expanduser(name)))
        shown = label if label == path else f"{label} {path}"
        if not exists(path):
            tried.append(f"{shown} (no such file)")
            continue
        socket = read_socket(path) or DEFAULT_SOCKET
        socket = os.path.normpath(os.path.join(os.path.dirname(path), os.path.expanduser(socket)))
        tried.append(f"{shown} (daemon.socket {socket})")
        return SocketChoice(socket, f"daemon.socket of {path}", tuple(tried))

    for label, path in ((SYSTEM_SOCKET, SYSTEM_SOCKET),
                        ("./" + DEFAULT_SOCKET, os.path.join(cwd, DEFAULT_SOCKET))):
        if exists(path):
            return SocketChoice(path, label, (*tried, label))
        tried.append(f"{label} (does not exist)")
    return SocketChoice(None, "", tuple(tried))


def socket_from_config(config_path: str) -> str | None:
    """``daemon.socket`` from a YAML config file, or None when absent or unreadable.

    The client does not validate the config (that is ``mediasaged --check-config``'s
    job); it only needs this one key.
    """
    try:
        with open(config_path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError:
        return None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency of the project
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    daemon = data.get("daemon") if isinstance(data, dict) else None
    socket = daemon.get("socket") if isinstance(daemon, dict) else None
    return socket if isinstance(socket, str) and socket else None
