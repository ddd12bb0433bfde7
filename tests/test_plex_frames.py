"""Plex's notification frames as real servers sent them, not as our emulator writes them.

The frames in ``tests/fixtures/plex/captures/*.jsonl`` were logged from real servers' websockets
by other projects' users (sources in SOURCES.md): timeline entries of another provider (the
live TV guide) in section 2 with their ids written as numbers, scanner activity, playback and
an update's state. None of them is a change of a music library, so none may start a sync,
whatever number the music section has; and the listener must keep following after them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mediasaged.plex.frames import timeline_entries
from mediasaged.sync.targeted import Notified
from tests.emulator.model import MUSIC_SECTION_ID
from tests.mirror import assert_mirror, cached_library, expected_library
from tests.test_plex_events import event_jobs, finished_event_job

CAPTURES = Path(__file__).parent / "fixtures" / "plex" / "captures"
FRAMES = [(path.name, n, line.strip()) for path in sorted(CAPTURES.glob("*.jsonl"))
          for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]


def test_the_captured_frames_are_there():
    assert len(FRAMES) >= 10
    assert {json.loads(f)["NotificationContainer"]["type"] for _, _, f in FRAMES} >= {
        "timeline", "activity", "playing", "update.statechange"}


@pytest.mark.parametrize("name, line, frame", FRAMES, ids=[f"{name}:{n}" for name, n, _ in FRAMES])
@pytest.mark.parametrize("section", [None, "2"])  # "2": as if the music section had that number too
def test_no_real_frame_of_another_kind_names_a_library_change(name, line, frame, section):
    assert timeline_entries(frame, section) == []


def test_a_library_entry_with_its_ids_written_as_numbers():
    """The captured guide entry, with the library's identifier: the numbers come out as the
    strings a rating key is everywhere else."""
    entry = json.loads(FRAMES[0][2])["NotificationContainer"]["TimelineEntry"][0]
    frame = json.dumps({"NotificationContainer": {"type": "timeline", "size": 1, "TimelineEntry": [
        {**entry, "identifier": "com.plexapp.plugins.library"}]}})
    assert timeline_entries(frame, "2") == [{"item_id": "583", "type": 4, "state": 9, "updated_at": 1516554117}]
    assert timeline_entries(frame, "3") == []


async def test_the_daemon_follows_on_through_real_frames(daemon_factory, plex_emulator):
    """Every captured frame over the real socket (their sections set to the music section's, so
    that only their kind tells them apart), then one real edit: the edit is applied by itself,
    item by item (no "changed since" listing: nothing in the frames looked unclear), in one job."""
    emu = plex_emulator
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token, sync={"plex_events": True})
    assert (await daemon.sync())["state"] == "succeeded"
    assert await asyncio.to_thread(emu.wait_for_ws_clients, 1, 20)
    for _, _, frame in FRAMES:
        container = json.loads(frame)["NotificationContainer"]
        for entry in container.get("TimelineEntry", ()):
            entry["sectionID"] = int(MUSIC_SECTION_ID)
        emu.send_notification(container)
    emu.request_log.clear()
    key = sorted(expected_library(emu), key=int)[0]
    emu.edit_track(key, title="Edited after the real frames")

    await finished_event_job(daemon)
    jobs = await event_jobs(daemon)

    assert [(j["state"], j["updated"], j["removed"]) for j in jobs] == [("succeeded", 1, 0)], jobs
    assert not [p for p in emu.request_log if "updatedAt" in p], "applied by targeted fetch, not a fallback"
    assert_mirror(await cached_library(daemon), expected_library(emu))


def test_the_last_word_on_an_item_wins_with_or_without_its_kind():
    edit, gone = {"item_id": "5", "type": 10, "state": 5}, {"item_id": "5", "type": -1, "state": 9}
    assert (Notified.of([edit, gone]).gone, Notified.of([edit, gone]).tracks) == ({"5"}, set())
    assert (Notified.of([gone, edit]).gone, Notified.of([gone, edit]).tracks) == (set(), {"5"})
