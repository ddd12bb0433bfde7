"""Pure text formatting for mediasagectl: numbers, ages, durations, status lines.

Nothing here does I/O or reads the clock on its own: functions that depend on
"now" take it as a parameter (``now`` defaults to the current time only at the
edges), so everything is unit-testable.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

UTC = dt.timezone.utc


# -- numbers and times -----------------------------------------------------------

def num(value: Any) -> str:
    """``18432`` → ``18,432``; ``None`` → ``?``."""
    if value is None:
        return "?"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{num(count)} {word if count == 1 else (words or word + 's')}"


def parse_time(value: Any) -> dt.datetime | None:
    """ISO 8601 (``2026-02-05T10:30:00Z``) → aware UTC datetime; anything else → None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def iso(moment: dt.datetime) -> str:
    """Aware datetime → the wire format ``2026-02-05T10:30:00Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


_AGE_UNITS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (7 * 86400, "week"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
    (1, "second"),
)


def humanize_age(moment: dt.datetime | str | None, now: dt.datetime) -> str:
    """``2 hours ago``, ``just now``, ``in 5 minutes``; ``never`` for None.

    Uses the largest whole unit (floor), like ``git log --date=relative``.
    A moment a few seconds in the future (clock skew) is still ``just now``.
    """
    if isinstance(moment, str) or moment is None:
        moment = parse_time(moment)
    if moment is None:
        return "never"
    delta = (now - moment).total_seconds()
    future = delta < 0
    seconds = abs(delta)
    if seconds < 10:
        return "just now"
    for size, unit in _AGE_UNITS:
        if seconds >= size:
            count = int(seconds // size)
            text = plural(count, unit)
            return f"in {text}" if future else f"{text} ago"
    return "just now"  # pragma: no cover - unreachable (seconds >= 10)


def format_seconds(seconds: float | None) -> str:
    """A short elapsed time: ``0.4s``, ``3.2s``, ``59s``, ``2m 05s``, ``1h 02m``, ``3d 04h``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{int(seconds)}s"
    whole = int(round(seconds))
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_eta(seconds: float | None) -> str:
    """Remaining time for progress output: whole seconds, ``1s`` at least."""
    if seconds is None or seconds != seconds or seconds < 0 or math.isinf(seconds):
        return "?"
    if seconds < 60:
        return f"{math.ceil(seconds)}s"
    return format_seconds(seconds)


def format_track_duration(ms: Any) -> str:
    """Track length ``m:ss`` (``h:mm:ss`` from an hour); ``""`` when unknown."""
    if not isinstance(ms, (int, float)) or ms < 0:
        return ""
    total = int(round(ms / 1000))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def humanize_total_duration(ms: Any) -> str:
    """A library's total playing time: ``52 days 3 hours``, ``4 hours 12 minutes``, ``0 minutes``."""
    if not isinstance(ms, (int, float)) or ms < 0:
        return "?"
    minutes_total = int(ms // 60000)
    days, rest = divmod(minutes_total, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{plural(days, 'day')} {plural(hours, 'hour')}"
    if hours:
        return f"{plural(hours, 'hour')} {plural(minutes, 'minute')}"
    if minutes_total == 0 and ms > 0:
        return f"{plural(int(ms // 1000), 'second')}"
    return plural(minutes, "minute")


def stars(rating: Any) -> str:
    """Plex user rating 0–10 → five stars (two points each, a half for odd): 7 → ``★★★½☆``."""
    if not isinstance(rating, (int, float)) or isinstance(rating, bool):
        return ""
    rating = max(0.0, min(10.0, float(rating)))
    halves = int(round(rating))          # 0..10 half-stars
    full, half = divmod(halves, 2)
    return "★" * full + ("½" if half else "") + "☆" * (5 - full - half)


def rating_text(rating: Any, unicode_ok: bool = True) -> str:
    """Stars when the output can show them, else the number (``7/10``)."""
    if not isinstance(rating, (int, float)) or isinstance(rating, bool):
        return ""
    if unicode_ok:
        return stars(rating)
    return f"{rating:g}/10"


# -- status ----------------------------------------------------------------------

def status_lines(status: dict, now: dt.datetime) -> list[str]:
    """The human form of a ``library.status`` result (CONTRACT §4 ``status``).

    First line: the library and what is happening to it, e.g.
    ``Library: 18,432 tracks · Synced 2 hours ago``, ``Not synced``,
    ``Syncing 5,000 / 18,432`` (prefixed by the library part when a previous
    library exists), ``Sync failed: <why>``. Second line: Plex reachability.
    Then, when Plex answers as another server than the cached library's, a line
    saying so; last (only when known): when the next scheduled sync is due, or --
    when a sync is owed -- when it is retried and why.
    """
    parts: list[str] = []
    synced_at = status.get("synced_at")
    if synced_at:
        library = f"Library: {plural(status.get('track_count') or 0, 'track')} · Synced {humanize_age(synced_at, now)}"
        if status.get("stale"):
            library += " (stale)"
        parts.append(library)
    if status.get("is_syncing"):
        parts.append(syncing_text(status.get("sync_progress")))
    elif status.get("error"):
        parts.append(f"Sync failed: {status['error']}")
    if not parts:
        parts.append("Not synced")
    lines = [" · ".join(parts)]
    lines.append(f"Plex: {plex_reachability(status.get('plex_reachable'))}")
    if status.get("server_changed"):
        lines.append("Server changed: Plex answers as another server; the old library answers until "
                     "a full sync of the new one completes")
    next_sync = parse_time(status.get("next_sync_at"))
    owed = status.get("sync_owed")
    if isinstance(owed, dict) and not status.get("is_syncing"):
        lines.append(owed_text(owed, now))
    elif next_sync is not None and not status.get("is_syncing"):
        lines.append(f"Next sync: {humanize_age(next_sync, now)}")
    return lines


def owed_text(owed: dict, now: dt.datetime) -> str:
    """The retry of an owed sync: ``Retrying in 30 seconds: <why>``, or why it waits."""
    retry_at = parse_time(owed.get("retry_at"))
    soon = retry_at is None or (retry_at - now).total_seconds() < 10
    when = "in a few seconds" if soon else humanize_age(retry_at, now)
    if owed.get("token_rejected"):
        then = f"next try {when}, or" if retry_at is not None else "next try"
        return f"Plex rejected the token: {then} after a reload (SIGHUP) with a new token"
    if retry_at is None:
        return f"Sync owed: {owed.get('reason')}"
    return f"Retrying {when}: {owed.get('reason')}"


def syncing_text(progress: dict | None) -> str:
    """``Syncing 5,000 / 18,432``, ``Syncing 5,000`` (total unknown) or ``Syncing``."""
    progress = progress or {}
    current, total = progress.get("current"), progress.get("total")
    if isinstance(total, int) and total > 0:
        return f"Syncing {num(current or 0)} / {num(total)}"
    if current:
        return f"Syncing {num(current)}"
    return "Syncing"


def plex_reachability(value: Any) -> str:
    if value is True:
        return "reachable"
    if value is False:
        return "unreachable"
    return "unknown"


# -- jobs and events -------------------------------------------------------------

def job_seconds(job: dict, now: dt.datetime | None = None) -> float | None:
    """Duration of a job from its timestamps (up to ``now`` while it runs)."""
    started = parse_time(job.get("started_at"))
    finished = parse_time(job.get("finished_at")) or (now if job.get("state") == "running" else None)
    if started is None or finished is None:
        return None
    return max(0.0, (finished - started).total_seconds())


def changes(added: Any, updated: Any, removed: Any) -> str:
    """``+10 ~2 -1`` (unknown counts as 0)."""
    return f"+{num(added or 0)} ~{num(updated or 0)} -{num(removed or 0)}"


def sync_result_line(job: dict, seconds: float | None = None) -> str:
    """The last line of ``sync --wait``: ``Sync succeeded: +A ~U -R in 3.2s`` or a failure."""
    state = job.get("state")
    if seconds is None:
        seconds = job_seconds(job)
    took = f" in {format_seconds(seconds)}" if seconds is not None else ""
    if state == "succeeded":
        return f"Sync succeeded: {changes(job.get('added'), job.get('updated'), job.get('removed'))}{took}"
    if state == "cancelled":
        return f"Sync cancelled (job {job.get('job_id')})"
    if state == "failed":
        return f"Sync failed: {job.get('error') or 'unknown error'}"
    return f"Sync {state or 'ended'} (job {job.get('job_id')})"


def progress_line(phase: Any, current: Any, total: Any, rate: float | None) -> str:
    """One plain progress line: ``tracks 5,000/18,432 (27%) 9,800/s ETA 1s``."""
    known_total = isinstance(total, int) and total > 0
    if not known_total and not current:
        return str(phase or "sync")  # e.g. "starting": nothing counted yet
    text = f"{phase or 'sync'} {num(current or 0)}"
    if known_total:
        pct = int(100 * (current or 0) / total)
        text += f"/{num(total)} ({pct}%)"
    if rate is not None and rate > 0:
        text += f" {num(int(round(rate)))}/s"
        if isinstance(total, int) and total > 0:
            text += f" ETA {format_eta(max(0, total - (current or 0)) / rate)}"
    return text


def event_summary(method: str, params: Any) -> str:
    """One-line summary of a notification for ``watch``."""
    p = params if isinstance(params, dict) else {}
    if method == "sync.started":
        return f"job {p.get('job_id')} {p.get('mode') or ''} ({p.get('trigger') or '?'})".replace("  ", " ")
    if method == "sync.progress":
        return f"job {p.get('job_id')} " + progress_line(p.get("phase"), p.get("current"), p.get("total"), None)
    if method == "sync.finished":
        state = p.get("state")
        text = f"job {p.get('job_id')} {state}"
        if state == "succeeded":
            text += f" {changes(p.get('added'), p.get('updated'), p.get('removed'))}"
        elif state == "failed" and p.get("error"):
            text += f": {p['error']}"
        seconds = job_seconds(p)
        if seconds is not None:
            text += f" in {format_seconds(seconds)}"
        return text
    if method == "library.changed":
        return f"generation {p.get('generation')}: {changes(p.get('added'), p.get('updated'), p.get('removed'))}"
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


class RateMeter:
    """Items per second over a sliding window of (time, count) samples.

    Samples are fed explicitly with their time, so this is deterministic to test.
    A drop in the count (a new phase) restarts the window.
    """

    def __init__(self, window: float = 10.0):
        self.window = window
        self._samples: list[tuple[float, float]] = []

    def reset(self) -> None:
        self._samples.clear()

    def add(self, t: float, count: float) -> None:
        if self._samples and count < self._samples[-1][1]:
            self._samples.clear()
        self._samples.append((t, count))
        while len(self._samples) > 2 and t - self._samples[1][0] >= self.window:
            self._samples.pop(0)

    @property
    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        if t1 <= t0 or c1 <= c0:
            return None if t1 <= t0 else 0.0
        return (c1 - c0) / (t1 - t0)
