"""Track rows for tests, built from the Track's one field table (mediasaged.track.FIELDS)."""

from __future__ import annotations

from mediasaged.track import FIELD_NAMES, track_with


def track_row(rating_key: str, **fields) -> dict:
    """A track row as the sync writes it: every Track field, unset ones empty or None.

    Unknown names are an error, so a test row can't drift from the Track."""
    return track_with(**{**fields, "rating_key": rating_key})


def as_track(values: dict) -> dict:
    """``values`` checked to hold exactly the Track's fields (for reference libraries)."""
    if set(values) != set(FIELD_NAMES):
        raise AssertionError(f"Track fields differ: extra {sorted(set(values) - set(FIELD_NAMES))}, "
                             f"missing {sorted(set(FIELD_NAMES) - set(values))}")
    return values
