"""Exit codes of mediasagectl: the one place they are defined (CONTRACT §4)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0            # the command did what was asked
    ERROR = 1         # the daemon answered with an error, or a waited-for sync failed
    USAGE = 2         # bad command line (argparse uses 2 as well)
    UNREACHABLE = 3   # cannot reach the daemon: socket missing, refusing, denied, closed, silent
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
