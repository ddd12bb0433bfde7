"""The wire transcript: every RPC method's answers on an emulator library, byte for byte.

One real daemon syncs a small generated library (seed 7) and answers a fixed list
of calls, valid and invalid. Each answer is kept as the exact line the daemon
wrote, with what differs from run to run masked: times the daemon makes (job
and sync times), its pid, paths and the emulator's port. The result must equal
tests/data/rpc_transcript.jsonl; a change of wire format or of an error message
shows up here as a diff. After a deliberate change, rewrite the file with

    MEDIASAGE_WRITE_TRANSCRIPT=1 .venv/bin/python -m pytest tests/test_transcript.py

and review the diff like code.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.support import wait_until

GOLDEN = Path(__file__).parent / "data" / "rpc_transcript.jsonl"
MASKED_KEYS = frozenset({"pid", "started_at", "finished_at", "synced_at", "next_sync_at", "sync_duration_ms",
                         "socket", "database", "url"})
TRACK_TIMES = frozenset({"last_viewed_at", "added_at", "updated_at"})  # from the generator: deterministic

# (method, params): params None sends no "params" member.
BEFORE_SYNC = [
    ("daemon.info", None),
    ("library.status", None),
    ("sync.status", None),
    ("sync.history", None),
    ("tracks.query", None),
    ("tracks.get", {"rating_keys": ["1"]}),
    ("library.stats", {}),
    ("sync.cancel", None),
]
AFTER_SYNC = [
    ("library.status", None),
    ("sync.status", None),
    ("sync.status", {"job_id": 1}),
    ("sync.history", {}),
    ("sync.history", {"limit": 1}),
    ("sync.cancel", {}),
    ("tracks.query", {"limit": 3}),
    ("tracks.query", {"limit": 0}),
    ("tracks.query", {"genres": ["rock", "Jazz"], "limit": 2}),
    ("tracks.query", {"genres": ["rock", "Jazz"], "genre_mode": "all", "limit": 0}),
    ("tracks.query", {"exclude_genres": ["rock"], "decades": ["1990s", "2000s"], "limit": 2, "sort": "year"}),
    ("tracks.query", {"year_min": 1980, "year_max": 1989, "sort": "title", "order": "desc", "limit": 2}),
    ("tracks.query", {"min_rating": 7.5, "exclude_live": True, "sort": "rating", "limit": 2}),
    ("tracks.query", {"artist": "björk", "limit": 2}),
    ("tracks.query", {"album": "nope", "limit": 2}),
    ("tracks.query", {"text": "love", "sort": "duration", "limit": 2, "offset": 1}),
    ("tracks.query", {"added_after": "2015-01-01", "updated_after": "2016-06-01T12:00:00+02:00", "limit": 0}),
    ("tracks.query", {"added_after": "2015-01-01T00:00:00", "limit": 0}),
    ("tracks.query", {"added_after": "2015-01-01T00:00:00.5Z", "updated_after": "2015-01-01 10:00", "limit": 0}),
    ("tracks.query", {"text": "  ", "limit": 0}),
    ("tracks.query", {"sort": "random", "seed": 42, "limit": 3}),
    ("tracks.query", {"sort": "added", "limit": 2}),
    ("tracks.query", {"sort": "album", "limit": 2, "artist": None, "genres": None}),
    ("tracks.get", {"rating_keys": ["1", "2", "nope"]}),
    ("library.stats", None),
    ("library.stats", {"genres": ["rock"]}),
    ("library.stats", {"decades": ["1970s"], "exclude_live": True}),
    ("events.subscribe", {"events": ["sync.finished", "library.changed"]}),
    ("events.unsubscribe", {"events": ["library.changed"]}),
    ("events.unsubscribe", {}),
    ("rpc.discover", None),
    # invalid params: each names the param
    ("sync.start", {"mode": "sideways"}),
    ("sync.start", {"mode": 1}),
    ("sync.start", {"bogus": 1}),
    ("sync.status", {"job_id": 0}),
    ("sync.status", {"job_id": "1"}),
    ("sync.status", {"job_id": True}),
    ("sync.status", {"job_id": 99}),
    ("sync.history", {"limit": 0}),
    ("sync.history", {"limit": 1001}),
    ("sync.history", {"limit": "x"}),
    ("sync.history", {"limit": 2.5}),
    ("sync.history", {"limt": 5}),
    ("events.subscribe", {}),
    ("events.subscribe", {"events": ["nope"]}),
    ("events.subscribe", {"events": "sync.started"}),
    ("events.unsubscribe", {"events": [1]}),
    ("daemon.info", {"x": 1}),
    ("daemon.info", [1]),
    ("tracks.query", {"limit": -1}),
    ("tracks.query", {"limit": 10001}),
    ("tracks.query", {"limit": True}),
    ("tracks.query", {"limit": 2.5}),
    ("tracks.query", {"offset": -1}),
    ("tracks.query", {"seed": "7"}),
    ("tracks.query", {"decades": ["199x"]}),
    ("tracks.query", {"decades": "1990s"}),
    ("tracks.query", {"genres": [1]}),
    ("tracks.query", {"genres": ["x"] * 101}),
    ("tracks.query", {"genre_mode": "some"}),
    ("tracks.query", {"sort": "nope"}),
    ("tracks.query", {"order": "up"}),
    ("tracks.query", {"min_rating": 11}),
    ("tracks.query", {"min_rating": "x"}),
    ("tracks.query", {"exclude_live": 1}),
    ("tracks.query", {"year_min": "1990"}),
    ("tracks.query", {"year_min": 2000, "year_max": 1990}),
    ("tracks.query", {"artist": 5}),
    ("tracks.query", {"text": "x" * 1001}),
    ("tracks.query", {"text": "!!! ..."}),
    ("tracks.query", {"added_after": "yesterday"}),
    ("tracks.query", {"added_after": "2026-02-30"}),
    ("tracks.query", {"updated_after": 1700000000}),
    ("tracks.query", {"colour": "blue"}),
    ("tracks.get", {}),
    ("tracks.get", {"rating_keys": [1]}),
    ("tracks.get", {"rating_keys": "1"}),
    ("tracks.get", {"rating_keys": ["1"], "x": 1}),
    ("library.stats", {"limit": -5}),
    ("library.stats", {"bogus": 5}),
    # what the validator fixes changed (see README, "Decisions"): these used to disagree
    ("sync.history", {"limit": 2.0}),
    ("tracks.query", {"limit": 2.0, "offset": 1.0}),
    ("sync.start", {"mode": None}),
    ("sync.status", {"job_id": None}),
    ("sync.history", {"limit": None}),
    ("events.unsubscribe", {"events": None}),
    ("events.subscribe", {"events": None}),
    ("tracks.get", {"rating_keys": None}),
]


def mask(value, key: str | None = None):
    """``value`` with what changes from run to run replaced by "<masked>"."""
    if isinstance(value, dict):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if key in MASKED_KEYS and value is not None:
        return "<masked>"
    return value


class Wire:
    """One raw connection: a request line out, the answer line back, exactly as written."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer, self.next_id = reader, writer, 0

    async def exchange(self, method: str, params) -> str:
        self.next_id += 1
        body = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        if params is not None:
            body["params"] = params
        self.writer.write(json.dumps(body).encode() + b"\n")
        await self.writer.drain()
        line = (await asyncio.wait_for(self.reader.readline(), 20)).decode()
        assert line.endswith("\n")
        return line[:-1]


def entry(method: str, params, line: str) -> str:
    answer = json.loads(line)
    compact = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    assert compact == line, "the wire is compact JSON, not escaped"
    return json.dumps({"call": [method, params], "answer": mask(answer)}, ensure_ascii=False,
                      separators=(",", ":"))


async def record(daemon) -> list[str]:
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket), limit=16 << 20)
    wire = Wire(reader, writer)
    lines = []
    try:
        for method, params in BEFORE_SYNC:
            lines.append(entry(method, params, await wire.exchange(method, params)))
        start = await wire.exchange("sync.start", {"mode": "full"})
        lines.append(entry("sync.start", {"mode": "full"}, start))
        await daemon.wait_sync(json.loads(start)["result"]["job_id"])
        for method, params in AFTER_SYNC:
            line = await wire.exchange(method, params)
            lines.append(entry(method, params, line))
            if method == "sync.start" and json.loads(line).get("result", {}).get("started"):
                await daemon.wait_sync(json.loads(line)["result"]["job_id"])  # the next answers are fixed
    finally:
        writer.close()
    return lines


async def test_transcript_is_unchanged(daemon_factory, plex_emulator_factory):
    emu = plex_emulator_factory(300)
    daemon = await daemon_factory(plex_url=emu.url, token=emu.token)
    lines = await record(daemon)
    if os.environ.get("MEDIASAGE_WRITE_TRANSCRIPT"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(expected)
    for got, want in zip(lines, expected):
        assert got == want
