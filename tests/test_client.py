"""mediasagectl end to end: the real client as a subprocess against the real daemon.

Every test runs the installed ``mediasagectl`` console script (a separate process,
as a user would) against a real ``mediasaged`` on a real Unix socket, pointed at
the in-process Plex emulator when it needs a library. Output is read from pipes,
so it is the non-TTY form. Waiting is on process exit, on lines of output or on
deadline polls, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from dataclasses import dataclass
from pathlib import Path


from tests.support import at_the_keyboard, mediasagectl_path

CTL = mediasagectl_path()
ANSI = re.compile(r"\x1b\[")
SUCCEEDED = re.compile(r"^Sync succeeded: \+([\d,]+) ~([\d,]+) -([\d,]+) in \S+$")
PROGRESS = re.compile(r"^\S+( [\d,]+(/[\d,]+ \(\d+%\))?( [\d,]+/s( ETA \S+)?)?)?$")


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MEDIASAGE_SOCKET", "MEDIASAGE_CONFIG", "FORCE_COLOR", "NO_COLOR")}
    env.update({"COLUMNS": "100", "LINES": "40", **extra})
    return env


async def ctl(*args: str, sock: Path | str | None = None, cwd: Path | None = None,
              env: dict | None = None, timeout: float = 60.0) -> Run:
    """Run mediasagectl to completion (``--socket sock`` first when given)."""
    argv = [CTL, *(["--socket", str(sock)] if sock is not None else []), *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, cwd=cwd, env=env or clean_env())
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Run(proc.returncode, out.decode(), err.decode())


async def ctl_json(daemon, *args: str):
    run = await ctl("--json", *args, sock=daemon.socket)
    assert run.code == 0, (run, daemon.log())
    return json.loads(run.out)


# -- cannot reach the daemon: exit 3, naming the socket ----------------------------

async def test_missing_socket_exits_3_naming_the_path(sdir):
    path = sdir / "nobody-home.sock"
    run = await ctl("status", sock=path)
    assert run.code == 3
    assert run.out == ""
    assert str(path) in run.err and "no socket" in run.err and "is mediasaged running?" in run.err


async def test_refusing_stale_socket_exits_3_naming_the_path(sdir):
    path = sdir / "stale.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # a socket file that nobody listens on any more
    listener.close()
    run = await ctl("status", sock=path)
    assert run.code == 3
    assert str(path) in run.err and "connection refused" in run.err and "stale socket" in run.err


async def test_every_command_reports_an_unreachable_daemon_the_same_way(sdir):
    path = sdir / "none.sock"
    for args in (["sync", "--wait"], ["query"], ["watch"], ["call", "daemon.info"]):
        run = await ctl(*args, sock=path)
        assert run.code == 3, (args, run)
        assert str(path) in run.err


async def test_stopped_daemon_leaves_the_client_exit_3(daemon):
    await daemon.stop()
    run = await ctl("status", sock=daemon.socket)
    assert run.code == 3, run
    assert str(daemon.socket) in run.err


# -- finding the socket ------------------------------------------------------------

async def test_socket_from_env_and_from_the_default_config(daemon, sdir, tmp_path):
    run = await ctl("call", "daemon.info", env=clean_env(MEDIASAGE_SOCKET=str(daemon.socket)),
                    cwd=tmp_path)
    assert run.code == 0, run
    # ./config.yaml of the working directory names the socket relative to itself
    run = await ctl("call", "daemon.info", cwd=daemon.dir)
    assert run.code == 0, run
    # $MEDIASAGE_CONFIG from elsewhere
    run = await ctl("call", "daemon.info", cwd=tmp_path,
                    env=clean_env(MEDIASAGE_CONFIG=str(daemon.config)))
    assert run.code == 0, run
    assert json.loads(run.out)["pid"] == daemon.proc.pid


# -- status ------------------------------------------------------------------------

async def test_status_of_a_never_synced_daemon(daemon):
    run = await ctl("status", sock=daemon.socket)
    assert run.code == 0, run
    assert run.lines[0] == "Not synced"
    assert re.fullmatch(r"Plex: (reachable|unreachable|unknown)", run.lines[1])
    status = await ctl_json(daemon, "status")
    assert status["synced_at"] is None and status["track_count"] == 0


async def test_status_after_a_sync(synced_daemon):
    run = await ctl("status", sock=synced_daemon.socket)
    assert run.code == 0, run
    assert re.fullmatch(r"Library: 1,500 tracks · Synced (just now|\d+ seconds? ago)", run.lines[0]), run
    assert run.lines[1] == "Plex: reachable"


# -- call --------------------------------------------------------------------------

async def test_call_daemon_info_prints_the_json_result(daemon):
    run = await ctl("call", "daemon.info", sock=daemon.socket)
    assert run.code == 0, run
    info = json.loads(run.out)
    assert info["pid"] == daemon.proc.pid
    assert Path(info["socket"]).resolve() == Path(daemon.socket).resolve()
    assert "test-token" not in run.out


async def test_call_with_key_value_and_with_json(synced_daemon):
    sock = synced_daemon.socket
    kv = await ctl("call", "tracks.query", "limit:=3", "sort=title", 'genres:=[]', sock=sock)
    assert kv.code == 0, kv
    by_kv = json.loads(kv.out)
    assert by_kv["total"] == 1500 and len(by_kv["tracks"]) == 3
    js = await ctl("call", "tracks.query", '{"limit": 3, "sort": "title"}', sock=sock)
    assert js.code == 0, js
    assert json.loads(js.out)["tracks"] == by_kv["tracks"]
    history = json.loads((await ctl("call", "sync.history", "limit:=1", sock=sock)).out)
    # key=value is always a string: a text that looks like a number stays text
    text = await ctl("call", "tracks.query", "text=1999", "limit:=0", sock=sock)
    assert text.code == 0, text
    assert len(history["jobs"]) == 1 and history["jobs"][0]["state"] == "succeeded"


async def test_rpc_errors_exit_1_with_the_daemons_message(daemon):
    run = await ctl("call", "no.such.method", sock=daemon.socket)
    assert run.code == 1, run
    assert run.err.startswith("mediasagectl: error: ") and run.out == ""
    run = await ctl("call", "tracks.query", "limit=-5", sock=daemon.socket)
    assert run.code == 1, run
    assert "limit" in run.err
    run = await ctl("query", "--limit", "20000", sock=daemon.socket)
    assert run.code == 1 and "limit" in run.err, run


async def test_queries_before_the_first_sync_exit_1(daemon):
    run = await ctl("query", sock=daemon.socket)
    assert run.code == 1, run
    assert run.err.startswith("mediasagectl: error: ")


async def test_usage_errors_exit_2_without_touching_the_daemon(sdir):
    path = sdir / "none.sock"  # would be exit 3 if the client tried to connect
    for args in (["query", "--bogus"], ["call", "daemon.info", "not-a-pair"], ["call", "x", "{bad"],
                 ["sync", "--full", "--incremental"], ["frobnicate"], []):
        run = await ctl(*args, sock=path)
        assert run.code == 2, (args, run)
        assert "usage:" in run.err


# -- sync ---------------------------------------------------------------------------

async def test_sync_wait_without_a_tty_prints_plain_progress_and_the_result(plex_daemon):
    run = await ctl("sync", "--wait", sock=plex_daemon.socket)
    assert run.code == 0, (run, plex_daemon.log())
    assert not ANSI.search(run.out) and "\r" not in run.out
    *progress, last = run.lines
    assert SUCCEEDED.match(last), run.out
    added = int(SUCCEEDED.match(last).group(1).replace(",", ""))
    assert added == 1500
    assert progress, run.out
    assert all(PROGRESS.match(line) for line in progress), progress
    status = await ctl_json(plex_daemon, "status")
    assert status["track_count"] == 1500 and not status["is_syncing"]


async def test_sync_wait_json_prints_the_final_job(plex_daemon):
    job = await ctl_json(plex_daemon, "sync", "--wait", "--full")
    assert job["state"] == "succeeded" and job["mode"] == "full" and job["added"] == 1500


async def test_sync_wait_failure_exits_1(daemon):
    # this daemon's Plex URL answers nothing: the sync fails
    run = await ctl("sync", "--wait", sock=daemon.socket)
    assert run.code == 1, (run, daemon.log())
    assert run.lines[-1].startswith("Sync failed: "), run.out
    assert "test-token" not in run.out + run.err
    status = await ctl("status", sock=daemon.socket)
    assert status.code == 0, status
    assert status.lines[0].startswith("Sync failed: "), status


async def test_sync_without_wait_and_cancel(plex_daemon):
    run = await ctl("sync", sock=plex_daemon.socket)
    assert run.code == 0, run
    started = re.fullmatch(r"Sync started \(job (\d+)\)", run.lines[0])
    assert started, run
    job = await plex_daemon.wait_sync(int(started.group(1)))
    assert job["state"] == "succeeded"
    run = await ctl("cancel", sock=plex_daemon.socket)
    assert (run.code, run.lines) == (0, ["No sync running"])
    history = await ctl("history", "--format", "table", sock=plex_daemon.socket)
    assert history.code == 0
    assert any("succeeded" in line and "+1,500 ~0 -0" in line for line in history.lines), history.out
    # piped: whole cells, tab-separated, a header line
    tsv = await ctl("history", sock=plex_daemon.socket)
    assert tsv.lines[0].split("\t") == ["Job", "State", "Mode", "Trigger", "Started", "Finished",
                                         "Duration", "Added", "Updated", "Removed", "Error"]
    row = dict(zip(tsv.lines[0].split("\t"), tsv.lines[1].split("\t")))
    assert (row["Job"], row["State"], row["Added"], row["Error"]) == (started.group(1), "succeeded", "1500", "")
    assert row["Started"].endswith("Z")


# -- query / get / stats ------------------------------------------------------------

async def test_query_table_and_total(synced_daemon):
    run = await ctl("query", "--format", "table", "--limit", "5", "--sort", "title", sock=synced_daemon.socket)
    assert run.code == 0, run
    assert run.lines[-1] == "5 of 1,500"
    assert run.lines[0].split() == ["Artist", "Album", "Title", "Year", "Genres", "Rating", "Time", "Live"]
    assert len(run.lines) == 2 + 5 + 1  # header, rule, rows, total
    assert all(len(line) <= 100 for line in run.lines)
    assert not ANSI.search(run.out)
    expected = await synced_daemon.call("tracks.query", limit=5, sort="title")
    for row, track in zip(run.lines[2:7], expected["tracks"]):
        assert row.startswith(track["artist"][:5])


async def test_query_json_is_the_raw_result(synced_daemon, plex_emulator):
    result = await ctl_json(synced_daemon, "query", "--limit", "10000")
    assert result["total"] == 1500
    expected = plex_emulator.library.expected_tracks()
    assert {t["rating_key"] for t in result["tracks"]} == set(expected)
    genre = next(g for t in result["tracks"] for g in t["genres"])
    filtered = await ctl_json(synced_daemon, "query", "--genre", genre, "--limit", "0")
    assert filtered["total"] == sum(
        genre.casefold() in {g.casefold() for g in t["genres"]} for t in result["tracks"])
    assert filtered["tracks"] == []


async def test_get_shows_tracks_and_missing_keys(synced_daemon, plex_emulator):
    expected = plex_emulator.library.expected_tracks()
    keys = sorted(expected)[:2]
    run = await ctl("get", "--format", "table", *keys, "no-such-key", sock=synced_daemon.socket)
    assert run.code == 0, run
    assert run.lines[-1] == "missing: no-such-key"
    assert len(run.lines) == 2 + 2 + 1
    piped = await ctl("get", *keys, "no-such-key", sock=synced_daemon.socket)
    assert [line.split("\t")[0] for line in piped.lines] == ["Key", *keys]
    assert piped.err == "missing: no-such-key\n"
    result = await ctl_json(synced_daemon, "get", *keys, "no-such-key")
    assert sorted(t["rating_key"] for t in result["tracks"]) == keys
    assert result["missing"] == ["no-such-key"]


async def test_stats(synced_daemon):
    run = await ctl("stats", sock=synced_daemon.socket)
    assert run.code == 0, run
    assert re.fullmatch(r"Tracks: +1,500( \([\d,]+ live\))?", run.lines[0]), run.out
    assert "Top genres" in run.out and "Decades:" in run.out
    stats = await ctl_json(synced_daemon, "stats", "--exclude-live")
    full = await ctl_json(synced_daemon, "stats")
    assert full["track_count"] == 1500
    assert stats["track_count"] == 1500 - full["live_count"]


# -- watch ----------------------------------------------------------------------------

async def test_watch_prints_sync_events_until_interrupted(plex_daemon):
    # as if pytest ran in the background of a script (SIGINT ignored, inherited):
    # the client still starts as from a terminal (support.at_the_keyboard)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = await asyncio.create_subprocess_exec(
            *at_the_keyboard(CTL, "--socket", str(plex_daemon.socket), "watch"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env())
    finally:
        signal.signal(signal.SIGINT, before)
    try:
        # the header goes to stderr once subscribed: from then on no event is missed
        header = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"Watching" in header, header
        result = await plex_daemon.call("sync.start", mode="full")
        seen = []
        while not any(" sync.finished " in line for line in seen):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, (seen, plex_daemon.log())
            seen.append(line.rstrip("\n"))
        assert any(re.match(r"\d\d:\d\d:\d\d sync\.started +job %d " % result["job_id"], s) for s in seen), seen
        assert re.match(r"\d\d:\d\d:\d\d sync\.finished +job %d succeeded \+1,500 ~0 -0" % result["job_id"],
                        seen[-1]), seen
        proc.send_signal(signal.SIGINT)
        # communicate(): read what is left on both pipes while waiting, so a pipe
        # we stopped reading can't hold up the exit (asyncio waits for both)
        await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 130
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# -- output for scripts: TSV when piped, --format -------------------------------------

async def test_query_piped_is_tsv_with_whole_cells_and_the_total_on_stderr(synced_daemon):
    sock = synced_daemon.socket
    expected = await synced_daemon.call("tracks.query", limit=50, sort="title")
    run = await ctl("query", "--limit", "50", "--sort", "title", sock=sock,
                    env=clean_env(COLUMNS="20"))
    assert run.code == 0, run
    assert run.lines[0].split("\t") == ["Key", "Artist", "Album", "Title", "Year", "Genres",
                                        "Rating", "Time", "Live"]
    assert len(run.lines) == 1 + 50 and not ANSI.search(run.out)
    for line, track in zip(run.lines[1:], expected["tracks"]):
        cells = line.split("\t")
        assert len(cells) == 9
        assert cells[:4] == [track["rating_key"], track["artist"], track["album"], track["title"]]
        assert cells[5] == ", ".join(track["genres"])  # whole, however narrow $COLUMNS is
    assert run.err == "50 of 1,500\n"
    assert "…" not in run.out and "★" not in run.out


async def test_format_template_json_and_table(synced_daemon):
    sock = synced_daemon.socket
    expected = await synced_daemon.call("tracks.query", limit=3, sort="title")
    run = await ctl("query", "--limit", "3", "--sort", "title", "--format",
                    "{artist} - {title}\\t{genres}|{year}{no_such_field}", sock=sock)
    assert run.code == 0, run
    assert run.lines == [f"{t['artist']} - {t['title']}\t{', '.join(t['genres'])}|{t['year'] or ''}"
                         for t in expected["tracks"]]
    status = await ctl("status", "--format", "{track_count} tracks, generation {generation}", sock=sock)
    assert status.lines == ["1500 tracks, generation 1"], status
    info = await ctl("call", "daemon.info", "--format", "{plex[library]} {pid}", sock=sock)
    assert info.lines == [f"Music {synced_daemon.proc.pid}"], info
    as_json = await ctl("query", "--limit", "1", "--format", "json", sock=sock)
    assert json.loads(as_json.out)["total"] == 1500
    bad = await ctl("query", "--format", "nothing to fill", sock=sock)
    assert bad.code == 2 and "--format" in bad.err


async def test_ascii_stand_ins_when_the_locale_is_not_utf8(synced_daemon):
    sock = synced_daemon.socket
    rated = await synced_daemon.call("tracks.query", min_rating=1, limit=5)
    assert rated["tracks"], "the emulator's library has rated tracks"
    utf8 = await ctl("query", "--format", "table", "--min-rating", "1", "--limit", "5", sock=sock,
                     env=clean_env(LANG="C.UTF-8", LC_ALL=""))
    assert "★" in utf8.out and "─" in utf8.out, utf8
    for env in ({"LANG": "C", "LC_ALL": ""}, {"LC_ALL": "POSIX"}):
        run = await ctl("query", "--format", "table", "--min-rating", "1", "--limit", "5",
                        sock=sock, env=clean_env(**env))
        assert run.code == 0, run
        assert not set("★½☆─…·") & set(run.out), run.out  # the data may hold any text
        assert "/10" in run.out and "---" in run.lines[1]
    status = await ctl("status", "--format", "table", sock=sock, env=clean_env(LANG="C", LC_ALL=""))
    assert status.lines[0].startswith("Library: 1,500 tracks - Synced"), status
