"""Where the daemon's socket is (CONTRACT §1): ``--socket``, else ``$MEDIASAGE_SOCKET``,
else ``daemon.socket`` of the default config (``$MEDIASAGE_CONFIG``, else ``./config.yaml``),
resolved against the config file's directory, else ``data/mediasaged.sock``."""

from __future__ import annotations

import os
from typing import Mapping

DEFAULT_SOCKET = "data/mediasaged.sock"


def resolve_socket_path(
    cli_value: str | None, env: Mapping[str, str], cwd: str
) -> str:
    """The socket path to use; never fails (a broken config falls back to the default)."""
    if cli_value:
        return cli_value
    if env.get("MEDIASAGE_SOCKET"):
        return env["MEDIASAGE_SOCKET"]
    config_path = env.get("MEDIASAGE_CONFIG") or os.path.join(cwd, "config.yaml")
    config_path = os.path.join(cwd, config_path)  # no-op when already absolute
    base = os.path.dirname(config_path)
    socket = socket_from_config(config_path)
    if socket is None:
        if not os.path.isfile(config_path):
            base = cwd
        socket = DEFAULT_SOCKET
    socket = os.path.expanduser(socket)
    return os.path.normpath(os.path.join(base, socket))


def socket_from_config(config_path: str) -> str | None:
    """``daemon.socket`` from a YAML config file, or None when absent or unreadable.

    The client does not validate the config (that is ``mediasaged --check-config``'s
    job); it only needs this one key, and PyYAML is optional for it.
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
