"""``--format``: choosing, TSV cells, templates, and telling a UTF-8 locale (pure)."""

from __future__ import annotations

import pytest

from mediasagectl import formats
from mediasagectl.cli import parse_args
from mediasagectl.errors import UsageError


def test_choose():
    assert formats.choose(None, False, isatty=True) == "table"
    assert formats.choose(None, False, isatty=False) == "tsv"
    assert formats.choose("table", False, isatty=False) == "table"
    assert formats.choose("tsv", True, isatty=True) == "json"


def test_tsv_keeps_whole_cells_on_one_line():
    assert formats.tsv(["A", "B"], [["x\ty", "line\nbreak\r"], [None, 3]]) == [
        "A\tB", "x y\tline break ", "\t3"]


def test_track_and_job_rows():
    track = {"rating_key": "7", "artist": "A", "album": "B", "title": "T", "year": None,
             "genres": ["Rock", "Pop"], "user_rating": 7.0, "duration_ms": 200000, "is_live": True}
    assert formats.track_row(track) == ["7", "A", "B", "T", None, "Rock, Pop", "7", "3:20", "live"]
    job = {"job_id": 3, "state": "succeeded", "mode": "full", "trigger": "manual",
           "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:02Z",
           "added": 5, "updated": 0, "removed": 1, "error": None}
    assert formats.job_row(job) == [3, "succeeded", "full", "manual", "2026-01-01T00:00:00Z",
                                    "2026-01-01T00:00:02Z", "2.0", 5, 0, 1, None]


def test_templates():
    row = {"artist": "A", "genres": ["Rock", "Pop"], "year": None, "live": True,
           "plex": {"url": "http://p", "library": "Music"}, "n": 5}
    render = formats.render_template
    assert render("{artist} - {genres}", row) == "A - Rock, Pop"
    assert render("[{year}] {missing}|{live}", row) == "[] |true"
    assert render("{plex[library]}\\t{plex[nope]}\\n{n:>3}\\\\", row) == "Music\t\n  5\\"
    with pytest.raises(UsageError):
        render("{n:d} {artist:d}", row)


@pytest.mark.parametrize("value", ["table", "tsv", "json", "{title}", "x {a[b]} y"])
def test_check_accepts(value):
    assert formats.check(value) == value


@pytest.mark.parametrize("value", ["yaml", "no fields", "{}", "{0}", "{unclosed"])
def test_check_refuses(value):
    with pytest.raises(UsageError):
        formats.check(value)


def test_bad_format_is_a_usage_error():
    with pytest.raises(SystemExit) as exc:
        parse_args(["--format", "yaml", "status"])
    assert exc.value.code == 2


@pytest.mark.parametrize("env, utf8", [
    ({"LANG": "en_US.UTF-8"}, True), ({"LANG": "de_DE.utf8"}, True), ({"LANG": "C"}, False),
    ({}, False), ({"LC_ALL": "POSIX", "LANG": "en_US.UTF-8"}, False),
    ({"LC_CTYPE": "en_GB.UTF-8", "LANG": "C"}, True),
    ({"LC_CTYPE": "C.UTF-8", "LANG": "C"}, False),  # what Python's C-locale coercion leaves
    ({"LC_CTYPE": "C.UTF-8"}, False), ({"LC_ALL": "C.UTF-8"}, True),
    ({"LANG": "en_US.ISO-8859-1"}, False), ({"LANG": "sr_RS.UTF-8@latin"}, True),
])
def test_locale_is_utf8(env, utf8):
    assert formats.locale_is_utf8(env) is utf8


def test_match_rows_list_the_best_then_the_alternatives():
    hit = {"rating_key": "1", "artist": "A", "title": "T", "album": "B", "is_live": True}
    alt = {"rating_key": "2", "artist": "A", "title": "T2", "album": "B"}
    matches = [{"index": 0, "track": hit, "score": 96.5, "alternatives": [{"track": alt, "score": 60}]},
               {"index": 1, "track": None, "score": 12, "alternatives": []}]
    assert formats.match_rows(["a - t", "x - y"], matches) == [
        [0, 0, "a - t", "96.5", "1", "A", "T", "B", "live"],
        [0, 1, "a - t", "60", "2", "A", "T2", "B", ""],
        [1, 0, "x - y", "12", None, None, None, None, ""]]
