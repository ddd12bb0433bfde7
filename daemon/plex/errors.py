"""What can go wrong talking to Plex, as exceptions whose messages are meant for the user
(never the token), and short reasons for network failures."""
from __future__ import annotations

import requests
import urllib3


class PlexError(Exception):
    """A user-actionable failure talking to Plex. str(e) never contains the token."""


class PlexUnauthorized(PlexError):
    """Plex answered 401: the token is wrong or revoked."""


class PlexUnreachable(PlexError):
    """No answer: connection refused, DNS failure, timeout, TLS failure, dropped connection."""


class SectionNotFound(PlexError):
    """The configured library section does not exist (the message lists those that do)."""


class PlexHTTPError(PlexError):
    """Plex answered with an HTTP error status (after retries, for retryable ones)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PlexBadResponse(PlexError):
    """Plex answered 200 but with a body that is not the expected XML (e.g. truncated)."""


def connection_reason(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed request: requests' errors (plexapi's connection) and urllib3's
    (every request after it, `transport.Transport`), which wrap the cause (a retry's MaxRetryError
    holds the refused connection or the timeout)."""
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None)
    text = " ".join(f"{type(c).__name__} {c}" for c in chain)
    if any(isinstance(c, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)) for c in chain):
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return "the server does not speak TLS on this port (try http:// in plex.url)"
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return ("TLS certificate verification failed (for a self-signed certificate set "
                    "plex.verify_ssl: false)")
        return ("TLS handshake or certificate verification failed (for a self-signed "
                "certificate set plex.verify_ssl: false)")
    if any(isinstance(c, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError))
           and not isinstance(c, urllib3.exceptions.NewConnectionError) for c in chain):  # (one of urllib3's)
        return f"timed out after {timeout:g}s"
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text \
            or "getaddrinfo" in text or "NameResolution" in text or "No address" in text:
        return "host name could not be resolved"
    if any(isinstance(c, ConnectionResetError) for c in chain) or "reset" in text.lower():
        return "connection reset"
    if "RemoteDisconnected" in text or "closed connection" in text or "aborted" in text.lower():
        return "connection closed without an answer"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "connection dropped in the middle of an answer"
    if "No route to host" in text or "Network is unreachable" in text:
        return "no route to host"
    return "connection failed"
