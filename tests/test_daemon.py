"""The foundation: JSON-RPC over the socket, discovery, lifecycle, systemd hooks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import socket
import subprocess
import sys

import pytest

from tests.support import DaemonProcess, RpcFailure, raw_exchange, wait_until, write_config

CONTRACT_METHODS = {
    "daemon.info", "library.status", "sync.start", "sync.status", "sync.cancel", "sync.history",
    "tracks.query", "tracks.get", "tracks.match", "library.stats", "events.subscribe", "events.unsubscribe", "rpc.discover",
}


async def test_ready_is_notified_and_info_answers(daemon):
    assert any(m == "READY=1" for m in daemon.notify.messages)
    info = await daemon.call("daemon.info")
    assert info["pid"] == daemon.proc.pid
    assert info["socket"] == str(daemon.socket)
    assert info["database"] == str(daemon.db)
    assert info["plex"]["library"] == "Music"
    assert "test-token" not in json.dumps(info)


async def test_library_status_of_a_never_synced_cache(daemon):
    status = await daemon.call("library.status")
    assert status == {
        "track_count": 0, "synced_at": None, "generation": 0, "plex_server_id": None,
        "sync_duration_ms": None, "is_syncing": False, "sync_progress": None, "error": None,
        "stale": True, "plex_reachable": None, "next_sync_at": None, "server_changed": False,
        "sync_owed": None,
    }


async def test_parse_error_has_null_id(daemon):
    [answer] = await raw_exchange(daemon.socket, b'{"jsonrpc": "2.0", "method": \n', 1)
    assert answer["error"]["code"] == -32700
    assert answer["id"] is None


async def test_invalid_utf8_is_a_parse_error(daemon):
    [answer] = await raw_exchange(daemon.socket, b'{"jsonrpc": "2.0", "method": "\xff"}\n', 1)
    assert answer["error"]["code"] == -32700


@pytest.mark.parametrize("request_", [
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "1.0", "method": "daemon.info", "id": 1},
    {"jsonrpc": "2.0", "method": 5, "id": 1},
    {"jsonrpc": "2.0", "method": "daemon.info", "params": "x", "id": 1},
    [],
])
async def test_invalid_requests(daemon, request_):
    [answer] = await raw_exchange(daemon.socket, json.dumps(request_).encode() + b"\n", 1)
    assert answer["error"]["code"] == -32600


async def test_method_not_found(daemon):
    conn = await daemon.connect()
    response = await conn.request("no.such.method")
    await conn.close()
    assert response["error"]["code"] == -32601


@pytest.mark.parametrize("method, params, param", [
    ("sync.history", {"limit": "x"}, "limit"),
    ("sync.history", {"limit": 0}, "limit"),
    ("sync.history", {"limt": 5}, "limt"),
    ("sync.start", {"mode": "sideways"}, "mode"),
    ("sync.status", {"job_id": True}, "job_id"),
    ("events.subscribe", {}, "events"),
    ("events.subscribe", {"events": ["nope"]}, "events"),
    ("daemon.info", [1, 2], "params"),
])
async def test_invalid_params_name_the_param(daemon, method, params, param):
    conn = await daemon.connect()
    response = await conn.request(method, params)
    await conn.close()
    assert response["error"]["code"] == -32602, response
    assert param in response["error"]["message"]


async def test_queries_before_any_sync_are_not_synced(daemon):
    for method in ("tracks.query", "library.stats"):
        with pytest.raises(RpcFailure) as failure:
            await daemon.call(method)
        assert failure.value.code == -32001
        assert failure.value.error["message"] == "not_synced"


async def test_batch_answers_all_but_notifications(daemon):
    batch = [
        {"jsonrpc": "2.0", "method": "daemon.info", "id": "a"},
        {"jsonrpc": "2.0", "method": "library.status"},
        {"jsonrpc": "2.0", "method": "nope", "id": "b"},
        {"jsonrpc": "2.0", "method": "sync.history", "params": {"limit": -1}, "id": "c"},
    ]
    [answers] = await raw_exchange(daemon.socket, json.dumps(batch).encode() + b"\n", 1)
    by_id = {a["id"]: a for a in answers}
    assert set(by_id) == {"a", "b", "c"}
    assert "result" in by_id["a"]
    assert by_id["b"]["error"]["code"] == -32601
    assert by_id["c"]["error"]["code"] == -32602


async def test_notifications_get_no_answer(daemon):
    lines = (json.dumps({"jsonrpc": "2.0", "method": "daemon.info"}) + "\n"
             + json.dumps({"jsonrpc": "2.0", "method": "nope"}) + "\n"
             + json.dumps({"jsonrpc": "2.0", "method": "library.status", "id": 7}) + "\n")
    answers = await raw_exchange(daemon.socket, lines.encode(), 1)
    assert answers[0]["id"] == 7


async def test_several_requests_in_flight_on_one_connection(daemon):
    lines = "".join(json.dumps({"jsonrpc": "2.0", "method": "daemon.info", "id": i}) + "\n" for i in range(20))
    answers = await raw_exchange(daemon.socket, lines.encode(), 20)
    assert sorted(a["id"] for a in answers) == list(range(20))


async def test_oversized_line_is_refused_and_connection_closed(daemon):
    reader, writer = await asyncio.open_unix_connection(str(daemon.socket))
    writer.write(b'{"jsonrpc": "2.0", "method": "' + b"x" * (1 << 20) + b'", "id": 1}\n')
    await writer.drain()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert answer["error"]["code"] == -32600
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed
    writer.close()
    assert (await daemon.call("daemon.info"))["pid"]  # and the daemon serves on


async def test_a_stalled_client_holds_up_nobody(daemon):
    _, stalled = await asyncio.open_unix_connection(str(daemon.socket))
    stalled.write(b'{"jsonrpc": "2.0", "method": "daem')
    await stalled.drain()
    assert (await asyncio.wait_for(daemon.call("library.status"), 5))["generation"] == 0
    stalled.close()


async def test_discover_lists_every_method_with_schemas(daemon):
    doc = await daemon.call("rpc.discover")
    assert doc["openrpc"].startswith("1.")
    names = {m["name"] for m in doc["methods"]}
    assert names == CONTRACT_METHODS
    for m in doc["methods"]:
        assert m["result"]["schema"]
        assert all("schema" in p for p in m["params"])
    query = next(m for m in doc["methods"] if m["name"] == "tracks.query")
    assert {"genres", "decades", "min_rating", "text", "sort", "limit", "seed"} <= {p["name"] for p in query["params"]}


async def test_read_only_uid_may_not_start_a_sync(daemon_factory):
    d = await daemon_factory(daemon={"read_only_uids": [os.getuid()]})
    with pytest.raises(RpcFailure) as failure:
        await d.call("sync.start")
    assert failure.value.code == -32003
    assert (await d.call("library.status"))["is_syncing"] is False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_cleanly_and_removes_socket(daemon, sig):
    assert daemon.socket.exists()
    assert await daemon.stop(sig) == 0
    assert not daemon.socket.exists()


async def test_second_daemon_on_the_same_socket_exits_3(daemon, sdir):
    second = DaemonProcess(sdir, daemon.config)
    try:
        await second.start(wait_ready=False)
        assert await second.wait_exit() == 3
        assert "in use" in second.log()
    finally:
        await second.close()
    assert (await daemon.call("daemon.info"))["pid"] == daemon.proc.pid


async def test_stale_socket_file_is_replaced(daemon_factory, sdir):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sdir / "d.sock"))
    stale.close()  # the file stays, nobody listens
    d = await daemon_factory()
    assert (await d.call("daemon.info"))["pid"] == d.proc.pid


async def test_socket_is_created_with_the_configured_mode(daemon_factory, sdir):
    d = await daemon_factory(daemon={"socket_mode": "0600"})
    assert d.socket.stat().st_mode & 0o777 == 0o600


async def test_world_writable_socket_directory_is_refused(daemon_factory, sdir):
    public = sdir / "public"
    public.mkdir()
    public.chmod(0o1777)
    d = await daemon_factory(wait_ready=False, daemon={"socket": "public/d.sock"})
    assert await d.wait_exit() == 3
    assert "world-writable" in d.log()


async def test_someone_elses_database_exits_3(daemon_factory, sdir):
    other = sqlite3.connect(sdir / "cache.db")
    other.execute("PRAGMA application_id = 1234")
    other.execute("CREATE TABLE theirs (x)")
    other.close()
    d = await daemon_factory(wait_ready=False)
    assert await d.wait_exit() == 3
    assert "not a mediasaged cache" in d.log()
    assert not list(sdir.glob("cache.db.corrupt-*"))


def test_check_config_names_a_misspelled_key(sdir):
    config = write_config(sdir, sync={"page_sise": 10})
    result = subprocess.run([sys.executable, "-m", "mediasaged", "--config", str(config), "--check-config"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "sync.page_sise: unknown key" in result.stderr


def test_check_config_accepts_a_good_config_and_version_prints(sdir):
    config = write_config(sdir)
    ok = subprocess.run([sys.executable, "-m", "mediasaged", "--config", str(config), "--check-config"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    version = subprocess.run([sys.executable, "-m", "mediasaged", "--version"], capture_output=True, text=True,
                             timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("mediasaged ")


async def test_sighup_reloads_and_keeps_old_config_when_invalid(daemon):
    text = daemon.config.read_text()
    daemon.config.write_text(text.replace("Music", "Musik"))
    daemon.proc.send_signal(signal.SIGHUP)
    await daemon.notify.wait_for("RELOADING=1")
    async def library():
        return (await daemon.call("daemon.info"))["plex"]["library"] == "Musik"
    from tests.support import wait_until
    await wait_until(library)
    daemon.config.write_text(text + "\nbogus: 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    async def logged():
        return "keeping the current one" in daemon.log()
    await wait_until(logged)
    assert (await daemon.call("daemon.info"))["plex"]["library"] == "Musik"


async def test_socket_activation_uses_the_passed_listening_socket(sdir):
    path = sdir / "activated.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    config = write_config(sdir)
    fd = listener.fileno()
    # The child must see LISTEN_PID == its own pid and the socket at fd 3, as systemd arranges:
    # a tiny launcher moves the fd, sets the variables and execs (keeping its pid).
    daemon = DaemonProcess(sdir, config, pass_fds=(fd,))
    launcher = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
                "os.environ['LISTEN_FDS'] = '1'; os.execv(sys.executable, [sys.executable, '-m', 'mediasaged', "
                "'--config', sys.argv[2]])")
    daemon.proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", launcher, str(fd), str(config),
        env=daemon._env, pass_fds=(fd,), stderr=open(daemon.stderr_path, "wb"))
    daemon._stderr = open(os.devnull, "wb")
    listener.close()
    try:
        await daemon.notify.wait_for("READY=1", timeout=20)
        daemon.socket = path
        info = await daemon.call("daemon.info")
        assert info["socket"] == str(path)
        assert not (sdir / "d.sock").exists()  # it did not bind its own
        assert await daemon.stop() == 0
        assert path.exists()  # the service manager owns the socket file
    finally:
        await daemon.close()


def test_a_missing_default_config_means_defaults(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MEDIASAGE_CONFIG", "MEDIASAGE_PLEX_TOKEN")}
    run = subprocess.run([sys.executable, "-m", "mediasaged", "--check-config"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    named = subprocess.run([sys.executable, "-m", "mediasaged", "--check-config", "--config", "nope.yaml"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert named.returncode == 2 and "not found" in named.stderr


async def test_info_shows_the_plex_url_without_credentials(daemon_factory):
    daemon = await daemon_factory(plex_url="http://someone:hunter2@127.0.0.1:9")
    info = await daemon.call("daemon.info")
    assert info["plex"]["url"] == "http://127.0.0.1:9"
    assert "hunter2" not in json.dumps(info)


async def test_sighup_permission_changes_apply_to_open_connections(daemon):
    conn = await daemon.connect()
    try:
        assert (await conn.call("sync.cancel"))["cancelled"] is False  # a write method: allowed
        text = daemon.config.read_text()
        daemon.config.write_text(text.replace("daemon:\n", "daemon:\n  read_only_uids: [%d]\n" % os.getuid(), 1))
        daemon.proc.send_signal(signal.SIGHUP)

        async def read_only():
            response = await conn.request("sync.cancel")
            return response.get("error", {}).get("code") == -32003
        await wait_until(read_only)  # the same connection, at its next request
        assert (await conn.call("library.status"))["track_count"] == 0  # reading still works
        daemon.config.write_text(text)
        daemon.proc.send_signal(signal.SIGHUP)

        async def writable_again():
            return "result" in await conn.request("sync.cancel")
        await wait_until(writable_again)
    finally:
        await conn.close()
