"""Finding the daemon's socket: each step of the discovery order, and the exit-3 message.

The pure walk (:func:`mediasagectl.discovery.discover`) is tested on real files in a
temporary directory; the system paths (/etc/mediasaged/config.yaml,
/run/mediasaged/mediasaged.sock) through the ``exists`` and ``read_socket`` hooks,
since a test may not write there. The end-to-end tests run the real client.
"""

from __future__ import annotations

import os
from pathlib import Path

from mediasagectl.discovery import SYSTEM_CONFIG, SYSTEM_SOCKET, discover
from tests.test_client import clean_env, ctl


def only(*present: str):
    """An ``exists`` that sees the real filesystem plus ``present`` (system paths)."""
    return lambda path: path in present or os.path.exists(path)




def no_system(path: str) -> bool:
    return not path.startswith(("/etc/mediasaged", "/run/mediasaged")) and os.path.exists(path)


def test_1_the_socket_option_wins(tmp_path):
    (tmp_path / "config.yaml").write_text("daemon: {socket: other.sock}\n")
    choice = discover("/cli.sock", "x.yaml", {"MEDIASAGE_SOCKET": "/env.sock"}, str(tmp_path))
    assert (choice.path, choice.source) == ("/cli.sock", "--socket")


def test_2_then_the_environment(tmp_path):
    (tmp_path / "config.yaml").write_text("daemon: {socket: other.sock}\n")
    choice = discover(None, None, {"MEDIASAGE_SOCKET": "/env.sock"}, str(tmp_path))
    assert (choice.path, choice.source) == ("/env.sock", "$MEDIASAGE_SOCKET")


def test_3a_then_the_config_option_relative_to_the_config(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "c.yaml").write_text("daemon: {socket: run/m.sock}\n")
    (tmp_path / "config.yaml").write_text("daemon: {socket: other.sock}\n")
    env = {"MEDIASAGE_CONFIG": str(tmp_path / "config.yaml")}
    choice = discover(None, "etc/c.yaml", env, str(tmp_path), exists=no_system)
    assert choice.path == str(tmp_path / "etc" / "run" / "m.sock")
    assert choice.source == f"daemon.socket of {tmp_path / 'etc' / 'c.yaml'}"


def test_3b_then_the_config_in_the_environment(tmp_path):
    (tmp_path / "c.yaml").write_text("daemon: {socket: /abs/m.sock}\n")
    (tmp_path / "config.yaml").write_text("daemon: {socket: other.sock}\n")
    choice = discover(None, None, {"MEDIASAGE_CONFIG": str(tmp_path / "c.yaml")}, str(tmp_path),
                      exists=no_system)
    assert choice.path == "/abs/m.sock"


def test_3c_then_config_yaml_here(tmp_path):
    (tmp_path / "config.yaml").write_text("daemon: {socket: here.sock}\n")
    choice = discover(None, None, {}, str(tmp_path), exists=no_system)
    assert choice.path == str(tmp_path / "here.sock")
    # a named config that does not exist is skipped (and listed)
    choice = discover(None, "gone.yaml", {"MEDIASAGE_CONFIG": "/gone/too.yaml"}, str(tmp_path),
                      exists=no_system)
    assert choice.path == str(tmp_path / "here.sock")
    assert any("gone.yaml (no such file)" in step for step in choice.tried)
    assert any("/gone/too.yaml (no such file)" in step for step in choice.tried)


def test_3_a_config_without_daemon_socket_means_the_daemons_default(tmp_path):
    (tmp_path / "config.yaml").write_text("plex: {url: http://x}\n")
    assert discover(None, None, {}, str(tmp_path), exists=no_system).path == \
        str(tmp_path / "data" / "mediasaged.sock")
    (tmp_path / "config.yaml").write_text("daemon: [unclosed\n")
    assert discover(None, None, {}, str(tmp_path), exists=no_system).path == \
        str(tmp_path / "data" / "mediasaged.sock")


def test_3d_then_the_system_config(tmp_path):
    seen = []

    def read(path):
        seen.append(path)
        return "/run/elsewhere/m.sock"

    choice = discover(None, None, {}, str(tmp_path), exists=only(SYSTEM_CONFIG), read_socket=read)
    assert choice.path == "/run/elsewhere/m.sock" and seen == [SYSTEM_CONFIG]


def test_4_then_the_systemd_socket_if_it_exists(tmp_path):
    choice = discover(None, None, {}, str(tmp_path), exists=only(SYSTEM_SOCKET))
    assert (choice.path, choice.source) == (SYSTEM_SOCKET, SYSTEM_SOCKET)


def test_5_then_data_mediasaged_sock_here_if_it_exists(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mediasaged.sock").write_text("")
    choice = discover(None, None, {}, str(tmp_path), exists=no_system)
    assert choice.path == str(tmp_path / "data" / "mediasaged.sock")


def test_nothing_found_lists_every_step(tmp_path):
    choice = discover(None, None, {}, str(tmp_path), exists=no_system)
    assert choice.path is None
    text = choice.explain()
    for step in ("--socket (not given)", "$MEDIASAGE_SOCKET (not set)", "--config (not given)",
                 "$MEDIASAGE_CONFIG (not set)", f"./config.yaml {tmp_path / 'config.yaml'} (no such file)",
                 f"{SYSTEM_CONFIG} (no such file)", f"{SYSTEM_SOCKET} (does not exist)",
                 "./data/mediasaged.sock (does not exist)"):
        assert step in text, (step, text)


# -- the real client ------------------------------------------------------------------

async def test_client_finds_the_daemon_by_config_option_env_and_cwd(daemon, tmp_path):
    for args, env, cwd in ((["--config", str(daemon.config)], {}, tmp_path),
                           ([], {"MEDIASAGE_CONFIG": str(daemon.config)}, tmp_path),
                           ([], {"MEDIASAGE_SOCKET": str(daemon.socket)}, tmp_path),
                           ([], {}, daemon.dir)):
        run = await ctl(*args, "call", "daemon.info", cwd=cwd, env=clean_env(**env))
        assert run.code == 0, (args, env, run)


async def test_exit_3_lists_what_was_tried(tmp_path):
    if Path(SYSTEM_CONFIG).exists() or Path(SYSTEM_SOCKET).exists():
        import pytest
        pytest.skip("this machine has a system-wide mediasaged")
    run = await ctl("status", cwd=tmp_path)
    assert run.code == 3, run
    assert "cannot find mediasaged's socket" in run.err
    for step in ("--socket (not given)", "$MEDIASAGE_SOCKET (not set)", SYSTEM_CONFIG, SYSTEM_SOCKET):
        assert step in run.err, run.err


async def test_exit_3_for_a_configs_socket_says_where_the_path_came_from(tmp_path):
    (tmp_path / "config.yaml").write_text("daemon: {socket: nobody.sock}\n")
    run = await ctl("status", cwd=tmp_path)
    assert run.code == 3, run
    assert f"no socket at {tmp_path / 'nobody.sock'}" in run.err
    assert f"socket from daemon.socket of {tmp_path / 'config.yaml'}" in run.err
