"""The systemd units (systemd/*.service, *.socket, config.yaml) and
mediasaged.systemd (sd_notify, watchdog, socket activation) without libsystemd."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from mediasaged import systemd
from mediasaged.config import load_config

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "systemd"
SERVICE = UNITS / "mediasaged.service"
SOCKET = UNITS / "mediasaged.socket"


# --------------------------------------------------------------------------- #
# helpers


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A minimal systemd unit parser: section -> [(key, value), ...]."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path}: {line!r} outside a section"
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict, section: str, key: str) -> str:
    vals = values(unit, section, key)
    assert len(vals) == 1, f"[{section}] {key}= set {len(vals)} times"
    return vals[0]


def installed_mediasaged() -> str:
    """The real entry point of this checkout, to stand in for /usr/local/bin/mediasaged."""
    candidate = Path(sys.executable).parent / "mediasaged"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mediasaged")
    return found or sys.executable  # `python` at least exists and is executable


def staged_units(tmp_path: Path) -> Path:
    """Copy both units to tmp_path with ExecStart pointing at an existing binary,
    so `verify` checks the unit files rather than this machine's /usr/local."""
    exe = installed_mediasaged()
    text = SERVICE.read_text()
    assert "ExecStart=/usr/local/bin/mediasaged " in text
    (tmp_path / SERVICE.name).write_text(text.replace("/usr/local/bin/mediasaged", exe))
    shutil.copy(SOCKET, tmp_path / SOCKET.name)
    return tmp_path


def run_verify(directory: Path, *names: str) -> subprocess.CompletedProcess:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    env = dict(os.environ, SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="", LC_ALL="C")
    return subprocess.run([tool, "verify", "--man=no", *(str(directory / n) for n in names)],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=25)


def our_complaints(result: subprocess.CompletedProcess) -> list[str]:
    """Lines of verify output about our units. verify exits 0 even for unknown
    keys or unparsable values ("..., ignoring"), so any such line is an error;
    lines about unrelated units of the host system are not ours to fix."""
    lines = (result.stdout + result.stderr).splitlines()
    return [l for l in lines if "mediasaged" in l]


# --------------------------------------------------------------------------- #
# systemd-analyze verify


def test_units_pass_systemd_analyze_verify(tmp_path):
    d = staged_units(tmp_path)
    result = run_verify(d, SERVICE.name, SOCKET.name)
    assert our_complaints(result) == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_verify_check_is_not_vacuous(tmp_path):
    """The same check does catch a broken unit (so the test above means something)."""
    d = staged_units(tmp_path)
    svc = d / SERVICE.name
    svc.write_text(svc.read_text().replace("ProtectSystem=strict", "ProtectSystem=bogus\nFrobnicate=yes"))
    result = run_verify(d, SERVICE.name, SOCKET.name)
    complaints = our_complaints(result)
    assert any("bogus" in l or "protect system" in l.lower() for l in complaints), complaints
    assert any("Frobnicate" in l for l in complaints), complaints


def test_verify_flags_the_unrewritten_execstart_only_for_the_missing_binary(tmp_path):
    """Unmodified units: the only possible complaint is that /usr/local/bin/mediasaged
    is not installed on this machine."""
    shutil.copy(SERVICE, tmp_path / SERVICE.name)
    shutil.copy(SOCKET, tmp_path / SOCKET.name)
    result = run_verify(tmp_path, SERVICE.name, SOCKET.name)
    for line in our_complaints(result):
        assert "/usr/local/bin/mediasaged" in line and "not executable" in line, line


def test_service_sandbox_exposure_is_low(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    d = staged_units(tmp_path)
    result = subprocess.run([tool, "security", "--offline=true", "--no-pager", str(d / SERVICE.name)],
                            cwd=d, capture_output=True, text=True, timeout=25,
                            env=dict(os.environ, SYSTEMD_LOG_COLOR="0", LC_ALL="C"))
    m = re.search(r"Overall exposure level for mediasaged\.service: ([0-9.]+)", result.stdout)
    if m is None:
        pytest.skip(f"this systemd-analyze has no offline security check: {result.stderr.strip()[:200]}")
    # README ("Running under systemd") states the score: 1.4 with systemd 252
    assert float(m.group(1)) <= 1.5, result.stdout



def test_service_directives():
    u = parse_unit(SERVICE)
    expect = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30",
        "ExecStart": "/usr/local/bin/mediasaged --config /etc/mediasaged/config.yaml",
        "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
        "User": "mediasage", "Group": "mediasage", "DynamicUser": "no",
        "StateDirectory": "mediasaged", "RuntimeDirectory": "mediasaged",
        "RuntimeDirectoryPreserve": "yes", "ConfigurationDirectory": "mediasaged",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "CapabilityBoundingSet": "", "UMask": "0007",
        "RestartPreventExitStatus": "2 3", "PrivateMounts": "yes", "ProcSubset": "pid",
        "LimitNOFILE": "4096",
    }
    for key, value in expect.items():
        assert one(u, "Service", key) == value, key
    assert values(u, "Service", "SystemCallFilter") == ["@system-service", "~@privileged"]
    assert one(u, "Unit", "After") == "network-online.target time-sync.target"
    assert one(u, "Unit", "Wants") == "network-online.target"
    # PrivateUsers would map peers' uids to nobody and break SO_PEERCRED checks.
    assert values(u, "Service", "PrivateUsers") == []
    assert one(u, "Install", "WantedBy") == "multi-user.target"


def test_service_waits_for_the_network():
    u = parse_unit(SERVICE)
    assert "network-online.target" in " ".join(values(u, "Unit", "After")).split()
    assert "network-online.target" in " ".join(values(u, "Unit", "Wants")).split()


def test_plex_ordering_drop_in_orders_only(tmp_path):
    """The documented drop-in orders the service after Plex's unit without pulling Plex in."""
    drop_in = UNITS / "after-plexmediaserver.conf"
    u = parse_unit(drop_in)
    assert values(u, "Unit", "After") == ["plexmediaserver.service"]
    assert set(u) == {"Unit"} and [k for k, _ in u["Unit"]] == ["After"]
    d = staged_units(tmp_path)
    (d / "mediasaged.service.d").mkdir()
    shutil.copy(drop_in, d / "mediasaged.service.d" / drop_in.name)
    result = run_verify(d, SERVICE.name, SOCKET.name)
    assert our_complaints(result) == [], result.stdout + result.stderr


def test_socket_directives():
    u = parse_unit(SOCKET)
    assert one(u, "Socket", "ListenStream") == "/run/mediasaged/mediasaged.sock"
    assert one(u, "Socket", "SocketMode") == "0660"
    assert one(u, "Socket", "SocketUser") == "mediasage"
    assert one(u, "Socket", "SocketGroup") == "mediasage"
    assert one(u, "Socket", "Service") == "mediasaged.service"
    # The socket's directory must not be world-writable (CONTRACT §6).
    assert int(one(u, "Socket", "DirectoryMode"), 8) & 0o002 == 0
    assert one(u, "Install", "WantedBy") == "sockets.target"


def test_runtime_directory_holds_the_socket_and_is_not_world_writable():
    svc, sock = parse_unit(SERVICE), parse_unit(SOCKET)
    listen = Path(one(sock, "Socket", "ListenStream"))
    assert listen.parent == Path("/run") / one(svc, "Service", "RuntimeDirectory")
    assert int(one(svc, "Service", "RuntimeDirectoryMode"), 8) & 0o002 == 0


def test_example_systemd_config_matches_units():
    svc, sock = parse_unit(SERVICE), parse_unit(SOCKET)
    cfg_path = one(svc, "Service", "ExecStart").split("--config", 1)[1].strip()
    assert cfg_path == "/etc/" + one(svc, "Service", "ConfigurationDirectory") + "/config.yaml"
    cfg = load_config(UNITS / "config.yaml", {"MEDIASAGE_PLEX_TOKEN": "t"})
    assert cfg.warnings == ()
    assert str(cfg.daemon.socket) == one(sock, "Socket", "ListenStream")
    assert cfg.daemon.socket_mode == int(one(sock, "Socket", "SocketMode"), 8)
    assert cfg.cache.path.parent == Path("/var/lib") / one(svc, "Service", "StateDirectory")
    assert cfg.cache.path == Path("/var/lib/mediasaged/library_cache.db")
    assert cfg.plex.token == "t" and "token: " not in (UNITS / "config.yaml").read_text()


# --------------------------------------------------------------------------- #
# systemd.notify against a real AF_UNIX datagram socket


@pytest.fixture
def notify_socket(monkeypatch):
    """A bound datagram socket at a short filesystem path; NOTIFY_SOCKET points at it."""
    d = tempfile.mkdtemp(prefix="msd-", dir="/tmp")  # short: sun_path is 108 bytes
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()
    shutil.rmtree(d, ignore_errors=True)


def test_notify_path_socket(notify_socket):
    assert systemd.notify("READY=1\nSTATUS=hello") is True
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=hello"
    assert os.environ["NOTIFY_SOCKET"]  # left set for later pings


def test_notify_never_blocks_on_a_manager_that_does_not_read(notify_socket):
    """A full datagram queue drops the message instead of stalling the daemon's event loop."""
    import time

    t0 = time.monotonic()
    sent = [systemd.status(f"Syncing {i}") for i in range(200)]
    assert time.monotonic() - t0 < 5
    assert sent[0] is True and sent[-1] is False
    assert notify_socket.recv(4096) == b"STATUS=Syncing 0"


def test_notify_abstract_socket(monkeypatch):
    name = f"mediasaged-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert systemd.notify("WATCHDOG=1") is True
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_notify_helpers(notify_socket):
    assert systemd.ready("up")
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=up"
    assert systemd.ready()
    assert notify_socket.recv(4096) == b"READY=1"
    assert systemd.status("two\nlines")
    assert notify_socket.recv(4096) == b"STATUS=two lines"
    assert systemd.watchdog_ping()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    assert systemd.stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"
    assert systemd.reloading()
    assert re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=\d+", notify_socket.recv(4096))


def test_notify_unicode(notify_socket):
    assert systemd.status("Syncing Beyoncé 5,000 / 18,432")
    assert notify_socket.recv(4096).decode("utf-8") == "STATUS=Syncing Beyoncé 5,000 / 18,432"


def test_notify_without_systemd_is_a_noop(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert systemd.notify("READY=1") is False


def test_notify_failures_return_false(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/mediasaged/notify")
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "@mediasaged-nobody-listens-" + uuid.uuid4().hex)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # newer systemd form, unsupported
    assert systemd.notify("READY=1") is False


# --------------------------------------------------------------------------- #
# watchdog_interval


@pytest.mark.parametrize("usec,pid,expected", [
    ("30000000", None, 15.0),
    ("30000000", "self", 15.0),
    ("30000000", "other", None),
    ("1000000", "self", 0.5),
    (None, None, None),
    ("", None, None),
    ("0", None, None),
    ("-5", None, None),
    ("abc", None, None),
    ("30000000", "notapid", None),
])
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for var in ("WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(var, raising=False)
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid == "self":
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    elif pid == "other":
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    elif pid is not None:
        monkeypatch.setenv("WATCHDOG_PID", pid)
    assert systemd.watchdog_interval() == expected


# --------------------------------------------------------------------------- #
# listen_fds


@pytest.fixture
def listen_env(monkeypatch):
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _consecutive_fds(socks: list[socket.socket], base: int = 700) -> int:
    """dup the sockets onto consecutive free fds from some start near `base`,
    as systemd passes them from 3 (which this pytest process may be using)."""
    for start in range(base, base + 300, 10):
        dups = []
        for i, s in enumerate(socks):
            got = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, start + i)  # lowest free fd >= arg
            dups.append(got)
            if got != start + i:
                break
        else:
            return start
        for fd in dups:
            os.close(fd)
    pytest.skip("no run of free file descriptors for the test")


def test_listen_fds_in_process(listen_env, tmp_path):
    d = tempfile.mkdtemp(prefix="msd-", dir="/tmp")
    try:
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(os.path.join(d, "s"))
        unix.listen()
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        start = _consecutive_fds([unix, tcp])
        listen_env.setattr(systemd, "SD_LISTEN_FDS_START", start)
        listen_env.setenv("LISTEN_PID", str(os.getpid()))
        listen_env.setenv("LISTEN_FDS", "2")
        listen_env.setenv("LISTEN_FDNAMES", "a:b")
        got = systemd.listen_fds()
        try:
            assert [s.fileno() for s in got] == [start, start + 1]
            assert (got[0].family, got[0].type) == (socket.AF_UNIX, socket.SOCK_STREAM)
            assert (got[1].family, got[1].type) == (socket.AF_INET, socket.SOCK_STREAM)
            for s in got:
                assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
                assert var not in os.environ
            # The returned socket really is the listener: accept through it.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect(os.path.join(d, "s"))
                got[0].settimeout(5)
                conn, _ = got[0].accept()
                with conn:
                    conn.sendall(b"hi")
                    assert client.recv(2) == b"hi"
        finally:
            for s in got:
                s.close()
        unix.close()
        tcp.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_listen_fds_for_another_pid(listen_env):
    listen_env.setenv("LISTEN_PID", str(os.getpid() + 1))
    listen_env.setenv("LISTEN_FDS", "1")
    listen_env.setenv("LISTEN_FDNAMES", "x")
    assert systemd.listen_fds() == []
    for var in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert var not in os.environ  # unset regardless, like sd_listen_fds(1)


def test_listen_fds_absent_or_malformed(listen_env):
    assert systemd.listen_fds() == []
    listen_env.setenv("LISTEN_PID", "x")
    listen_env.setenv("LISTEN_FDS", "1")
    assert systemd.listen_fds() == []
    listen_env.setenv("LISTEN_PID", str(os.getpid()))
    listen_env.setenv("LISTEN_FDS", "0")
    assert systemd.listen_fds() == []
    listen_env.setenv("LISTEN_PID", str(os.getpid() + 1))
    listen_env.setenv("LISTEN_FDS", "1")
    assert systemd.listen_fds(unset_environment=False) == []
    assert os.environ.get("LISTEN_FDS") == "1"


CHILD = r"""
import fcntl, json, os, socket
from mediasaged import systemd
socks = systemd.listen_fds()
report = {
    "fds": [s.fileno() for s in socks],
    "family": [int(s.family) for s in socks],
    "type": [int(s.type) for s in socks],
    "cloexec": [bool(fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for s in socks],
    "env_left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
}
conn, _ = socks[0].accept()
conn.sendall(json.dumps(report).encode() + b"\n")
conn.close()
"""


def test_listen_fds_real_fd3_in_a_child_process(tmp_path):
    """End to end as systemd does it: the listener is fd 3 in a fresh process
    whose LISTEN_PID is its own pid (a shell sets it, then execs python)."""
    d = tempfile.mkdtemp(prefix="msd-", dir="/tmp")
    path = os.path.join(d, "s")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen()
            fd = listener.fileno()
            env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
            env.update(LISTEN_FDS="1", LISTEN_FDNAMES="mediasaged.socket")
            # In the child, before exec: put the listener on fd 3 (inheritable),
            # as systemd does. The shell then sets LISTEN_PID to its own pid and
            # execs python, which keeps that pid.
            script = 'export LISTEN_PID=$$; exec "$@"'
            proc = subprocess.Popen(["/bin/sh", "-c", script, "sh", sys.executable, "-c", CHILD],
                                    preexec_fn=lambda: os.dup2(fd, 3), close_fds=False,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(20)
                client.connect(path)
                data = b""
                while not data.endswith(b"\n"):
                    try:
                        chunk = client.recv(4096)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    data += chunk
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err.decode()
        report = json.loads(data)
        assert report == {"fds": [3], "family": [int(socket.AF_UNIX)],
                          "type": [int(socket.SOCK_STREAM)], "cloexec": [True], "env_left": []}
    finally:
        shutil.rmtree(d, ignore_errors=True)
