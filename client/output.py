"""Rendering with rich: tables of tracks and jobs, stats, and sync progress.

Every cell is a :class:`rich.text.Text` (never markup), so a title like
``[Live] Song`` prints verbatim. Rich writes no colour codes when stdout is not a
terminal (and honours ``NO_COLOR``); tables take the terminal width (or
``$COLUMNS``, 80 when unknown) and truncate long cells with an ellipsis.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import Any, Callable, TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from . import fmt


def make_console(file: TextIO | None = None) -> Console:
    return Console(file=file or sys.stdout, highlight=False, soft_wrap=False, emoji=False)


def unicode_ok(stream: TextIO) -> bool:
    """Whether ``stream`` can carry the symbols we like (★ · …)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "★½☆·…".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# box.SIMPLE_HEAD with "-" for its one rule: for a locale that is not UTF-8.
ASCII_SIMPLE_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def print_table(console: Console, table: Table, symbols: bool = True) -> None:
    """Fit ``table`` to the console and print it; with ``symbols`` False, in ASCII
    (a ``-`` rule under the header, ``~`` for the ellipsis of a cut cell)."""
    table = fit(table, console)
    if symbols:
        console.print(table)
        return
    table.box = ASCII_SIMPLE_HEAD
    with console.capture() as capture:
        console.print(table)
    console.file.write(capture.get().replace("\u2026", "~"))
    console.file.flush()


def _cell(value: Any, style: str | None = None) -> Text:
    text = "" if value is None else str(value)
    return Text(text, style=style or "", no_wrap=True, overflow="ellipsis")


def _table() -> Table:
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                 header_style="bold")


def fit(table: Table, console: Console) -> Table:
    """Make ``table`` fit the console width.

    Columns with a ``ratio`` are the flexible ones: when everything does not fit,
    they share the room left by the others in proportion to their ratios, but a
    column never gets more than its widest cell needs (the rest goes to the
    others); cells that do not fit end in an ellipsis. Rich's own shrinking would
    squeeze all columns alike and ignore the ratios.
    """
    natural = console.measure(table, options=console.options.update_width(1_000_000)).maximum
    if natural <= console.width:
        return table
    flex = [c for c in table.columns if c.ratio]
    if not flex:
        return table
    needs = {id(c): _column_need(c) for c in flex}
    room = console.width - (natural - sum(needs.values()))
    widths = share(room, [(needs[id(c)], c.ratio or 1, c.min_width or 1) for c in flex])
    for column, width in zip(flex, widths):
        column.width = width
        column.ratio = None
    return table


def _column_need(column: Any) -> int:
    cells = [column.header, *column._cells]
    return max((Text(c).cell_len if isinstance(c, str) else getattr(c, "cell_len", 0)) for c in cells)


def share(room: int, columns: list[tuple[int, int, int]]) -> list[int]:
    """Split ``room`` cells among columns ``(need, ratio, minimum)`` (pure).

    Water-filling: a column whose need is below its fair share (by ratio) gets its
    need and drops out; the others split what remains by ratio, never below their
    minimum. The result may exceed ``room`` only when the minimums do.
    """
    widths = [0] * len(columns)
    open_ = list(range(len(columns)))
    left = room
    while open_:
        total_ratio = sum(columns[i][1] for i in open_)
        fair = {i: left * columns[i][1] / total_ratio for i in open_}
        done = [i for i in open_ if columns[i][0] <= fair[i]]          # needs less: gets its need
        if not done:
            done = [i for i in open_ if fair[i] < columns[i][2]]     # starved: gets its minimum
            for i in done:
                widths[i] = columns[i][2]
        else:
            for i in done:
                widths[i] = columns[i][0]
        if not done:
            break
        for i in done:
            left -= widths[i]
            open_.remove(i)
    if open_:
        total_ratio = sum(columns[i][1] for i in open_)
        given = 0
        for n, i in enumerate(open_):
            if n == len(open_) - 1:
                portion = left - given
            else:
                portion = int(left * columns[i][1] / total_ratio)
            given += portion
            widths[i] = max(columns[i][2], portion)
    return widths


def tracks_table(tracks: list[dict], symbols: bool = True) -> Table:
    """artist, album, title, year, genres, rating, duration, live — one row per track."""
    table = _table()
    table.add_column("Artist", min_width=6, ratio=3)
    table.add_column("Album", min_width=5, ratio=3)
    table.add_column("Title", min_width=5, ratio=4)
    table.add_column("Year", justify="right", no_wrap=True)
    table.add_column("Genres", min_width=6, ratio=2)
    table.add_column("Rating", no_wrap=True)
    table.add_column("Time", justify="right", no_wrap=True)
    table.add_column("Live", no_wrap=True)
    for track in tracks:
        table.add_row(
            _cell(track.get("artist")),
            _cell(track.get("album")),
            _cell(track.get("title")),
            _cell(track.get("year") if track.get("year") is not None else ""),
            _cell(", ".join(track.get("genres") or [])),
            _cell(fmt.rating_text(track.get("user_rating"), symbols)),
            _cell(fmt.format_track_duration(track.get("duration_ms"))),
            _cell("live" if track.get("is_live") else ""),
        )
    return table


_STATE_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def local_time(value: Any) -> str:
    moment = fmt.parse_time(value)
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def jobs_table(jobs: list[dict], now: dt.datetime) -> Table:
    """job, state, mode, trigger, started (local time), duration, changes, error (if any)."""
    table = _table()
    table.add_column("Job", justify="right", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Mode", no_wrap=True)
    table.add_column("Trigger", no_wrap=True)
    table.add_column("Started", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    table.add_column("Changes", no_wrap=True)
    errors = any(job.get("error") for job in jobs)
    if errors:  # only when there is one to show: leaves the others room
        table.add_column("Error", min_width=5, ratio=1)
    for job in jobs:
        state = job.get("state") or ""
        done = state in ("succeeded",)
        cells = [
            _cell(job.get("job_id")),
            _cell(state, _STATE_STYLES.get(state)),
            _cell(job.get("mode")),
            _cell(job.get("trigger")),
            _cell(local_time(job.get("started_at"))),
            _cell(fmt.format_seconds(fmt.job_seconds(job, now)) if job.get("started_at") else ""),
            _cell(fmt.changes(job.get("added"), job.get("updated"), job.get("removed")) if done else ""),
        ]
        if errors:
            cells.append(_cell(job.get("error") or ""))
        table.add_row(*cells)
    return table


def stats_lines(stats: dict, top_genres: int = 10) -> list[str]:
    """The human form of a ``library.stats`` result."""
    lines = [
        f"Tracks:   {fmt.num(stats.get('track_count'))}"
        + (f" ({fmt.num(stats.get('live_count'))} live)" if stats.get("live_count") else ""),
        f"Artists:  {fmt.num(stats.get('artist_count'))}",
        f"Albums:   {fmt.num(stats.get('album_count'))}",
        f"Duration: {fmt.humanize_total_duration(stats.get('total_duration_ms'))}",
    ]
    genres = stats.get("genres") or []
    if genres:
        shown = genres[:top_genres]
        width = max(len(str(g.get("name"))) for g in shown)
        more = f" (of {fmt.num(len(genres))})" if len(genres) > len(shown) else ""
        lines.append(f"Top genres{more}:")
        lines += [f"  {str(g.get('name')):<{width}}  {fmt.num(g.get('count')):>8}" for g in shown]
    decades = stats.get("decades") or []
    if decades:
        lines.append("Decades:")
        width = max(len(str(d.get("decade"))) for d in decades)
        lines += [f"  {str(d.get('decade')):<{width}}  {fmt.num(d.get('count')):>8}" for d in decades]
    return lines


# -- sync progress ---------------------------------------------------------------

class PlainProgress:
    """Progress for a pipe or file: one line at most every ``interval`` seconds,
    plus the latest state once more at the end if it was not printed yet."""

    def __init__(self, out: TextIO, interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.out = out
        self.interval = interval
        self.clock = clock
        self.meter = fmt.RateMeter()
        self._phase: Any = None
        self._last_printed_at: float | None = None
        self._last_line: str | None = None
        self._printed_line: str | None = None

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, phase: Any, current: Any, total: Any) -> None:
        now = self.clock()
        if phase != self._phase:
            self._phase = phase
            self.meter.reset()
        self.meter.add(now, current or 0)
        self._last_line = fmt.progress_line(phase, current, total, self.meter.rate)
        if self._last_printed_at is None or now - self._last_printed_at >= self.interval:
            self._emit(now)

    def finish(self) -> None:
        if self._last_line is not None and self._last_line != self._printed_line:
            self._emit(self.clock())

    def _emit(self, now: float) -> None:
        self.out.write(self._last_line + "\n")
        self.out.flush()
        self._printed_line = self._last_line
        self._last_printed_at = now


class RichProgress:
    """A live progress bar on a terminal: phase, bar, current/total, rate, ETA."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.meter = fmt.RateMeter()
        self._phase: Any = None
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            transient=False,
            refresh_per_second=8,
        )
        self.task = self.progress.add_task("starting", total=None, counts="", rate="", eta="")

    def __enter__(self) -> "RichProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, phase: Any, current: Any, total: Any) -> None:
        if phase != self._phase:
            self._phase = phase
            self.meter.reset()
        current = current or 0
        self.meter.add(self.clock(), current)
        rate = self.meter.rate
        known_total = total if isinstance(total, int) and total > 0 else None
        counts = f"{fmt.num(current)}/{fmt.num(known_total)}" if known_total else fmt.num(current)
        eta = ""
        if known_total and rate:
            eta = "ETA " + fmt.format_eta(max(0, known_total - current) / rate)
        self.progress.update(
            self.task,
            description=str(phase or "sync"),
            total=known_total,
            completed=current,
            counts=counts,
            rate=f"{fmt.num(int(round(rate)))}/s" if rate else "",
            eta=eta,
        )

    def finish(self) -> None:
        self.progress.refresh()
