"""A Plex Media Server emulator for tests: real HTTP + websocket on 127.0.0.1.

    from tests.emulator import PlexEmulator, generate_library
    with PlexEmulator(generate_library(1500, seed=1), token="t") as emu:
        PlexServer(emu.url, "t")

See app.py (server, faults, mutations), model.py (library + ground truth),
generator.py (synthetic libraries), listing.py/render.py (Plex-shaped XML).
"""
from .app import CONTENT_TYPE, PlexEmulator
from .faults import Fault
from .generator import GENRES, SPECIAL_ARTISTS, generate_library
from .model import Album, Artist, Library, Track

__all__ = ["PlexEmulator", "Library", "Album", "Artist", "Track", "Fault",
           "generate_library", "GENRES", "SPECIAL_ARTISTS", "CONTENT_TYPE"]
