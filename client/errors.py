"""Typed errors raised by commands; ``cli.main`` turns them into messages and exit codes.

Command code never prints errors or picks exit codes itself; it raises one of these
and the single top-level handler in :mod:`mediasagectl.cli` maps it (like httpie's
``status.py`` plus its ``main`` wrapper).
"""

from __future__ import annotations

from typing import Any

from .exitcodes import ExitCode


class ClientError(Exception):
    """Base class: ``str(exc)`` is the user-facing message, ``exit_code`` the status."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(ClientError):
    """The command line is wrong in a way argparse could not see (e.g. bad JSON)."""

    exit_code = ExitCode.USAGE


class DaemonError(ClientError):
    """The daemon answered a request with a JSON-RPC error object."""

    exit_code = ExitCode.ERROR

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"DaemonError({self.code!r}, {self.message!r}, {self.data!r})"


class ProtocolError(ClientError):
    """The daemon sent something that is not valid JSON-RPC for us."""

    exit_code = ExitCode.ERROR


class Unreachable(ClientError):
    """The daemon cannot be reached over its socket.

    ``reason`` is one of ``missing``, ``refused``, ``denied``, ``not_socket``,
    ``closed``, ``timeout``, ``other``; the message always names the socket path.
    """

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, path: str, reason: str, detail: str = ""):
        self.path = path
        self.reason = reason
        self.detail = detail
        super().__init__(unreachable_message(path, reason, detail))


def unreachable_message(path: str, reason: str, detail: str = "") -> str:
    """The one-line explanation for an :class:`Unreachable` (pure)."""
    if reason == "missing":
        return f"no socket at {path} — is mediasaged running?"
    if reason == "refused":
        return f"connection refused at {path} — mediasaged is not running (stale socket)"
    if reason == "denied":
        return f"permission denied connecting to {path} — are you allowed to use mediasaged?"
    if reason == "not_socket":
        return f"{path} is not a socket — check --socket / $MEDIASAGE_SOCKET / daemon.socket"
    if reason == "closed":
        return f"mediasaged at {path} closed the connection"
    if reason == "timeout":
        return f"no answer from mediasaged at {path} within {detail}"
    return f"cannot connect to {path}: {detail}" if detail else f"cannot connect to {path}"
