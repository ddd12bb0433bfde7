"""mediasagectl's commands: one ``cmd_*`` function per command (CONTRACT §4).

Each talks to the daemon through the :class:`Context`, prints, and returns an
:class:`ExitCode` or raises a typed error from :mod:`mediasagectl.errors`;
:func:`mediasagectl.cli.main` turns errors into messages and exit codes.
``sync --wait`` follows the job by events and/or polling (``_wait_for_job``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO

from . import fmt, formats
from .errors import DaemonError
from .exitcodes import ExitCode
from .params import ALL_EVENTS, SYNC_EVENTS, request_for
from .rpc import RpcClient

PROG = "mediasagectl"
POLL_INTERVAL = 0.25       # sync --wait without events: ~4 polls per second
SAFETY_POLL_INTERVAL = 1.0  # sync --wait with events: still poll now and then


# -- commands --------------------------------------------------------------------

@dataclass
class Context:
    rpc: RpcClient
    out: TextIO
    err: TextIO
    format: str           # table, tsv, json or a {field} template (see formats.choose)
    socket: str
    symbols: bool = True  # ★ · and box drawing (a UTF-8 locale); ASCII stand-ins otherwise
    clock: Callable[[], float] = time.monotonic

    @property
    def json(self) -> bool:
        return self.format == "json"

    @property
    def template(self) -> str | None:
        return self.format if formats.is_template(self.format) else None

    def rows(self, rows: list[dict]) -> None:
        """Each row through the template."""
        for row in rows:
            self.line(formats.render_template(self.format, row))

    def result(self, value: Any) -> bool:
        """Print ``value`` as JSON or through the template; False when text is wanted instead."""
        if self.json:
            self.dump(value)
        elif self.template:
            self.rows(value if isinstance(value, list) else [value])
        else:
            return False
        return True

    def note(self, text: str) -> None:
        """A line for people that scripts reading stdout must not get (tsv, templates)."""
        if self.format == "table":
            self.line(text)
        else:
            self.err.write(text + "\n")
            self.err.flush()

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def dump(self, value: Any, compact: bool = False) -> None:
        if compact:
            self.line(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        else:
            self.line(json.dumps(value, ensure_ascii=False, indent=2))

    def console(self):
        from .output import make_console

        return make_console(self.out)


def cmd_status(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    status = ctx.rpc.call(*request_for(ns))
    if not ctx.result(status):
        for text in fmt.status_lines(status, fmt.utcnow()):
            ctx.line(text if ctx.symbols else text.replace(" · ", " - "))
    return ExitCode.OK


def cmd_sync(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    method, params = request_for(ns)
    if not ns.wait:
        result = ctx.rpc.call(method, params)
        if ctx.result(result):
            pass
        elif result.get("started"):
            ctx.line(f"Sync started (job {result.get('job_id')})")
        else:
            ctx.line(f"Sync already running (job {result.get('job_id')})")
        return ExitCode.OK

    # Subscribe before starting so that not even a quick sync's end is missed.
    events = _subscribe(ctx.rpc, SYNC_EVENTS)
    t0 = ctx.clock()
    result = ctx.rpc.call(method, params)
    job_id = result.get("job_id")
    if not result.get("started") and ctx.format in ("table", "tsv"):
        ctx.line(f"Sync already running (job {job_id}); waiting for it")
    try:
        job = _wait_for_job(ctx, job_id, events)
    except KeyboardInterrupt:
        ctx.err.write(f"\n{PROG}: stopped waiting; sync job {job_id} goes on "
                      f"(`{PROG} cancel` stops it)\n")
        raise
    elapsed = ctx.clock() - t0 if result.get("started") else None
    if not ctx.result(job):
        ctx.line(fmt.sync_result_line(job, elapsed))
    return ExitCode.OK if job.get("state") == "succeeded" else ExitCode.ERROR


def _subscribe(rpc: RpcClient, events: list[str]) -> bool:
    """Subscribe to ``events``; False (poll instead) if the daemon will not."""
    try:
        rpc.call("events.subscribe", {"events": events})
    except DaemonError:
        return False
    return True


def _progress_reporter(ctx: Context):
    from . import output

    if ctx.json or ctx.template:
        return _NoProgress()
    if ctx.out.isatty():
        return output.RichProgress(ctx.console(), clock=ctx.clock)
    return output.PlainProgress(ctx.out, clock=ctx.clock)


class _NoProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, phase: Any, current: Any, total: Any) -> None:
        pass

    def finish(self) -> None:
        pass


def _wait_for_job(ctx: Context, job_id: Any, events: bool) -> dict:
    """Follow job ``job_id`` until it is no longer running; return its final job object.

    With events, progress comes from ``sync.progress`` notifications and
    ``sync.status`` is still polled once a second as a safety net (a lost
    notification cannot hang us); without, ``sync.status`` is polled ~4×/s.
    """
    interval = SAFETY_POLL_INTERVAL if events else POLL_INTERVAL
    status_params = {"job_id": job_id} if job_id is not None else {}
    with _progress_reporter(ctx) as progress:
        next_poll = ctx.clock()
        while True:
            if ctx.clock() >= next_poll:
                job = ctx.rpc.call("sync.status", status_params)
                next_poll = ctx.clock() + interval
                if job.get("state") != "running":
                    _final_progress(progress, job)
                    return job
                progress.update(job.get("phase"), job.get("current"), job.get("total"))
            note = ctx.rpc.next_notification(max(0.0, next_poll - ctx.clock()))
            if note is None:
                continue
            params = note.get("params")
            if not isinstance(params, dict) or params.get("job_id") != job_id:
                continue
            if note["method"] == "sync.finished" or params.get("state") not in (None, "running"):
                try:  # the daemon's record is authoritative; the event is the fallback
                    final = ctx.rpc.call("sync.status", status_params)
                except DaemonError:
                    final = params
                if final.get("state") in (None, "running", "idle"):
                    final = params
                _final_progress(progress, final)
                return final
            progress.update(params.get("phase"), params.get("current"), params.get("total"))


def _final_progress(progress: Any, job: dict) -> None:
    if job.get("phase") is not None or job.get("current"):
        progress.update(job.get("phase"), job.get("current"), job.get("total"))
    progress.finish()


def cmd_cancel(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if ctx.result(result):
        pass
    elif result.get("cancelled"):
        ctx.line(f"Cancelled job {result.get('job_id')}")
    else:
        ctx.line("No sync running")
    return ExitCode.OK


def cmd_history(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    from .output import jobs_table, print_table

    result = ctx.rpc.call(*request_for(ns))
    jobs = result.get("jobs") or []
    if ctx.json:
        ctx.dump(result)
    elif ctx.template:
        ctx.rows(jobs)
    elif ctx.format == "tsv":
        for text in formats.tsv(formats.JOB_HEADER, map(formats.job_row, jobs)):
            ctx.line(text)
    elif not jobs:
        ctx.line("No sync jobs yet")
    else:
        print_table(ctx.console(), jobs_table(jobs, fmt.utcnow()), ctx.symbols)
    return ExitCode.OK


def _print_tracks(ctx: Context, tracks: list[dict]) -> None:
    from .output import print_table, tracks_table, unicode_ok

    if ctx.template:
        ctx.rows(tracks)
    elif ctx.format == "tsv":
        for text in formats.tsv(formats.TRACK_HEADER, map(formats.track_row, tracks)):
            ctx.line(text)
    elif tracks:
        symbols = ctx.symbols and unicode_ok(ctx.out)
        print_table(ctx.console(), tracks_table(tracks, symbols), symbols)


def cmd_query(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if ctx.json:
        ctx.dump(result)
        return ExitCode.OK
    tracks = result.get("tracks") or []
    _print_tracks(ctx, tracks)
    ctx.note(f"{fmt.num(len(tracks))} of {fmt.num(result.get('total'))}"
             + (f" (from #{fmt.num(ns.offset + 1)})" if ns.offset else ""))
    return ExitCode.OK


def cmd_get(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if ctx.json:
        ctx.dump(result)
        return ExitCode.OK
    _print_tracks(ctx, result.get("tracks") or [])
    missing = result.get("missing") or []
    if missing:
        ctx.note("missing: " + ", ".join(str(key) for key in missing))
    return ExitCode.OK


def cmd_match(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    import sys

    from . import matching
    from .output import print_table, unicode_ok

    method, params = request_for(ns)
    texts, candidates = matching.references(ns.references or sys.stdin)
    matches: list[dict] = []
    result: dict = {}
    for chunk in matching.chunks(candidates):
        result = ctx.rpc.call(method, {**params, "candidates": chunk})
        offset = len(matches)
        matches += [{**m, "index": m.get("index", 0) + offset} for m in result.get("matches") or []]
    result = {**result, "matches": matches}
    if ctx.json:
        ctx.dump(result)
    else:
        if ctx.template:
            ctx.rows([{**(m.get("track") or {}), "reference": text, "index": m.get("index"),
                       "score": m.get("score")} for text, m in zip(texts, matches)])
        elif ctx.format == "tsv":
            for text in formats.tsv(formats.MATCH_HEADER, formats.match_rows(texts, matches)):
                ctx.line(text)
        elif matches:
            symbols = ctx.symbols and unicode_ok(ctx.out)
            print_table(ctx.console(), matching.matches_table(texts, matches, symbols), symbols)
        ctx.note(matching.summary(matches))
    return ExitCode.OK if all(m.get("track") for m in matches) else ExitCode.ERROR


def cmd_stats(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    from .output import stats_lines

    result = ctx.rpc.call(*request_for(ns))
    if ctx.result(result):
        return ExitCode.OK
    for text in stats_lines(result):
        ctx.line(text)
    return ExitCode.OK


def cmd_watch(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if not ctx.json:
        names = result.get("subscribed") if isinstance(result, dict) else None
        ctx.err.write(f"Watching {', '.join(names or ALL_EVENTS)} at {ctx.socket} "
                      f"(Ctrl-C to stop)\n")
        ctx.err.flush()
    while True:
        note = ctx.rpc.next_notification(None)
        if note is None:  # pragma: no cover - no timeout given
            continue
        if ctx.json:
            ctx.dump(note, compact=True)
        elif ctx.template:
            params = note.get("params")
            ctx.rows([{**(params if isinstance(params, dict) else {"params": params}),
                       "method": note["method"]}])
        else:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            ctx.line(f"{stamp} {note['method']:<15} {fmt.event_summary(note['method'], note.get('params'))}")


def cmd_call(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if not ctx.template or not ctx.result(result):
        ctx.dump(result)
    return ExitCode.OK


def cmd_help(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    from .helptext import method_help, overview

    document = ctx.rpc.call("rpc.discover")
    if ctx.json:
        ctx.dump(document if ns.method is None
                 else next((m for m in document.get("methods") or [] if m.get("name") == ns.method),
                           None) or method_help(document, ns.method))
        return ExitCode.OK
    for text in (overview(document) if ns.method is None else method_help(document, ns.method)):
        ctx.line(text)
    return ExitCode.OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], ExitCode]] = {
    "help": cmd_help,
    "status": cmd_status,
    "sync": cmd_sync,
    "cancel": cmd_cancel,
    "history": cmd_history,
    "query": cmd_query,
    "get": cmd_get,
    "stats": cmd_stats,
    "match": cmd_match,
    "watch": cmd_watch,
    "call": cmd_call,
}
