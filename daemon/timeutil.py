"""Time helpers: unix seconds in the database, ISO 8601 UTC on the wire."""

from __future__ import annotations

import math
import re
import time
from datetime import date, datetime, timezone

__all__ = ["now", "iso", "parse_iso", "TIME_PATTERN"]

# The times requests may hold (published as the params' JSON Schema pattern, see
# params.py): a date, optionally a time (hours, minutes, seconds, fraction; "T" or
# a space between), optionally Z or an offset (+01, +0100, +01:00). ASCII digits only.
TIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
                r"(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$")
_TIME = re.compile(TIME_PATTERN)


def now() -> int:
    """Current time as integer unix seconds."""
    return int(time.time())


def iso(ts: int | float | None) -> str | None:
    """Unix seconds -> ``"2026-02-05T10:30:00Z"``; ``None`` stays ``None``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str) -> int:
    """ISO 8601 text of `TIME_PATTERN` -> unix seconds (floored).

    Accepts ``2026-02-05T10:30:00Z``, an explicit offset (``+01:00``), fractional
    seconds, and a date alone (``2026-02-05`` = midnight UTC). A date-time
    without an offset is taken as UTC. Anything else, and a date or time that
    does not exist (``2026-02-30``), raises ``ValueError``.
    """
    if not isinstance(s, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(s).__name__}")
    text = s
    if not _TIME.fullmatch(text):
        raise ValueError(f"not an ISO 8601 time: {s!r}")
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            dt = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        else:
            if text[-1] in "zZ":
                text = text[:-1] + "+00:00"
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {s!r}") from None
    return math.floor(dt.timestamp())
