"""``mediasaged`` command line: parse arguments, load config, run the daemon.

Exit codes (CONTRACT §1): 0 clean stop, 2 bad config or usage, 3 startup failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from . import __version__, journal
from .config import ConfigError, config_path, load_config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="mediasaged",
        description="Cache one Plex music library in SQLite and serve it as JSON-RPC over a Unix socket.",
    )
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $MEDIASAGE_CONFIG, else ./config.yaml)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the config, print every problem, and exit (0 ok, 2 invalid)")
    parser.add_argument("--version", action="version", version=f"mediasaged {__version__}")
    return parser.parse_args(argv)


def setup_logging(level: str) -> None:
    # Under the journal: <N> priority prefixes and no timestamps (see journal.py).
    journal.setup_logging(level, "%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = config_path(args.config, os.environ)  # for messages
    try:
        config = load_config(args.config)  # None: a missing ./config.yaml means defaults
    except ConfigError as exc:
        print(f"mediasaged: invalid config {path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if args.check_config:
        for warning in config.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"config OK: {path}")
        return 0
    setup_logging(config.daemon.log_level)
    from .daemon import Daemon  # imported late: --check-config stays light

    return asyncio.run(Daemon(config, args.config).run())


if __name__ == "__main__":
    sys.exit(main())
