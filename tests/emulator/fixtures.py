"""pytest fixtures for the Plex emulator. Register in tests/conftest.py with

    pytest_plugins = ["tests.emulator.fixtures"]
"""
from __future__ import annotations

import pytest

from .app import PlexEmulator
from .corpus import load_corpus
from .generator import generate_library

EMULATOR_TOKEN = "test-token"
CORPUS_TOKEN = "corpus-token-9f3a"


@pytest.fixture
def plex_emulator():
    """A running emulator with a fresh 1,500-track (~150 albums) library, token "test-token"."""
    with PlexEmulator(generate_library(1500, seed=7), token=EMULATOR_TOKEN,
                      slow_seconds=3.0) as emu:
        yield emu


@pytest.fixture(scope="module")
def module_emulator():
    """Like ``plex_emulator``, but one per test module: its tests must not change it."""
    with PlexEmulator(generate_library(1500, seed=7), token=EMULATOR_TOKEN,
                      slow_seconds=3.0) as emu:
        yield emu


@pytest.fixture
def plex_emulator_factory():
    """Call with (n_tracks, seed=..., token=..., port=...) to get more emulators; all stopped at teardown."""
    started: list[PlexEmulator] = []

    def make(n_tracks: int = 1500, *, seed: int = 7, token: str = EMULATOR_TOKEN,
             slow_seconds: float = 3.0, port: int = 0) -> PlexEmulator:
        emu = PlexEmulator(generate_library(n_tracks, seed=seed), token=token,
                           slow_seconds=slow_seconds, port=port).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def corpus():
    """A running emulator serving the real-response corpus (tests/fixtures/plex), token ``CORPUS_TOKEN``."""
    with PlexEmulator(load_corpus(), token=CORPUS_TOKEN, slow_seconds=3.0) as emu:
        yield emu
