"""mediasagectl — the thin command-line client of mediasaged (CONTRACT §4).

Layout: ``build_parser``/``parse_args`` (argparse), ``request_for`` (pure: parsed
arguments → the JSON-RPC method and params a command sends), one ``cmd_*``
function per command (talks to the daemon, prints, returns an :class:`ExitCode`
or raises a typed error from :mod:`mediasagectl.errors`), and ``main``, the only
place that turns errors into messages and exit codes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TextIO

from . import __version__, fmt
from .errors import ClientError, DaemonError, UsageError
from .exitcodes import ExitCode
from .paths import resolve_socket_path
from .rpc import RpcClient

PROG = "mediasagectl"
DEFAULT_TIMEOUT = 10.0
SYNC_EVENTS = ["sync.started", "sync.progress", "sync.finished"]
ALL_EVENTS = SYNC_EVENTS + ["library.changed"]
POLL_INTERVAL = 0.25       # sync --wait without events: ~4 polls per second
SAFETY_POLL_INTERVAL = 1.0  # sync --wait with events: still poll now and then


# -- argument parsing ------------------------------------------------------------

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _number(text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return int(value) if value.is_integer() else value


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global options; on subcommands too (``mediasagectl status --json`` works)."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("--socket", metavar="PATH", default=default(None),
                        help="daemon socket (default: $MEDIASAGE_SOCKET, else daemon.socket "
                             "of $MEDIASAGE_CONFIG or ./config.yaml, else data/mediasaged.sock)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print the raw JSON result(s) instead of text")
    parser.add_argument("--timeout", metavar="SECONDS", type=_positive_float,
                        default=default(DEFAULT_TIMEOUT),
                        help=f"seconds to wait for each call (default {DEFAULT_TIMEOUT:g})")


def _filter_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("filters (combined with AND)")
    g.add_argument("--genre", action="append", metavar="G", dest="genres",
                   help="has this genre (repeatable; any of them, see --genre-mode)")
    g.add_argument("--exclude-genre", action="append", metavar="G", dest="exclude_genres",
                   help="drop tracks with this genre (repeatable)")
    g.add_argument("--genre-mode", choices=["any", "all"], help="match any (default) or all --genre")
    g.add_argument("--decade", action="append", metavar="DECADE", dest="decades",
                   help="e.g. 1990s (repeatable)")
    g.add_argument("--year-min", type=int, metavar="Y")
    g.add_argument("--year-max", type=int, metavar="Y")
    g.add_argument("--min-rating", type=_number, metavar="R", help="user rating 0-10, at least R")
    g.add_argument("--exclude-live", action="store_true", default=None, help="drop live recordings")
    g.add_argument("--artist", metavar="A", help="exact artist or album artist (case-insensitive)")
    g.add_argument("--album", metavar="A", help="exact album (case-insensitive)")
    g.add_argument("--text", metavar="T", help="every word prefix-matches title, artist or album")
    g.add_argument("--added-after", metavar="T",
                   help="ISO 8601 time, a date (YYYY-MM-DD, UTC) or an age like 7d, 24h, 30m")
    g.add_argument("--updated-after", metavar="T", help="like --added-after")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Command-line client of mediasaged, the local Plex music library cache.",
        epilog="Exit codes: 0 ok, 1 daemon error or failed sync, 2 usage, "
               "3 daemon unreachable, 130 interrupted.",
    )
    _global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    add("status", "library and sync state, Plex reachability")

    p = add("sync", "start a sync of the library")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_const", const="full", dest="mode",
                      help="re-read the whole library")
    mode.add_argument("--incremental", action="store_const", const="incremental", dest="mode",
                      help="only what changed since the last sync")
    p.add_argument("--wait", action="store_true",
                   help="show progress until the sync ends; exit 1 if it failed")

    add("cancel", "cancel the running sync")

    p = add("history", "recent sync jobs")
    p.add_argument("--limit", type=_nonneg_int, metavar="N", help="number of jobs (daemon default 20)")

    p = add("query", "find tracks")
    _filter_options(p)
    g = p.add_argument_group("order and paging")
    g.add_argument("--sort", metavar="F",
                   help="artist (default), title, album, year, duration, rating, added, random")
    g.add_argument("--desc", action="store_true", help="descending order")
    g.add_argument("--random", action="store_true", help="random order (same as --sort random)")
    g.add_argument("--seed", type=int, metavar="N", help="reproducible random order")
    g.add_argument("--limit", type=_nonneg_int, metavar="N", help="at most N tracks (daemon default 100)")
    g.add_argument("--offset", type=_nonneg_int, metavar="N", help="skip the first N tracks")

    p = add("get", "tracks by rating key")
    p.add_argument("keys", nargs="+", metavar="KEY")

    p = add("stats", "counts, total duration, top genres and decades of matching tracks")
    _filter_options(p)

    add("watch", "print events as they arrive until interrupted")

    p = add("call", "raw JSON-RPC call; prints the JSON result")
    p.add_argument("method", metavar="METHOD")
    p.add_argument("params", nargs="*", metavar="JSON | key=value",
                   help="one JSON object/array, or key=value pairs (values parsed as JSON "
                        "when they parse, else taken as strings)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; argparse exits 2 on usage errors."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "query":
        if ns.random and ns.sort not in (None, "random"):
            parser.error("--random conflicts with --sort " + ns.sort)
        if ns.seed is not None and not (ns.random or ns.sort == "random"):
            parser.error("--seed needs --random (or --sort random)")
    if ns.command == "call":
        try:
            ns.call_params = parse_call_params(ns.params)
        except UsageError as exc:
            parser.error(f"call: {exc}")
    return ns


# -- arguments → JSON-RPC requests (pure) ----------------------------------------

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def time_arg(value: str, now: dt.datetime) -> str:
    """``7d`` → the ISO time 7 days before ``now``; ``2026-01-31`` → that day's start (UTC);
    anything else is passed on for the daemon to validate."""
    age = _AGE.match(value)
    if age:
        seconds = int(age.group(1)) * _AGE_SECONDS[age.group(2)]
        return fmt.iso(now - dt.timedelta(seconds=seconds))
    if _DATE.match(value.strip()):
        return value.strip() + "T00:00:00Z"
    return value


def filter_params(ns: argparse.Namespace, now: dt.datetime) -> dict[str, Any]:
    """The ``tracks.query`` / ``library.stats`` filters the user gave (and only those)."""
    params: dict[str, Any] = {}
    for name in ("genres", "exclude_genres", "decades"):
        if getattr(ns, name, None):
            params[name] = list(getattr(ns, name))
    for name in ("genre_mode", "year_min", "year_max", "min_rating", "artist", "album", "text"):
        value = getattr(ns, name, None)
        if value is not None:
            params[name] = value
    if getattr(ns, "exclude_live", None):
        params["exclude_live"] = True
    for name in ("added_after", "updated_after"):
        value = getattr(ns, name, None)
        if value is not None:
            params[name] = time_arg(value, now)
    return params


def query_params(ns: argparse.Namespace, now: dt.datetime) -> dict[str, Any]:
    params = filter_params(ns, now)
    sort = "random" if ns.random else ns.sort
    if sort is not None:
        params["sort"] = sort
    if ns.desc:
        params["order"] = "desc"
    for name in ("seed", "limit", "offset"):
        value = getattr(ns, name)
        if value is not None:
            params[name] = value
    return params


def parse_call_params(args: Sequence[str]) -> Any:
    """``call`` arguments → params: nothing → None (no params sent); one JSON object or
    array → it; else ``key=value`` pairs → an object (value parsed as JSON if it parses,
    else the string). Raises :class:`UsageError`."""
    if not args:
        return None
    if len(args) == 1 and args[0].lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(args[0])
        except json.JSONDecodeError as exc:
            raise UsageError(f"params are not valid JSON: {exc}") from None
        if not isinstance(value, (dict, list)):
            raise UsageError("JSON params must be an object or an array")
        return value
    params: dict[str, Any] = {}
    for arg in args:
        key, sep, raw = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"expected key=value (or a single JSON object), got {arg!r}")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def request_for(ns: argparse.Namespace, now: dt.datetime | None = None) -> tuple[str, Any]:
    """The (first) JSON-RPC call a parsed command makes: ``(method, params)``."""
    now = now or fmt.utcnow()
    command = ns.command
    if command == "status":
        return "library.status", None
    if command == "sync":
        return "sync.start", ({"mode": ns.mode} if ns.mode else {})
    if command == "cancel":
        return "sync.cancel", None
    if command == "history":
        return "sync.history", ({"limit": ns.limit} if ns.limit is not None else {})
    if command == "query":
        return "tracks.query", query_params(ns, now)
    if command == "get":
        return "tracks.get", {"rating_keys": list(ns.keys)}
    if command == "stats":
        return "library.stats", filter_params(ns, now)
    if command == "watch":
        return "events.subscribe", {"events": list(ALL_EVENTS)}
    if command == "call":
        return ns.method, getattr(ns, "call_params", None)
    raise UsageError(f"unknown command {command!r}")  # pragma: no cover - argparse prevents it


# -- commands --------------------------------------------------------------------

@dataclass
class Context:
    rpc: RpcClient
    out: TextIO
    err: TextIO
    json: bool
    socket: str
    clock: Callable[[], float] = time.monotonic

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
    if ctx.json:
        ctx.dump(status)
    else:
        for text in fmt.status_lines(status, fmt.utcnow()):
            ctx.line(text)
    return ExitCode.OK


def cmd_sync(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    method, params = request_for(ns)
    if not ns.wait:
        result = ctx.rpc.call(method, params)
        if ctx.json:
            ctx.dump(result)
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
    if not result.get("started") and not ctx.json:
        ctx.line(f"Sync already running (job {job_id}); waiting for it")
    try:
        job = _wait_for_job(ctx, job_id, events)
    except KeyboardInterrupt:
        ctx.err.write(f"\n{PROG}: stopped waiting; sync job {job_id} goes on "
                      f"(`{PROG} cancel` stops it)\n")
        raise
    elapsed = ctx.clock() - t0 if result.get("started") else None
    if ctx.json:
        ctx.dump(job)
    else:
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

    if ctx.json:
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
    if ctx.json:
        ctx.dump(result)
    elif result.get("cancelled"):
        ctx.line(f"Cancelled job {result.get('job_id')}")
    else:
        ctx.line("No sync running")
    return ExitCode.OK


def cmd_history(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    from .output import fit, jobs_table

    result = ctx.rpc.call(*request_for(ns))
    if ctx.json:
        ctx.dump(result)
        return ExitCode.OK
    jobs = result.get("jobs") or []
    if not jobs:
        ctx.line("No sync jobs yet")
    else:
        console = ctx.console()
        console.print(fit(jobs_table(jobs, fmt.utcnow()), console))
    return ExitCode.OK


def _print_tracks(ctx: Context, tracks: list[dict]) -> None:
    from .output import fit, tracks_table, unicode_ok

    if tracks:
        console = ctx.console()
        console.print(fit(tracks_table(tracks, unicode_ok(ctx.out)), console))


def cmd_query(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    result = ctx.rpc.call(*request_for(ns))
    if ctx.json:
        ctx.dump(result)
        return ExitCode.OK
    tracks = result.get("tracks") or []
    _print_tracks(ctx, tracks)
    ctx.line(f"{fmt.num(len(tracks))} of {fmt.num(result.get('total'))}"
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
        ctx.line("missing: " + ", ".join(str(key) for key in missing))
    return ExitCode.OK


def cmd_stats(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    from .output import stats_lines

    result = ctx.rpc.call(*request_for(ns))
    if ctx.json:
        ctx.dump(result)
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
        else:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            ctx.line(f"{stamp} {note['method']:<15} {fmt.event_summary(note['method'], note.get('params'))}")


def cmd_call(ctx: Context, ns: argparse.Namespace) -> ExitCode:
    ctx.dump(ctx.rpc.call(*request_for(ns)))
    return ExitCode.OK


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], ExitCode]] = {
    "status": cmd_status,
    "sync": cmd_sync,
    "cancel": cmd_cancel,
    "history": cmd_history,
    "query": cmd_query,
    "get": cmd_get,
    "stats": cmd_stats,
    "watch": cmd_watch,
    "call": cmd_call,
}


# -- entry point -----------------------------------------------------------------

def run(ns: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    socket_path = resolve_socket_path(ns.socket, os.environ, os.getcwd())
    with RpcClient(socket_path, timeout=ns.timeout) as rpc:
        ctx = Context(rpc=rpc, out=out, err=err, json=ns.json, socket=socket_path)
        return COMMANDS[ns.command](ctx, ns)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: returns the process exit status (see :class:`ExitCode`)."""
    out, err = sys.stdout, sys.stderr
    try:
        try:
            ns = parse_args(argv)
        except SystemExit as exc:  # argparse: usage error (2), --help / --version (0)
            return exc.code if isinstance(exc.code, int) else int(bool(exc.code)) * ExitCode.USAGE
        return int(run(ns, out, err))
    except ClientError as exc:
        err.write(f"{PROG}: error: {exc}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly; keep Python from
        # complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return int(ExitCode.ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
