"""Track rows for tests, built from the Track's one field table (mediasaged.track.FIELDS)."""

from __future__ import annotations

from mediasaged.track import BOOL, COUNT, FIELD_NAMES, FIELDS, NAMES, TEXT

_DEFAULT = {TEXT: "", BOOL: False, COUNT: 0, NAMES: []}


def track_row(rating_key: str, **fields) -> dict:
    """A track row as the sync writes it: every Track field, unset ones empty or None.

    Unknown names are an error, so a test row can't drift from the Track."""
    unknown = set(fields) - set(FIELD_NAMES)
    if unknown:
        raise TypeError(f"not Track fields: {sorted(unknown)}")
    row = {f.name: _DEFAULT.get(f.kind) for f in FIELDS}
    row.update(fields, rating_key=rating_key)
    return row


def as_track(values: dict) -> dict:
    """``values`` checked to hold exactly the Track's fields (for reference libraries)."""
    if set(values) != set(FIELD_NAMES):
        raise AssertionError(f"Track fields differ: extra {sorted(set(values) - set(FIELD_NAMES))}, "
                             f"missing {sorted(set(FIELD_NAMES) - set(values))}")
    return values
