"""The library section ``plex.library`` names, among several music sections of one server.

Plex serves every library section on one server: its notifications come on one socket, each
entry naming its section, and rating keys are unique across sections. The emulator here serves
two music sections, "Music" (the one the daemon syncs) and "Audiobooks".
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest

from mediasaged.plex.sections import music_section
from tests.emulator.app import PlexEmulator
from tests.emulator.fixtures import EMULATOR_TOKEN
from tests.emulator.generator import generate_library
from tests.emulator.model import Library
from tests.mirror import assert_mirror, cached_library, expected_library
from tests.support import wait_until

pytestmark = pytest.mark.timeout(120)
CAPTURES = Path(__file__).parent / "fixtures" / "plex" / "captures"


def sections(music: int, audiobooks: int) -> tuple[PlexEmulator, Library]:
    """(the emulator, not started; its second music section's library): "Music" and "Audiobooks"."""
    other = generate_library(audiobooks, seed=11, library=Library(section_key="7", first_key=500_000,
                                                                music_title="Audiobooks"))
    return PlexEmulator(generate_library(music, seed=7), token=EMULATOR_TOKEN, slow_seconds=3.0,
                        other_music=[other]), other


@pytest.fixture
def two_sections():
    emu, other = sections(1500, 300)
    with emu:
        yield emu, other


def expected(library: Library) -> dict:
    return expected_library(SimpleNamespace(library=library))


async def test_a_daemon_started_on_its_cache_takes_no_other_sections_notifications(daemon_factory, two_sections):
    """A daemon started again on the cache it synced knows its library's section from the cache.
    (Before, it learnt it from the next sync's worker and, until then, took every entry for its
    library's: a track of "Audiobooks" edited became a cached track.)"""
    emu, other = two_sections
    first = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True})
    assert (await first.sync())["state"] == "succeeded"
    await first.stop()
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True})
    assert await asyncio.to_thread(emu.wait_for_ws_clients, 1, 20), "the daemon did not connect"
    ours = sorted(expected_library(emu), key=int)[0]
    other.edit_track(sorted(other.tracks, key=int)[0], title="An audiobook's chapter, edited")
    emu.edit_track(ours, title="Ours, notified")  # notified after the other section's

    async def applied():
        cached = await cached_library(daemon)
        return cached if cached[ours]["title"] == "Ours, notified" else None
    await wait_until(applied, timeout=30, interval=0.1)
    assert_mirror(await cached_library(daemon), expected_library(emu))


async def test_a_library_renamed_on_plex_and_another_given_its_name_is_synced_afresh(daemon_factory, two_sections):
    """``plex.library`` names another section than the cached library's once the user renames
    "Music" on Plex and gives the name to another one: the next sync reads that section in full.
    (Before, the daemon's check of an unchanged library asked the cached section, still there
    under its new name, and kept serving it as "Music".)"""
    emu, other = two_sections
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token)
    assert (await daemon.sync())["state"] == "succeeded"
    emu.library.music_title, other.music_title = "Music (2019)", "Music"

    job = await daemon.sync("auto")

    assert (job["state"], job["mode"]) == ("succeeded", "full"), job
    assert_mirror(await cached_library(daemon), expected(other))
    again = await daemon.sync("auto")  # and from then on that section is the cached one
    assert (again["state"], again["mode"], again["added"], again["removed"]) == ("succeeded", "incremental", 0, 0)
    assert_mirror(await cached_library(daemon), expected(other))


async def test_a_full_sync_cut_short_resumes_only_in_the_same_section(daemon_factory):
    """A partial slot read from "Music" is not continued once "Music" names another section: the
    rest of that one's listing would have filled it up to its count, a mixed library."""
    emu, other = sections(3000, 3000)
    with emu:
        daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"page_size": 200, "retries": 1})
        emu.inject_fault("500", page=12, times=None)
        cut = await daemon.sync()
        emu.clear_faults()
        assert cut["state"] == "failed" and cut["current"] >= 1600, cut
        emu.library.music_title, other.music_title = "Music (2019)", "Music"

        job = await daemon.sync()

        assert (job["state"], job["resumed_from"]) == ("succeeded", None), job
        assert_mirror(await cached_library(daemon), expected(other))


async def test_of_two_music_sections_of_that_name_the_first_plex_lists_is_the_library(daemon_factory, two_sections):
    """One rule picks the section, in the sync and in the daemon's check of an unchanged library:
    the name without case or surrounding blanks; of several, the first Plex lists."""
    emu, other = two_sections
    other.music_title = " music "
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token)
    assert (await daemon.sync())["state"] == "succeeded"
    assert_mirror(await cached_library(daemon), expected_library(emu))

    job = await daemon.sync("auto")

    assert (job["state"], job["mode"], job["added"], job["updated"], job["removed"]) == (
        "succeeded", "incremental", 0, 0, 0), job


def test_the_rule_reads_a_real_sections_answer():
    """A real ``/library/sections`` answer (tests/fixtures/plex/SOURCES.md): a music section whose
    title is escaped as character references."""
    root = ElementTree.parse(CAPTURES / "cndoc-2024-sections.xml").getroot()
    sections = [(d.get("key"), d.get("title"), d.get("type")) for d in root.iter("Directory")]
    assert music_section(sections, " 音乐 ") == "1"
    assert music_section(sections, "Music") is None
    assert music_section([("1", "Music", "movie"), ("2", "MUSIC", "artist"), ("3", "Music", "artist")],
                         "music") == "2"
