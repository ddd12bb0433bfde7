"""Unit tests of mediasagectl's pure parts: no daemon, no sockets, no mocks.

Arguments → JSON-RPC requests, ``call`` parameter parsing, humanized times and
durations, status/sync/progress lines, table fitting and the exit code enum
(socket discovery: tests/test_discovery.py; formats: tests/test_client_formats.py).
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from rich.console import Console

from mediasagectl import fmt, output
from mediasagectl.cli import main, parse_args, parse_call_params, request_for, time_arg
from mediasagectl.errors import DaemonError, Unreachable, UsageError, unreachable_message
from mediasagectl.exitcodes import ExitCode

NOW = dt.datetime(2026, 2, 5, 12, 0, 0, tzinfo=dt.timezone.utc)


def req(*argv: str) -> tuple[str, object]:
    return request_for(parse_args(list(argv)), NOW)


# -- exit codes ------------------------------------------------------------------

def test_exit_codes_are_the_contracts():
    assert [(c.name, int(c)) for c in ExitCode] == [
        ("OK", 0), ("ERROR", 1), ("USAGE", 2), ("UNREACHABLE", 3), ("INTERRUPTED", 130)]


def test_errors_carry_their_exit_codes():
    assert DaemonError(-32602, "bad limit").exit_code == ExitCode.ERROR
    assert Unreachable("/x.sock", "missing").exit_code == ExitCode.UNREACHABLE
    assert UsageError("nope").exit_code == ExitCode.USAGE


@pytest.mark.parametrize("reason, expected", [
    ("missing", "no socket at /run/m.sock — is mediasaged running?"),
    ("refused", "connection refused at /run/m.sock — mediasaged is not running (stale socket)"),
])
def test_unreachable_messages_name_the_path_and_the_reason(reason, expected):
    assert unreachable_message("/run/m.sock", reason) == expected
    assert str(Unreachable("/run/m.sock", reason)) == expected


def test_unreachable_other_reasons_name_the_path():
    for reason in ("denied", "not_socket", "closed", "timeout", "other"):
        assert "/run/m.sock" in unreachable_message("/run/m.sock", reason, "10s")
    assert "permission denied" in unreachable_message("/run/m.sock", "denied")


# -- argument parsing → requests -------------------------------------------------

def test_simple_commands():
    assert req("status") == ("library.status", None)
    assert req("cancel") == ("sync.cancel", None)
    assert req("history") == ("sync.history", {})
    assert req("history", "--limit", "5") == ("sync.history", {"limit": 5})
    assert req("get", "1", "22", "333") == ("tracks.get", {"rating_keys": ["1", "22", "333"]})
    assert req("watch") == ("events.subscribe", {"events": [
        "sync.started", "sync.progress", "sync.finished", "library.changed"]})


def test_sync_modes():
    assert req("sync") == ("sync.start", {})
    assert req("sync", "--full") == ("sync.start", {"mode": "full"})
    assert req("sync", "--incremental", "--wait") == ("sync.start", {"mode": "incremental"})
    assert parse_args(["sync", "--wait"]).wait is True
    with pytest.raises(SystemExit) as exc:
        parse_args(["sync", "--full", "--incremental"])
    assert exc.value.code == 2


def test_query_without_options_sends_no_params():
    assert req("query") == ("tracks.query", {})


def test_query_all_filters():
    method, params = req(
        "query", "--genre", "Rock", "--genre", "Jazz", "--exclude-genre", "Christmas",
        "--genre-mode", "all", "--decade", "1990s", "--decade", "2000s",
        "--year-min", "1990", "--year-max", "2009", "--min-rating", "7.5", "--exclude-live",
        "--artist", "Beyoncé", "--album", "Lemonade", "--text", "love on top",
        "--added-after", "2026-01-01T00:00:00Z", "--updated-after", "2026-01-02",
        "--sort", "year", "--desc", "--limit", "50", "--offset", "100")
    assert method == "tracks.query"
    assert params == {
        "genres": ["Rock", "Jazz"], "exclude_genres": ["Christmas"], "genre_mode": "all",
        "decades": ["1990s", "2000s"], "year_min": 1990, "year_max": 2009, "min_rating": 7.5,
        "exclude_live": True, "artist": "Beyoncé", "album": "Lemonade", "text": "love on top",
        "added_after": "2026-01-01T00:00:00Z", "updated_after": "2026-01-02T00:00:00Z",
        "sort": "year", "order": "desc", "limit": 50, "offset": 100}


def test_query_random_and_seed():
    assert req("query", "--random") == ("tracks.query", {"sort": "random"})
    assert req("query", "--random", "--seed", "42") == ("tracks.query", {"sort": "random", "seed": 42})
    assert req("query", "--sort", "random", "--seed", "1") == ("tracks.query", {"sort": "random", "seed": 1})
    assert req("query", "--min-rating", "8") == ("tracks.query", {"min_rating": 8})


@pytest.mark.parametrize("argv", [
    ["query", "--seed", "3"],                         # seed without random order
    ["query", "--random", "--sort", "title"],         # contradictory order
    ["query", "--limit", "-1"],
    ["query", "--sort", "nope"],
    ["history", "--limit", "0"],
    ["query", "--year-min", "nineteen"],
    ["query", "--genre-mode", "some"],
    ["--timeout", "0", "status"],
    ["--timeout", "soon", "status"],
    ["frobnicate"],
    [],
    ["get"],
    ["call"],
    ["call", "m", "{not json"],
    ["call", "m", "novalue"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert main(argv) == ExitCode.USAGE
    assert "usage:" in capsys.readouterr().err


def test_stats_takes_the_filters_but_not_paging():
    assert req("stats") == ("library.stats", {})
    assert req("stats", "--genre", "Rock", "--exclude-live", "--decade", "1980s") == (
        "library.stats", {"genres": ["Rock"], "decades": ["1980s"], "exclude_live": True})
    with pytest.raises(SystemExit):
        parse_args(["stats", "--limit", "3"])


def test_global_options_before_or_after_the_command():
    ns = parse_args(["--json", "--timeout", "2.5", "--socket", "/a.sock", "status"])
    assert (ns.json, ns.timeout, ns.socket) == (True, 2.5, "/a.sock")
    ns = parse_args(["status", "--json", "--timeout", "3", "--socket", "/b.sock"])
    assert (ns.json, ns.timeout, ns.socket) == (True, 3.0, "/b.sock")
    ns = parse_args(["status"])
    assert (ns.json, ns.timeout, ns.socket) == (False, 10.0, None)


def test_version(capsys):
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out.strip() == "mediasagectl 0.1.0"


def test_time_arguments():
    assert time_arg("7d", NOW) == "2026-01-29T12:00:00Z"
    assert time_arg("24h", NOW) == "2026-02-04T12:00:00Z"
    assert time_arg("30m", NOW) == "2026-02-05T11:30:00Z"
    assert time_arg("2w", NOW) == "2026-01-22T12:00:00Z"
    assert time_arg("2026-01-31", NOW) == "2026-01-31T00:00:00Z"
    assert time_arg("2026-01-31T08:00:00Z", NOW) == "2026-01-31T08:00:00Z"
    assert time_arg("yesterday", NOW) == "yesterday"  # the daemon names the bad param
    assert time_arg("1.5h", NOW) == "2026-02-05T10:30:00Z"  # the config's grammar too (durations.py)
    assert time_arg("2 W", NOW) == time_arg("14d", NOW)
    assert time_arg("2026", NOW) == "2026"  # no unit: not an age (the daemon refuses it as a time)
    assert req("query", "--added-after", "1d")[1] == {"added_after": "2026-02-04T12:00:00Z"}


# -- call parameters -------------------------------------------------------------

def test_call_params_key_value_is_a_string_and_key_colon_equals_is_json():
    assert parse_call_params([]) is None
    assert parse_call_params(["limit:=5", "text=love on top", "exclude_live:=true",
                              "genres:=[\"Rock\",\"Pop\"]", "artist:=null", "year=1999x",
                              "empty=", "eq=a=b", "rating:=7.5", "text2=1999", "t3=true",
                              "odd=a:=b"]) == {
        "limit": 5, "text": "love on top", "exclude_live": True, "genres": ["Rock", "Pop"],
        "artist": None, "year": "1999x", "empty": "", "eq": "a=b", "rating": 7.5,
        "text2": "1999", "t3": "true", "odd": "a:=b"}


def test_call_params_json():
    assert parse_call_params(['{"limit": 3, "genres": ["Rock"]}']) == {"limit": 3, "genres": ["Rock"]}
    assert parse_call_params(['["a", 1]']) == ["a", 1]
    assert parse_call_params(['  {"a": 1}']) == {"a": 1}


@pytest.mark.parametrize("args", [["{nope"], ["[1,"], ["x"], ["=5"], ["a=1", "b"], ["5"],
                                  ["limit:=five"], [":=1"], ["a:="]])
def test_call_params_errors(args):
    with pytest.raises(UsageError):
        parse_call_params(args)


def test_call_request():
    assert req("call", "daemon.info") == ("daemon.info", None)
    assert req("call", "tracks.query", "limit:=2", "genres:=[\"Rock\"]", "text=1999") == (
        "tracks.query", {"limit": 2, "genres": ["Rock"], "text": "1999"})
    assert req("call", "tracks.get", '{"rating_keys": ["1"]}') == ("tracks.get", {"rating_keys": ["1"]})


# -- times and durations ---------------------------------------------------------

@pytest.mark.parametrize("seconds, text", [
    (0, "just now"), (9, "just now"), (-5, "just now"), (10, "10 seconds ago"),
    (59, "59 seconds ago"), (60, "1 minute ago"), (119, "1 minute ago"), (120, "2 minutes ago"),
    (3600, "1 hour ago"), (2 * 3600 + 59 * 60, "2 hours ago"), (86400, "1 day ago"),
    (6 * 86400, "6 days ago"), (7 * 86400, "1 week ago"), (45 * 86400, "1 month ago"),
    (400 * 86400, "1 year ago"), (-3 * 3600, "in 3 hours"),
])
def test_humanize_age(seconds, text):
    assert fmt.humanize_age(NOW - dt.timedelta(seconds=seconds), NOW) == text


def test_humanize_age_of_strings_and_nothing():
    assert fmt.humanize_age("2026-02-05T10:00:00Z", NOW) == "2 hours ago"
    assert fmt.humanize_age("2026-02-05T10:00:00+00:00", NOW) == "2 hours ago"
    assert fmt.humanize_age(None, NOW) == "never"
    assert fmt.humanize_age("garbage", NOW) == "never"


def test_parse_and_format_iso():
    moment = fmt.parse_time("2026-02-05T10:30:00Z")
    assert moment == dt.datetime(2026, 2, 5, 10, 30, tzinfo=dt.timezone.utc)
    assert fmt.iso(moment) == "2026-02-05T10:30:00Z"
    assert fmt.parse_time(None) is None and fmt.parse_time(5) is None


@pytest.mark.parametrize("seconds, text", [
    (0.04, "0.0s"), (3.24, "3.2s"), (12.9, "12s"), (59.4, "59s"), (125, "2m 05s"),
    (3720, "1h 02m"), (90000, "1d 01h"), (None, "?"), (-1, "?"),
])
def test_format_seconds(seconds, text):
    assert fmt.format_seconds(seconds) == text


@pytest.mark.parametrize("ms, text", [
    (0, "0:00"), (59_400, "0:59"), (200_000, "3:20"), (3_723_000, "1:02:03"), (None, ""), ("x", ""),
])
def test_track_duration(ms, text):
    assert fmt.format_track_duration(ms) == text


@pytest.mark.parametrize("ms, text", [
    (0, "0 minutes"), (30_000, "30 seconds"), (60_000, "1 minute"),
    (4 * 3_600_000 + 12 * 60_000, "4 hours 12 minutes"),
    (52 * 86_400_000 + 3 * 3_600_000 + 5 * 60_000, "52 days 3 hours"), (None, "?"),
])
def test_total_duration(ms, text):
    assert fmt.humanize_total_duration(ms) == text


@pytest.mark.parametrize("rating, text", [
    (0, "☆☆☆☆☆"), (1, "½☆☆☆☆"), (7, "★★★½☆"), (8, "★★★★☆"), (10, "★★★★★"), (12, "★★★★★"),
    (None, ""), (True, ""),
])
def test_stars(rating, text):
    assert fmt.stars(rating) == text


def test_rating_without_unicode():
    assert fmt.rating_text(7, unicode_ok=False) == "7/10"
    assert fmt.rating_text(7.5, unicode_ok=False) == "7.5/10"
    assert fmt.rating_text(None, unicode_ok=False) == ""


def test_numbers():
    assert fmt.num(18432) == "18,432"
    assert fmt.num(None) == "?"
    assert fmt.plural(1, "track") == "1 track"
    assert fmt.plural(1234, "track") == "1,234 tracks"


# -- status ----------------------------------------------------------------------

def status(**overrides):
    base = {"track_count": 0, "synced_at": None, "generation": 0, "plex_server_id": None,
            "sync_duration_ms": None, "is_syncing": False, "sync_progress": None,
            "error": None, "stale": False, "plex_reachable": None, "next_sync_at": None}
    base.update(overrides)
    return base


def test_status_synced():
    lines = fmt.status_lines(status(track_count=18432, synced_at="2026-02-05T10:00:00Z",
                                    plex_reachable=True), NOW)
    assert lines == ["Library: 18,432 tracks · Synced 2 hours ago", "Plex: reachable"]


def test_status_not_synced():
    assert fmt.status_lines(status(), NOW) == ["Not synced", "Plex: unknown"]


def test_status_first_sync_running():
    lines = fmt.status_lines(status(is_syncing=True, plex_reachable=True, sync_progress={
        "job_id": 1, "phase": "tracks", "current": 5000, "total": 18432}), NOW)
    assert lines == ["Syncing 5,000 / 18,432", "Plex: reachable"]


def test_status_syncing_with_a_previous_library_shows_both():
    lines = fmt.status_lines(status(
        track_count=18000, synced_at="2026-02-04T12:00:00Z", is_syncing=True,
        sync_progress={"job_id": 7, "phase": "tracks", "current": 5000, "total": 18432}), NOW)
    assert lines[0] == "Library: 18,000 tracks · Synced 1 day ago · Syncing 5,000 / 18,432"


def test_status_syncing_total_unknown():
    assert fmt.syncing_text({"current": 0, "total": None}) == "Syncing"
    assert fmt.syncing_text({"current": 1000, "total": None}) == "Syncing 1,000"
    assert fmt.syncing_text(None) == "Syncing"


def test_status_failed():
    lines = fmt.status_lines(status(error="Plex did not answer", plex_reachable=False), NOW)
    assert lines == ["Sync failed: Plex did not answer", "Plex: unreachable"]
    lines = fmt.status_lines(status(track_count=1, synced_at="2026-02-05T11:59:00Z",
                                    error="Plex did not answer", stale=True), NOW)
    assert lines[0] == "Library: 1 track · Synced 1 minute ago (stale) · Sync failed: Plex did not answer"


def test_status_next_sync():
    lines = fmt.status_lines(status(track_count=3, synced_at="2026-02-05T11:00:00Z",
                                    next_sync_at="2026-02-06T11:00:00Z", plex_reachable=True), NOW)
    assert lines == ["Library: 3 tracks · Synced 1 hour ago", "Plex: reachable", "Next sync: in 23 hours"]


def test_status_retrying_an_owed_sync():
    owed = {"reason": "Plex unreachable at http://plex:32400: connection refused",
            "retry_at": "2026-02-05T12:00:30Z", "attempts": 2, "token_rejected": False}
    lines = fmt.status_lines(status(error=owed["reason"], plex_reachable=False, sync_owed=owed,
                                    next_sync_at=owed["retry_at"]), NOW)
    assert lines[2] == "Retrying in 30 seconds: Plex unreachable at http://plex:32400: connection refused"
    lines = fmt.status_lines(status(sync_owed={**owed, "retry_at": "2026-02-05T12:00:03Z"}), NOW)
    assert lines[2].startswith("Retrying in a few seconds: ")


def test_status_rejected_token():
    owed = {"reason": "Plex rejected the token", "retry_at": "2026-02-06T12:00:00Z", "attempts": 1,
            "token_rejected": True}
    lines = fmt.status_lines(status(error="Plex rejected the token", sync_owed=owed), NOW)
    assert lines[2] == "Plex rejected the token: next try in 1 day, or after a reload (SIGHUP) with a new token"
    lines = fmt.status_lines(status(sync_owed={**owed, "retry_at": None}), NOW)
    assert lines[2] == "Plex rejected the token: next try after a reload (SIGHUP) with a new token"
def test_status_server_changed():
    lines = fmt.status_lines(status(track_count=3, synced_at="2026-02-05T11:00:00Z", plex_reachable=True,
                                    server_changed=True, error="Plex returned HTTP 500"), NOW)
    assert lines[1:] == ["Plex: reachable", "Server changed: Plex answers as another server; the old library "
                         "answers until a full sync of the new one completes"]


# -- sync results and progress ---------------------------------------------------

def job(**overrides):
    base = {"job_id": 7, "state": "succeeded", "mode": "full", "trigger": "manual",
            "phase": "tracks", "current": 100, "total": 100,
            "started_at": "2026-02-05T11:59:50Z", "finished_at": "2026-02-05T11:59:53Z",
            "added": 10, "updated": 2, "removed": 1, "error": None}
    base.update(overrides)
    return base


def test_sync_result_lines():
    assert fmt.sync_result_line(job(), 3.24) == "Sync succeeded: +10 ~2 -1 in 3.2s"
    assert fmt.sync_result_line(job()) == "Sync succeeded: +10 ~2 -1 in 3.0s"
    assert fmt.sync_result_line(job(state="failed", error="Plex returned HTTP 500")) == (
        "Sync failed: Plex returned HTTP 500")
    assert fmt.sync_result_line(job(state="cancelled")) == "Sync cancelled (job 7)"
    assert fmt.sync_result_line(job(added=None, updated=None, removed=None,
                                    finished_at=None), None) == "Sync succeeded: +0 ~0 -0"


def test_job_seconds_while_running():
    assert fmt.job_seconds(job(state="running", finished_at=None), NOW) == 10.0
    assert fmt.job_seconds({"state": "idle"}) is None


def test_progress_lines():
    assert fmt.progress_line("tracks", 5000, 18432, 9800) == "tracks 5,000/18,432 (27%) 9,800/s ETA 2s"
    assert fmt.progress_line("tracks", 18432, 18432, 9800) == "tracks 18,432/18,432 (100%) 9,800/s ETA 0s"
    assert fmt.progress_line("tracks", 0, 18432, None) == "tracks 0/18,432 (0%)"
    assert fmt.progress_line("genres", 300, None, 150.4) == "genres 300 150/s"
    assert fmt.progress_line(None, None, None, None) == "sync"
    assert fmt.progress_line("starting", 0, None, None) == "starting"


def test_rate_meter():
    meter = fmt.RateMeter(window=10)
    assert meter.rate is None
    meter.add(0.0, 0)
    assert meter.rate is None
    meter.add(1.0, 1000)
    meter.add(2.0, 3000)
    assert meter.rate == 1500
    meter.add(2.5, 10)  # counter went back: a new phase restarts the window
    assert meter.rate is None
    for t in range(3, 30):
        meter.add(float(t), (t - 2.5) * 100)
    assert meter.rate == pytest.approx(100)


def test_plain_progress_prints_at_most_once_a_second_plus_a_final_line():
    out = io.StringIO()
    clock = iter([0.0, 0.3, 0.6, 1.1, 1.5, 1.6, 1.7]).__next__
    progress = output.PlainProgress(out, interval=1.0, clock=clock)
    for current in (0, 300, 600, 1100, 1500):
        progress.update("tracks", current, 2000)
    progress.finish()
    progress.finish()  # nothing new: nothing more
    assert out.getvalue().splitlines() == [
        "tracks 0/2,000 (0%)",
        "tracks 1,100/2,000 (55%) 1,000/s ETA 1s",
        "tracks 1,500/2,000 (75%) 1,000/s ETA 1s",
    ]


def test_event_summaries():
    assert fmt.event_summary("sync.started", job(state="running")) == "job 7 full (manual)"
    assert fmt.event_summary("sync.progress", job(state="running", current=50)) == (
        "job 7 tracks 50/100 (50%)")
    assert fmt.event_summary("sync.finished", job()) == "job 7 succeeded +10 ~2 -1 in 3.0s"
    assert fmt.event_summary("sync.finished", job(state="failed", error="boom")).startswith(
        "job 7 failed: boom")
    assert fmt.event_summary("library.changed", {"generation": 4, "added": 1, "updated": 0,
                                                 "removed": 2}) == "generation 4: +1 ~0 -2"
    assert fmt.event_summary("something.new", {"a": 1}) == '{"a":1}'


# -- tables ----------------------------------------------------------------------

TRACKS = [
    {"rating_key": str(i), "title": f"[Live] Song number {i} with a long, long, long title",
     "artist": "The Extraordinarily Long Named Orchestra", "album": f"Album {i}",
     "year": 1990 + i, "genres": ["Rock", "Pop", "Electronic"], "user_rating": 7,
     "duration_ms": 200_000, "is_live": i == 1}
    for i in range(3)
]


def render(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)  # a file: not a terminal
    console.print(output.fit(renderable, console))
    return console.file.getvalue()


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_tracks_table_fits_the_width_and_has_no_escape_codes(width):
    text = render(output.tracks_table(TRACKS), width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert "\x1b" not in text
    assert lines[0].split() == ["Artist", "Album", "Title", "Year", "Genres", "Rating", "Time", "Live"]
    assert "[Live] S" in text  # never read as markup
    assert "3:20" in text and "1990" in text and "★★★½☆" in text
    assert sum("live" in line.split() for line in lines) == 1


def test_tracks_table_truncates_with_an_ellipsis_when_narrow():
    text = render(output.tracks_table(TRACKS), 80)
    assert "…" in text
    wide = render(output.tracks_table(TRACKS), 250)
    assert "…" not in wide and "The Extraordinarily Long Named Orchestra" in wide


def test_share_gives_small_columns_what_they_need():
    assert output.share(50, [(8, 3, 5), (100, 4, 5), (100, 3, 5)]) == [8, 24, 18]
    assert output.share(100, [(10, 1, 1), (20, 1, 1)]) == [10, 20]
    assert output.share(4, [(10, 1, 3), (10, 1, 3)]) == [3, 3]


def test_jobs_table():
    text = render(output.jobs_table([job(), job(job_id=6, state="failed", error="Plex said no",
                                              added=None)], NOW), 100)
    assert "succeeded" in text and "+10 ~2 -1" in text and "Plex said no" in text
    assert all(len(line) <= 100 for line in text.splitlines())
    header = render(output.jobs_table([job()], NOW), 80).splitlines()[0].split()
    assert header == ["Job", "State", "Mode", "Trigger", "Started", "Duration", "Changes"]


def test_stats_lines():
    lines = output.stats_lines({
        "track_count": 18432, "artist_count": 1000, "album_count": 2000,
        "total_duration_ms": 4 * 3_600_000, "live_count": 12,
        "genres": [{"name": "Rock", "count": 5000}, {"name": "Pop", "count": 300}],
        "decades": [{"decade": "1990s", "count": 5}]})
    assert lines[:4] == ["Tracks:   18,432 (12 live)", "Artists:  1,000", "Albums:   2,000",
                         "Duration: 4 hours 0 minutes"]
    assert lines[4] == "Top genres:"
    assert re.fullmatch(r"  Rock +5,000", lines[5])
    assert "Decades:" in lines and re.fullmatch(r"  1990s +5", lines[-1])
