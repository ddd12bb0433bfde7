"""mediasagectl: the command-line client of mediasaged, and its Python client API.

``from mediasagectl import Client`` (blocking) or ``AsyncClient`` (asyncio); see
:mod:`mediasagectl.api` and README "Python client API".
"""

__version__ = "0.1.0"

from .api import AsyncClient, Client, Event, find_socket  # noqa: E402
from .errors import (  # noqa: E402
    CallTimeout,
    ClientError,
    DaemonError,
    InternalError,
    InvalidParams,
    InvalidRequest,
    LimitExceeded,
    MethodNotFound,
    NotSynced,
    ParseError,
    PermissionDenied,
    PlexUnreachable,
    ProtocolError,
    Unreachable,
)

__all__ = [
    "AsyncClient", "CallTimeout", "Client", "ClientError", "DaemonError", "Event",
    "InternalError", "InvalidParams", "InvalidRequest", "LimitExceeded", "MethodNotFound", "NotSynced",
    "ParseError", "PermissionDenied", "PlexUnreachable", "ProtocolError", "Unreachable",
    "__version__", "find_socket",
]
