"""Plex answer bodies that are not plain, valid XML: clean what plexapi cleans, name what is wrong.

Real servers send raw XML-illegal control characters in titles (python-plexapi issue
#1450, PlexTraktSync #2331). plexapi parses a body as is and, only if that fails, strips
the characters below and parses again (``plexapi.utils.cleanXMLString``); `clean_xml`
does the same, with the same character ranges (XML 1.0's forbidden C0 controls, C1
controls except NEL, noncharacters), so a title comes out as plexapi reads it.

A body that still does not parse gets a reason a user can act on (`diagnose`): an HTML
page where XML belongs (a proxy or login page answering 200), bytes that are not UTF-8
(with the byte offset), or XML that stops early (a truncated answer) or breaks elsewhere.
Standard library only.
"""
from __future__ import annotations

import re
import sys

# (low, high) code point ranges plexapi strips when a body does not parse
_ILLEGAL_RANGES = [(0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F), (0x7F, 0x84), (0x86, 0x9F),
                   (0xFDD0, 0xFDDF), (0xFFFE, 0xFFFF)]
if sys.maxunicode >= 0x10000:
    _ILLEGAL_RANGES += [(plane + 0xFFFE, plane + 0xFFFF) for plane in range(0x10000, 0x110000, 0x10000)]
ILLEGAL_XML_CHARS = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _ILLEGAL_RANGES) + "]")

_HTML_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
                         re.IGNORECASE | re.DOTALL)


def clean_xml(body: bytes) -> tuple[bytes, int] | None:
    """``(body without XML-illegal characters, how many were removed)``, or None when the
    body has none (or is not UTF-8: `diagnose` says so)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    cleaned, removed = ILLEGAL_XML_CHARS.subn("", text)
    return (cleaned.encode("utf-8"), removed) if removed else None


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    if content_type and "html" in content_type.lower():
        return True
    return bool(_HTML_START.match(body[:2048]))


def diagnose(body: bytes, content_type: str | None, error: BaseException | None) -> str:
    """What is wrong with a 200 answer that is not a Plex MediaContainer, in a few words."""
    if looks_like_html(body, content_type):
        return (f"an HTML page, not Plex XML ({len(body)} bytes, Content-Type {content_type or 'none'}): "
                f"is plex.url a proxy, a login page or another web server?")
    if not body.strip():
        return "an empty answer"
    truncated = f"incomplete (truncated: the XML stops early, at byte {len(body)})"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":  # cut inside a character
            return truncated
        bad = body[exc.start:exc.start + 1].hex()
        return (f"not UTF-8 (byte 0x{bad} at offset {exc.start} of {len(body)}): Plex answers "
                f"UTF-8, so something between us and Plex changed the answer")
    message = str(error or "").split(", line")[0] if error is not None else ""
    position = getattr(error, "position", None) or (None, None)
    line, column = position if isinstance(position, tuple) and len(position) == 2 else (None, None)
    offset = _byte_offset(body, line, column)
    if offset is not None and offset >= len(body.rstrip()) - 1 or _premature(message):
        return truncated
    where = f" at byte {offset}" if offset is not None else ""
    return f"malformed XML{where} ({message or 'not a Plex MediaContainer'})"


def _premature(message: str) -> bool:
    return "premature end" in message.lower()


def _byte_offset(body: bytes, line: int | None, column: int | None) -> int | None:
    """The byte offset of (line, column) as lxml reports it (1-based line, 1-based column in
    characters: a line of "坂本龍一" or "Björk" holds more bytes than characters) in ``body``, which
    is UTF-8."""
    if not line or column is None:
        return None
    start = 0
    for _ in range(line - 1):
        nl = body.find(b"\n", start)
        if nl < 0:
            return None
        start = nl + 1
    end = body.find(b"\n", start)
    text = body[start:end if end >= 0 else len(body)].decode("utf-8", "replace")
    return start + len(text[:max(0, column - 1)].encode())
