"""mediasagectl — the thin command-line client of mediasaged (CONTRACT §4).

Layout: ``build_parser``/``parse_args`` (argparse) and ``main``, the only place
that turns errors into messages and exit codes, live here; ``request_for`` (pure:
parsed arguments → the JSON-RPC method and params a command sends) lives in
:mod:`mediasagectl.params`, and the ``cmd_*`` functions, one per command (talk to
the daemon, print, return an :class:`ExitCode` or raise a typed error from
:mod:`mediasagectl.errors`), in :mod:`mediasagectl.commands`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence, TextIO

from . import __version__, formats
from .commands import COMMANDS, PROG, Context
from .discovery import discover
from .errors import ClientError, Unreachable, UsageError
from .exitcodes import ExitCode
from .params import parse_call_params, request_for, time_arg
from .rpc import RpcClient

# ``request_for``/``time_arg``/``parse_call_params`` are re-exported: part of this
# module's interface (the unit tests import them from here).
__all__ = ["build_parser", "main", "parse_args", "parse_call_params", "request_for",
           "run", "time_arg"]

DEFAULT_TIMEOUT = 10.0


# -- argument parsing ------------------------------------------------------------

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


SORTS = ("artist", "title", "album", "year", "duration", "rating", "added", "random")  # CONTRACT §3
MAX_HISTORY = 1000  # what the daemon accepts for sync.history's limit


def _history_limit(text: str) -> int:
    value = _nonneg_int(text)
    if not 1 <= value <= MAX_HISTORY:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_HISTORY}: {text!r}")
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


def _score(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100: {text!r}")
    return value


def _alternatives(text: str) -> int:
    value = _nonneg_int(text)
    if value > 20:
        raise argparse.ArgumentTypeError(f"must be between 0 and 20: {text!r}")
    return value


def _format(text: str) -> str:
    try:
        return formats.check(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--format: ")) from None


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The global options; on subcommands too (``mediasagectl status --json`` works)."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("--socket", metavar="PATH", default=default(None),
                        help="daemon socket (default: $MEDIASAGE_SOCKET, else daemon.socket of "
                             "the config found, else /run/mediasaged/mediasaged.sock)")
    parser.add_argument("--config", metavar="PATH", default=default(None),
                        help="config file whose daemon.socket to use (default: $MEDIASAGE_CONFIG, "
                             "./config.yaml, /etc/mediasaged/config.yaml)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print the raw JSON result(s) instead of text (= --format json)")
    parser.add_argument("--format", metavar="FORMAT", type=_format, default=default(None),
                        help="table, tsv, json, or a template like '{artist} - {title}' "
                             "(default: table on a terminal, else tsv)")
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
                   help="ISO 8601 time, a date (YYYY-MM-DD, UTC) or an age like 7d, 1.5h, 2w")
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
    p.add_argument("--restart", action="store_true",
                   help="with --full: start from the first page, not where a full sync cut short stopped")
    p.add_argument("--wait", action="store_true",
                   help="show progress until the sync ends; exit 1 if it failed")

    add("cancel", "cancel the running sync")

    p = add("history", "recent sync jobs")
    p.add_argument("--limit", type=_history_limit, metavar="N", help="number of jobs, 1-1000 (daemon default 20)")

    p = add("query", "find tracks")
    _filter_options(p)
    g = p.add_argument_group("order and paging")
    g.add_argument("--sort", metavar="F", choices=SORTS,
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

    p = add("match", "resolve \"ARTIST - TITLE\" references to library tracks (exit 1 if any finds none)")
    p.add_argument("references", nargs="*", metavar="\"ARTIST - TITLE\"",
                   help="references (\" - \", \" – \" or \" — \" between artist and title; a title alone is "
                        "fine); none: one per line on stdin")
    p.add_argument("--min-score", type=_score, metavar="S", help="0-100: lower scores find nothing (daemon default 85)")
    p.add_argument("--alternatives", type=_alternatives, metavar="N", help="also show up to N next-best tracks (0-20)")
    _filter_options(p)

    add("watch", "print events as they arrive until interrupted")

    p = add("call", "raw JSON-RPC call; prints the JSON result")
    p.add_argument("method", metavar="METHOD")
    p.add_argument("params", nargs="*", metavar="JSON | key=string | key:=json",
                   help="one JSON object/array, or pairs: key=value sends the value as a "
                        "string, key:=value as JSON (httpie style)")

    p = add("help", "the daemon's methods (from rpc.discover), or one METHOD in full")
    p.add_argument("method", nargs="?", metavar="METHOD")

    p = sub.add_parser("completion", help="print a shell completion script",
                       description="Print a completion script: bash (source it), zsh (put it "
                                   "in $fpath as _mediasagectl), fish (~/.config/fish/completions/).")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])
    sub.add_parser("manpage", help="print the man page (roff)",
                   description="Print mediasagectl(1) in roff, e.g. > /usr/local/share/man/man1/mediasagectl.1")
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


# -- entry point -----------------------------------------------------------------

def run(ns: argparse.Namespace, out: TextIO, err: TextIO) -> ExitCode:
    if ns.command in ("completion", "manpage"):  # nothing to ask the daemon
        from .shell import completion, manpage

        out.write(completion(build_parser(), ns.shell) if ns.command == "completion"
                  else manpage(build_parser()))
        return ExitCode.OK
    choice = discover(ns.socket, ns.config, os.environ, os.getcwd())
    if choice.path is None:
        raise Unreachable("", "not_found", choice.explain())
    try:
        with RpcClient(choice.path, timeout=ns.timeout) as rpc:
            ctx = Context(rpc=rpc, out=out, err=err, socket=choice.path,
                          format=formats.choose(ns.format, ns.json, _isatty(out)),
                          symbols=formats.locale_is_utf8(os.environ))
            return COMMANDS[ns.command](ctx, ns)
    except Unreachable as exc:
        if exc.reason in ("missing", "refused", "not_socket") and choice.source != "--socket":
            raise exc.with_context(f"socket from {choice.source}; {choice.explain()}") from None
        raise


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


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
