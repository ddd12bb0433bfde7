"""Completion scripts and the man page, generated from the parser; ``help`` from rpc.discover."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mediasagectl.cli import build_parser
from mediasagectl.shell import completion, fish_completion, manpage
from tests.test_client import ctl

COMMANDS = ["status", "sync", "cancel", "history", "query", "get", "stats", "watch", "call", "help"]


def test_bash_completion_completes_commands_and_options(tmp_path):
    script = tmp_path / "c.bash"
    script.write_text(completion(build_parser(), "bash"))

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        probe = (f'source {script}; COMP_WORDS=({" ".join(repr(w) for w in words)}); '
                 f'COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; '
                 '_shtab_mediasagectl; printf "%s\\n" "${COMPREPLY[@]}"')
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert complete("mediasagectl st") == ["status", "stats"]
    assert "--genre" in complete("mediasagectl query --ge")
    assert set(complete("mediasagectl completion ")) == {"bash", "zsh", "fish"}


def test_zsh_completion_names_every_command():
    text = completion(build_parser(), "zsh")
    assert text.startswith("#compdef mediasagectl")
    for name in COMMANDS:
        assert name in text
    if shutil.which("zsh"):
        assert subprocess.run(["zsh", "-n"], input=text, text=True).returncode == 0


def test_fish_completion_has_commands_and_their_options():
    text = fish_completion(build_parser())
    for name in COMMANDS:
        assert f"-n '__fish_use_subcommand' -a {name} " in text
    assert "-n '__fish_seen_subcommand_from query' -l genre -r" in text
    assert "-n '__fish_seen_subcommand_from sync' -l full" in text
    assert "complete -c mediasagectl -l format -r" in text
    if shutil.which("fish"):
        assert subprocess.run(["fish", "--no-execute"], input=text, text=True).returncode == 0


def test_man_page_has_every_command_and_option_and_renders():
    text = manpage(build_parser())
    assert text.startswith(".TH MEDIASAGECTL 1 ")
    for name in COMMANDS:
        assert f".SS {name}\n" in text
    for option in ("\\-\\-socket", "\\-\\-config", "\\-\\-format", "\\-\\-genre", "\\-\\-wait"):
        assert option in text
    if not shutil.which("man"):
        pytest.skip("no man here to render it")
    out = subprocess.run(["man", "-l", "-"], input=text, capture_output=True, text=True, timeout=30,
                         env={"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert "FINDING THE DAEMON" in out.stdout and "mediasagectl" in out.stdout


async def test_completion_and_manpage_commands_need_no_daemon(tmp_path):
    run = await ctl("completion", "fish", cwd=tmp_path)
    assert run.code == 0 and "__fish_use_subcommand" in run.out
    run = await ctl("manpage", cwd=tmp_path)
    assert run.code == 0 and run.out.startswith(".TH")


async def test_help_lists_methods_and_shows_one(daemon):
    run = await ctl("help", sock=daemon.socket)
    assert run.code == 0, run
    for name in ("=== tracks ===", "tracks.query", "sync.start", "rpc.discover"):
        assert name in run.out
    one = await ctl("help", "sync.start", sock=daemon.socket)
    assert one.code == 0, one
    assert one.lines[0].startswith("sync.start") and "mode" in one.out
    unknown = await ctl("help", "no.such", sock=daemon.socket)
    assert unknown.code == 1 and "no method 'no.such'" in unknown.err
