"""Which library section ``plex.library`` names: one rule for the sync worker (plexapi's sections)
and the daemon's checks (``/library/sections`` read with the standard library).

A music section is one of type ``artist``; the name is compared without case and surrounding
blanks; of several music sections of that name, the first Plex lists is the one.
"""

from __future__ import annotations

from typing import Iterable

MUSIC = "artist"  # a music section's type


def same_name(title: str | None, library: str) -> bool:
    return (title or "").strip().casefold() == library.strip().casefold()


def music_section(sections: Iterable[tuple[str | None, str | None, str | None]], library: str) -> str | None:
    """The key of the music section ``library`` names, of ``(key, title, type)`` in Plex's order;
    None when there is none."""
    return next((key for key, title, kind in sections if kind == MUSIC and same_name(title, library)), None)
