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
    """The daemon answered a request with a JSON-RPC error object.

    ``code`` is the JSON-RPC error code, ``message`` its message and ``data`` its
    data; the subclasses below stand for the codes of CONTRACT §2, so callers can
    ``except NotSynced:`` rather than compare numbers.
    """

    CODE: int | None = None

    exit_code = ExitCode.ERROR

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __repr__(self) -> str:
        return f"DaemonError({self.code!r}, {self.message!r}, {self.data!r})"


class ParseError(DaemonError):
    """-32700: the daemon could not parse what was sent."""
    CODE = -32700


class InvalidRequest(DaemonError):
    """-32600: not a valid JSON-RPC request (the message names what is wrong)."""
    CODE = -32600


class MethodNotFound(DaemonError):
    """-32601: no such method."""
    CODE = -32601


class InvalidParams(DaemonError):
    """-32602: a bad or unknown param; the message names it."""
    CODE = -32602


class InternalError(DaemonError):
    """-32603: the daemon failed (it logs why; the message has no details)."""
    CODE = -32603


class NotSynced(DaemonError):
    """-32001 ``not_synced``: the library has never been synced (queries only)."""
    CODE = -32001


class PlexUnreachable(DaemonError):
    """-32002 ``plex_unreachable``: the operation needs Plex and Plex did not answer."""
    CODE = -32002


class PermissionDenied(DaemonError):
    """-32003 ``permission_denied``: this peer may not call this method."""
    CODE = -32003


class LimitExceeded(DaemonError):
    """-32004 ``limit_exceeded``: a resource limit of the daemon (``data`` names it: README, "Limits")."""
    CODE = -32004


_BY_CODE = {cls.CODE: cls for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError,
                                      NotSynced, PlexUnreachable, PermissionDenied, LimitExceeded)}


def daemon_error(code: int, message: str, data: Any = None) -> DaemonError:
    """The :class:`DaemonError` subclass for ``code`` (plain :class:`DaemonError` for others)."""
    return _BY_CODE.get(code, DaemonError)(code, message, data)


class ProtocolError(ClientError):
    """The daemon sent something that is not valid JSON-RPC for us."""

    exit_code = ExitCode.ERROR


class Unreachable(ClientError):
    """The daemon cannot be reached over its socket.

    ``reason`` is one of ``not_found`` (discovery found no socket), ``missing``, ``refused``, ``denied``, ``not_socket``,
    ``closed``, ``timeout``, ``other``; the message always names the socket path.
    """

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, path: str, reason: str, detail: str = "", context: str = ""):
        self.path = path
        self.reason = reason
        self.detail = detail
        self.context = context
        message = unreachable_message(path, reason, detail)
        super().__init__(f"{message}\n  ({context})" if context else message)

    def with_context(self, context: str) -> "Unreachable":
        """The same error, its message followed by where the path came from."""
        return Unreachable(self.path, self.reason, self.detail, context)


class CallTimeout(Unreachable):
    """No answer within the timeout (connecting, sending or waiting for the response)."""

    def __init__(self, path: str, detail: str = ""):
        super().__init__(path, "timeout", detail)


def unreachable_message(path: str, reason: str, detail: str = "") -> str:
    """The one-line explanation for an :class:`Unreachable` (pure)."""
    if reason == "not_found":
        return f"cannot find mediasaged's socket; {detail}" if detail else "cannot find mediasaged's socket"
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
