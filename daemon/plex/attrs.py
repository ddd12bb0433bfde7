"""Plex attribute text -> Python numbers, tolerant of what real servers send ("8.0", "", junk).

Standard library only (used by the notification frames in the daemon process, and by the
XML reader in the sync worker).
"""
from __future__ import annotations


def to_int(v: str | None) -> int | None:
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            return None


def to_float(v: str | None) -> float | None:
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        return None
