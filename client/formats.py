"""Output formats for scripts and people (pure): ``--format table|tsv|json|TEMPLATE``.

* ``table``: the rich table, fitted to the terminal (the default on a terminal).
* ``tsv``: whole cells, tab-separated, with a header line (the default when stdout
  is not a terminal, as ``systemctl`` and ``mpc`` do). A tab, newline or carriage
  return inside a cell becomes a space, a backslash stays as it is.
* ``json``: the raw JSON result (``--json`` is short for it).
* anything with a ``{field}`` in it: a template filled once per row (track, job,
  event) or once for a result that is not a list, like ``mpc --format``.
  ``{plex[url]}`` reaches into objects, lists print comma-separated, absent
  fields and nulls print empty; ``\\t``, ``\\n`` and ``\\\\`` are escapes.

Symbols: ★ ½ ☆ · and box drawing need a UTF-8 locale; :func:`locale_is_utf8`
says whether the user's locale is one (Python itself may have coerced a C locale
to UTF-8, so ``sys.stdout.encoding`` cannot tell).
"""

from __future__ import annotations

import json
import string
from typing import Any, Iterable, Mapping, Sequence

from . import fmt
from .errors import UsageError

NAMED = ("table", "tsv", "json")


def choose(requested: str | None, json_flag: bool, isatty: bool) -> str:
    """The format to use: ``--json`` wins, then ``--format``, else table on a terminal, tsv otherwise."""
    if json_flag:
        return "json"
    if requested:
        return requested
    return "table" if isatty else "tsv"


def check(value: str) -> str:
    """argparse type for ``--format``: a named format or a template with a field."""
    if value in NAMED:
        return value
    template = unescape(value)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise UsageError(f"--format: bad template {value!r}: {exc}") from None
    if not fields:
        raise UsageError(f"--format: {value!r} is neither table, tsv, json nor a template with a {{field}}")
    if any(name == "" or name.isdigit() for name in fields):
        raise UsageError("--format: template fields need names, like {artist}")
    return value


def is_template(format_: str) -> bool:
    return format_ not in NAMED


def unescape(template: str) -> str:
    out, i = [], 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and i + 1 < len(template) and template[i + 1] in "tn\\":
            out.append({"t": "\t", "n": "\n", "\\": "\\"}[template[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Fields(dict):
    """Template values: missing keys are empty; lists join with ", "; None is empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(_value(v)) for v in value)
    if isinstance(value, dict):
        return _Fields({k: _value(v) for k, v in value.items()})
    return value


class _Formatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence, kwargs: Mapping) -> Any:
        first, rest = field_name.partition("[")[0], field_name[len(field_name.partition("[")[0]):]
        if "." in first:
            raise UsageError(f"--format: use {{a[b]}} rather than {{{field_name}}}")
        obj: Any = kwargs[first]
        for part in rest.split("[")[1:]:
            key = part.rstrip("]")
            obj = obj[key] if isinstance(obj, dict) else ""
        return obj, first


def render_template(template: str, row: Mapping[str, Any]) -> str:
    """One row through a ``{field}`` template (see the module doc)."""
    values = _Fields({k: _value(v) for k, v in row.items()})
    try:
        return _Formatter().vformat(unescape(template), (), values)
    except (ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"--format: cannot fill {template!r}: {exc}") from None


def tsv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Lines of tab-separated values: the header, then one line per row."""
    lines = ["\t".join(tsv_cell(h) for h in header)]
    lines += ["\t".join(tsv_cell(c) for c in row) for row in rows]
    return lines


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


# -- rows of the tables --------------------------------------------------------------

TRACK_HEADER = ("Key", "Artist", "Album", "Title", "Year", "Genres", "Rating", "Time", "Live")


def track_row(track: Mapping[str, Any]) -> list[Any]:
    """A track as TSV cells: the table's columns (rating as the number), its key first."""
    rating = track.get("user_rating")
    return [
        track.get("rating_key"), track.get("artist"), track.get("album"), track.get("title"),
        track.get("year"), ", ".join(track.get("genres") or []),
        "" if rating is None else f"{rating:g}" if isinstance(rating, (int, float)) else rating,
        fmt.format_track_duration(track.get("duration_ms")),
        "live" if track.get("is_live") else "",
    ]


JOB_HEADER = ("Job", "State", "Mode", "Trigger", "Started", "Finished", "Duration", "Added",
              "Updated", "Removed", "Error")


def job_row(job: Mapping[str, Any]) -> list[Any]:
    """A sync job as TSV cells: times as the daemon's ISO 8601 UTC, counts as numbers."""
    seconds = fmt.job_seconds(dict(job))
    return [
        job.get("job_id"), job.get("state"), job.get("mode"), job.get("trigger"),
        job.get("started_at"), job.get("finished_at"),
        "" if seconds is None else f"{seconds:.1f}",
        job.get("added"), job.get("updated"), job.get("removed"), job.get("error"),
    ]


MATCH_HEADER = ("Index", "Rank", "Reference", "Score", "Key", "Artist", "Title", "Album", "Live")


def match_rows(texts: Sequence[str], matches: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """tracks.match results as TSV cells: per reference its best track (rank 0; no key
    when nothing matched), then its alternatives (rank 1, 2, ...)."""
    rows: list[list[Any]] = []
    for text, match in zip(texts, matches):
        found = [(match.get("track"), match.get("score"))]
        found += [(alt.get("track"), alt.get("score")) for alt in match.get("alternatives") or []]
        for rank, (track, score) in enumerate(found):
            track = track or {}
            rows.append([match.get("index"), rank, text, "" if score is None else f"{score:g}",
                         track.get("rating_key"), track.get("artist"), track.get("title"),
                         track.get("album"), "live" if track.get("is_live") else ""])
    return rows


# -- the locale -----------------------------------------------------------------------

_COERCED = ("C.UTF-8", "C.utf8")


def locale_is_utf8(env: Mapping[str, str]) -> bool:
    """Whether the user's locale (LC_ALL, else LC_CTYPE, else LANG) is UTF-8.

    Python coerces a C locale by setting ``LC_CTYPE=C.UTF-8`` in its own
    environment (PEP 538); that value is therefore skipped when LC_ALL is unset,
    and LANG decides. No locale at all is the C locale: ASCII.
    """
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = env.get(name)
        if not value:
            continue
        if name == "LC_CTYPE" and value in _COERCED:
            continue
        codeset = value.partition(".")[2].partition("@")[0].lower().replace("-", "")
        return codeset == "utf8"
    return False
