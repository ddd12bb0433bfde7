"""Which library section ``plex.library`` names: one rule, and one reading of ``/library/sections``,
for the sync worker (the answer as plexapi parses it) and the daemon's checks (the standard
library's parser).

A music section is one of type ``artist``; the name is compared without case and surrounding
blanks; of several music sections of that name, the first Plex lists is the one.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

MUSIC = "artist"  # a music section's type


class Section(NamedTuple):
    """A library section as ``/library/sections`` lists it."""

    key: str | None
    title: str
    type: str | None


def listed(root: Any) -> list[Section]:
    """The sections of a ``/library/sections`` answer (an ElementTree element), in Plex's order."""
    return [Section(d.get("key"), d.get("title") or "", d.get("type")) for d in root.iter("Directory")]


def same_name(title: str | None, library: str) -> bool:
    return (title or "").strip().casefold() == library.strip().casefold()


def music_section(sections: Iterable[tuple[str | None, str | None, str | None]], library: str) -> str | None:
    """The key of the music section ``library`` names, of ``(key, title, type)`` in Plex's order;
    None when there is none."""
    return next((key for key, title, kind in sections if kind == MUSIC and same_name(title, library)), None)
