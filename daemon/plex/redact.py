"""Text about Plex that can never leak the token: URLs without secrets, redacted messages.

Standard library only: the daemon process uses it without loading requests, lxml or plexapi.
"""
from __future__ import annotations

import urllib.parse


def safe_url(url: str) -> str:
    """scheme://host[:port][/path] — no userinfo, no query (either may hold a secret)."""
    try:
        p = urllib.parse.urlsplit(url)
        host = p.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{p.port}" if p.port else host
        return urllib.parse.urlunsplit((p.scheme, netloc, p.path.rstrip("/"), "", ""))
    except ValueError:
        return "<invalid URL>"


def redact(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "<token>")
        quoted = urllib.parse.quote(token, safe="")
        if quoted != token:
            text = text.replace(quoted, "<token>")
    return text
