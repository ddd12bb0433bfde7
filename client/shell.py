"""Generated from the argparse parser: shell completion (bash, zsh, fish) and the man page.

``mediasagectl completion bash|zsh|fish`` prints a completion script (bash and zsh
by ``shtab``; fish, which shtab does not write, by :func:`fish_completion` below);
``mediasagectl manpage`` prints ``mediasagectl(1)`` in roff. Both walk the same
parser the command line uses, so they cannot drift from it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Iterator

from . import __version__

SHELLS = ("bash", "zsh", "fish")


def completion(parser: argparse.ArgumentParser, shell: str) -> str:
    if shell == "fish":
        return fish_completion(parser)
    import shtab

    return shtab.complete(parser, shell=shell)


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.option_strings and action.help != argparse.SUPPRESS:
            yield action


def _positionals(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            yield action


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(prog: str, action: argparse.Action, condition: str) -> str:
    parts = [f"complete -c {prog}"]
    if condition:
        parts.append(f"-n {_fish_quote(condition)}")
    for option in action.option_strings:
        parts.append(f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}")
    if action.nargs != 0:
        parts.append("-r")
        if action.choices:
            parts.append("-a " + _fish_quote(" ".join(map(str, action.choices))))
    if action.help:
        parts.append("-d " + _fish_quote(action.help % {"default": action.default}
                                          if "%(" in action.help else action.help))
    return " ".join(parts)


def fish_completion(parser: argparse.ArgumentParser) -> str:
    prog = parser.prog
    lines = [f"# fish completion for {prog} (generated: {prog} completion fish)",
             f"complete -c {prog} -f"]
    for action in _options(parser):
        lines.append(_fish_option(prog, action, ""))
    for name, help_text, sub in _subcommands(parser):
        lines.append(f"complete -c {prog} -n '__fish_use_subcommand' -a {name} -d {_fish_quote(help_text)}")
        seen = f"__fish_seen_subcommand_from {name}"
        for action in _options(sub):
            if action.option_strings[0] in ("-h", "--help"):
                continue
            lines.append(_fish_option(prog, action, seen))
        for action in _positionals(sub):
            if action.choices:
                lines.append(f"complete -c {prog} -n {_fish_quote(seen)} -a "
                             + _fish_quote(" ".join(map(str, action.choices))))
    return "\n".join(lines) + "\n"


# -- man page ---------------------------------------------------------------------

def _roff(text: str) -> str:
    text = str(text).replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n"))


def _option_lines(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in _options(parser):
        names = ", ".join(f"\\fB{_roff(o)}\\fR" for o in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}")
                                         if action.choices else action.dest.upper())
            names += f" \\fI{_roff(metavar)}\\fR"
        lines += [".TP", names]
        if action.help:
            lines.append(_roff(action.help % {"default": action.default}
                               if "%(" in action.help else action.help))
    return lines


def manpage(parser: argparse.ArgumentParser, date: dt.date | None = None) -> str:
    """``mediasagectl(1)`` in roff (``man -l -`` shows it)."""
    prog = parser.prog
    date = date or dt.date.today()
    lines = [
        f'.TH {prog.upper()} 1 "{date:%Y-%m-%d}" "{prog} {__version__}" "User Commands"',
        ".SH NAME", f"{prog} \\- {_roff(parser.description or '')}",
        ".SH SYNOPSIS", f".B {prog}", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]",
        ".SH OPTIONS", *_option_lines(parser),
        ".SH COMMANDS",
    ]
    for name, help_text, sub in _subcommands(parser):
        usage = sub.format_usage().replace("usage: ", "").strip()
        lines += [f".SS {name}", _roff(help_text), ".PP", ".nf", _roff(usage), ".fi"]
        positionals = list(_positionals(sub))
        for action in positionals:
            lines += [".TP", f"\\fI{_roff(action.metavar or action.dest)}\\fR",
                      _roff(action.help or "")]
        own = [a for a in _options(sub)
               if a.option_strings[0] not in ("-h", "--help", "--socket", "--json", "--timeout",
                                              "--format", "--config")]
        if own:
            holder = argparse.ArgumentParser(add_help=False)
            holder._actions = own
            lines += _option_lines(holder)
    lines += [
        ".SH FINDING THE DAEMON",
        _roff("--socket, else $MEDIASAGE_SOCKET, else daemon.socket of the first config file "
              "found (--config, $MEDIASAGE_CONFIG, ./config.yaml, /etc/mediasaged/config.yaml), "
              "else /run/mediasaged/mediasaged.sock if it exists."),
        ".SH ENVIRONMENT",
        ".TP", "\\fBMEDIASAGE_SOCKET\\fR", "the daemon's socket",
        ".TP", "\\fBMEDIASAGE_CONFIG\\fR", "the config file whose daemon.socket to use",
        ".SH EXIT STATUS", _roff(parser.epilog or ""),
        ".SH SEE ALSO", "\\fBmediasaged\\fR(8)",
    ]
    return "\n".join(lines) + "\n"
