"""config.yaml loading and validation (mediasaged.config, CONTRACT §5)."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from pathlib import Path

import pytest

from mediasaged.config import (
    CacheConfig,
    Config,
    ConfigError,
    DaemonConfig,
    PlexConfig,
    SyncConfig,
    config_path,
    load_config,
    parse_duration,
)

pytestmark = pytest.mark.timeout(10)

REPO = Path(__file__).resolve().parent.parent
TOKEN = "s3cr3t-PLEX-t0ken-xyz"


def write(tmp_path: Path, text: str, name: str = "config.yaml", mode: int = 0o600) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    p.chmod(mode)
    return p


def problems_of(path: Path, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, env or {})
    return exc.value.problems


# ---------------------------------------------------------------- defaults


def test_empty_file_gives_contract_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""), {})
    assert cfg.source == tmp_path / "config.yaml"
    assert cfg.warnings == ()
    assert cfg.plex == PlexConfig(url="http://127.0.0.1:32400", token="", library="Music",
                                  timeout=30.0, verify_ssl=True, token_file=None)
    assert cfg.cache == CacheConfig(path=tmp_path / "data/library_cache.db")
    assert cfg.sync == SyncConfig(
        page_size=1000, interval=86400.0, stale_after=86400.0, retries=2,
        live_keywords=("live", "concert", "unplugged", "in concert", "bootleg"),
        dated_titles_are_live=True, plex_events=True, separate_cpus=True)
    assert cfg.daemon == DaemonConfig(socket=tmp_path / "data/mediasaged.sock",
                                      socket_mode=0o660, allowed_uids=(), read_only_uids=(),
                                      log_level="info")


def test_empty_sections_mean_defaults(tmp_path):
    cfg = load_config(write(tmp_path, "plex:\nsync:\ncache:\ndaemon:\n"), {})
    assert cfg.sync.page_size == 1000 and cfg.plex.library == "Music"


def test_config_is_frozen_and_token_not_in_repr(tmp_path):
    cfg = load_config(write(tmp_path, f"plex:\n  token: {TOKEN}\n"), {})
    assert cfg.plex.token == TOKEN
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.plex.token = "x"  # type: ignore[misc]
    assert TOKEN not in repr(cfg) and TOKEN not in str(cfg.plex)


def test_shipped_config_yaml_loads_cleanly():
    cfg = load_config(REPO / "config.yaml", {})
    assert cfg.warnings == ()
    assert cfg == dataclasses.replace(load_config(None, {"MEDIASAGE_CONFIG": str(REPO / "config.yaml")}))
    assert cfg.cache.path == REPO / "data/library_cache.db"
    assert cfg.daemon.socket == REPO / "data/mediasaged.sock"
    assert cfg.daemon.socket_mode == 0o660
    assert cfg.sync.interval == 86400


def test_shipped_config_has_exactly_the_contract_keys_and_our_additions():
    import yaml
    data = yaml.safe_load((REPO / "config.yaml").read_text())
    assert {k: sorted(v) for k, v in data.items()} == {
        "plex": sorted(["url", "token", "library", "timeout", "verify_ssl"]),
        "cache": ["group", "path"],  # group: added by us (issue #10), documented in the README
        "sync": sorted(["page_size", "interval", "stale_after", "retries", "live_keywords",
                        "dated_titles_are_live", "plex_events",
                        "separate_cpus", "concurrent_pages", "stalled_after"]),  # added by us, documented in the README
        "daemon": sorted(["socket", "socket_mode", "allowed_uids", "read_only_uids", "log_level",
                          "max_connections", "max_connections_per_uid", "max_response_mib"]),  # ours: README "Limits"
    }


@pytest.mark.parametrize("key, value, message", [
    ("max_connections", 0, "daemon.max_connections: must be from 1 to 65536, got 0"),
    ("max_connections_per_uid", "many", "daemon.max_connections_per_uid: expected an integer from 1 to 65536"),
    ("max_response_mib", 2048, "daemon.max_response_mib: must be from 1 to 1024, got 2048"),
])
def test_limits_are_checked_and_named(tmp_path, key, value, message):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"daemon:\n  {key}: {json.dumps(value)}\n"), {})
    assert any(message in p for p in err.value.problems), err.value.problems


def test_limits_have_their_defaults_and_are_read(tmp_path):
    assert (DaemonConfig().max_connections, DaemonConfig().max_connections_per_uid,
            DaemonConfig().max_response_mib) == (256, 64, 32)
    cfg = load_config(write(tmp_path, "daemon:\n  max_connections: 10\n  max_connections_per_uid: 3\n"
                                      "  max_response_mib: 4\n"), {})
    assert (cfg.daemon.max_connections, cfg.daemon.max_connections_per_uid, cfg.daemon.max_response_mib) == (10, 3, 4)


def test_systemd_example_config_is_valid(tmp_path):
    # token_file points at /etc/mediasaged/plex-token, which does not exist
    # here; the env token overrides it, so the file is not read.
    cfg = load_config(REPO / "systemd/config.yaml", {"MEDIASAGE_PLEX_TOKEN": TOKEN})
    assert cfg.cache.path == Path("/var/lib/mediasaged/library_cache.db")
    assert cfg.daemon.socket == Path("/run/mediasaged/mediasaged.sock")
    assert cfg.plex.token_file == Path("/etc/mediasaged/plex-token")
    assert cfg.plex.token == TOKEN


# ---------------------------------------------------------------- every key


def test_every_key_set(tmp_path):
    tf = write(tmp_path, f"  {TOKEN}\n", name="tok")
    cfg = load_config(write(tmp_path, """\
        plex:
          url: https://plex.example:32400/
          token: ""
          token_file: tok
          library: Musique
          timeout: 2.5
          verify_ssl: false
        cache:
          path: /var/tmp/x.db
        sync:
          page_size: 10000
          interval: 15m
          stale_after: 0
          retries: 0
          live_keywords: [Live, "en vivo"]
          dated_titles_are_live: false
          plex_events: false
          separate_cpus: false
          stalled_after: 1h
        daemon:
          socket: run/d.sock
          socket_mode: "0600"
          allowed_uids: [1000, 0]
          read_only_uids: [1001]
          log_level: DEBUG
        """), {})
    assert cfg.plex == PlexConfig(url="https://plex.example:32400", token=TOKEN,
                                  library="Musique", timeout=2.5, verify_ssl=False,
                                  token_file=tf)
    assert cfg.cache.path == Path("/var/tmp/x.db")
    assert cfg.sync == SyncConfig(page_size=10000, interval=900.0, stale_after=0.0, retries=0,
                                  live_keywords=("Live", "en vivo"),
                                  dated_titles_are_live=False, plex_events=False,
                                  separate_cpus=False, stalled_after=3600.0)
    assert cfg.daemon == DaemonConfig(socket=tmp_path / "run/d.sock", socket_mode=0o600,
                                      allowed_uids=(1000, 0), read_only_uids=(1001,),
                                      log_level="debug")


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize("text,seconds", [
    ("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1.5h", 5400),
    ("90", 90), (90, 90), (0, 0), ("0s", 0), (" 2 H ", 7200),
    ("off", None), ("OFF", None), (False, None),
    ("1w", 604800), ("2W", 1209600),  # the CLI's grammar too (mediasagectl.durations): weeks
])
def test_parse_duration_good(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "1y", "-5s", "h", "1h30m", True, None, [1], -3,
                                  float("inf"), "nan", "1e3s", "٣s"])
def test_parse_duration_bad(text):
    with pytest.raises(ValueError, match="expected a duration like 30s, 15m, 24h, 7d or off"):
        parse_duration(text)


@pytest.mark.parametrize("yaml_value,seconds", [
    ("off", None), ('"off"', None), ("30s", 30), ("3600", 3600), ("7d", 604800)])
def test_durations_in_yaml(tmp_path, yaml_value, seconds):
    cfg = load_config(write(tmp_path, f"sync:\n  interval: {yaml_value}\n  stale_after: {yaml_value}\n"
                                      f"  stalled_after: {yaml_value}\n"), {})
    assert cfg.sync.interval == seconds and cfg.sync.stale_after == seconds and cfg.sync.stalled_after == seconds


def test_bad_duration_names_key_and_value(tmp_path):
    probs = problems_of(write(tmp_path, "sync:\n  interval: 5 minutes\n"))
    assert probs == ["sync.interval: expected a duration like 30s, 15m, 24h, 7d or off, got '5 minutes'"]


def test_interval_zero_and_null_rejected(tmp_path):
    probs = problems_of(write(tmp_path, "sync:\n  interval: 0\n  stale_after:\n  stalled_after: 0\n"))
    assert any(p.startswith("sync.interval: must be greater than 0") for p in probs)
    assert any(p.startswith("sync.stalled_after: must be greater than 0") for p in probs)
    assert any(p.startswith("sync.stale_after: expected a duration") for p in probs)


# ---------------------------------------------------------------- paths


def test_relative_paths_resolve_against_config_dir(tmp_path, monkeypatch):
    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "secrets").mkdir()
    (sub / "secrets" / "tok").write_text(TOKEN)
    (sub / "secrets" / "tok").chmod(0o600)
    monkeypatch.chdir(tmp_path)  # cwd must not matter
    cfg = load_config(write(sub, """\
        plex:
          token_file: secrets/tok
        cache:
          path: ../var/cache.db
        daemon:
          socket: s.sock
        """), {})
    assert cfg.plex.token_file == sub / "secrets/tok"
    assert cfg.cache.path == sub / "../var/cache.db"
    assert cfg.daemon.socket == sub / "s.sock"
    assert cfg.source == sub / "config.yaml"
    # A relative --config path is made absolute too.
    cfg2 = load_config("etc/config.yaml", {})
    assert cfg2.source == sub / "config.yaml" and cfg2.daemon.socket == sub / "s.sock"


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(write(tmp_path, "cache:\n  path: ~/c.db\n"), {})
    assert cfg.cache.path == tmp_path / "c.db"


# ---------------------------------------------------------------- config path


def test_config_path_precedence():
    assert config_path("/a.yaml", {"MEDIASAGE_CONFIG": "/b.yaml"}) == Path("/a.yaml")
    assert config_path(None, {"MEDIASAGE_CONFIG": "/b.yaml"}) == Path("/b.yaml")
    assert config_path(None, {}) == Path("config.yaml")
    assert config_path(None, {"MEDIASAGE_CONFIG": ""}) == Path("config.yaml")


def test_env_config_is_used(tmp_path):
    p = write(tmp_path, "plex:\n  library: FromEnv\n", name="other.yaml")
    cfg = load_config(None, {"MEDIASAGE_CONFIG": str(p)})
    assert cfg.plex.library == "FromEnv" and cfg.source == p


def test_cli_path_beats_env(tmp_path):
    a = write(tmp_path, "plex:\n  library: A\n", name="a.yaml")
    b = write(tmp_path, "plex:\n  library: B\n", name="b.yaml")
    assert load_config(a, {"MEDIASAGE_CONFIG": str(b)}).plex.library == "A"


def test_missing_default_config_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, {})
    assert cfg.source is None
    assert cfg.cache.path == tmp_path / "data/library_cache.db"
    assert cfg.daemon.socket == tmp_path / "data/mediasaged.sock"


def test_default_config_in_cwd_is_read(tmp_path, monkeypatch):
    write(tmp_path, "plex:\n  library: Here\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, {})
    assert cfg.plex.library == "Here" and cfg.source == tmp_path / "config.yaml"


@pytest.mark.parametrize("how", ["cli", "env"])
def test_missing_explicit_config_is_an_error(tmp_path, how):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as exc:
        if how == "cli":
            load_config(missing, {})
        else:
            load_config(None, {"MEDIASAGE_CONFIG": str(missing)})
    assert exc.value.problems == [f"{missing}: config file not found"]


# ---------------------------------------------------------------- token


def test_env_token_beats_file_and_config(tmp_path):
    write(tmp_path, "from-file\n", name="tok")
    p = write(tmp_path, "plex:\n  token: from-config\n  token_file: tok\n")
    assert load_config(p, {"MEDIASAGE_PLEX_TOKEN": "from-env"}).plex.token == "from-env"
    assert load_config(p, {}).plex.token == "from-file"
    assert load_config(p, {"MEDIASAGE_PLEX_TOKEN": ""}).plex.token == "from-file"
    p2 = write(tmp_path, "plex:\n  token: from-config\n", name="c2.yaml")
    assert load_config(p2, {}).plex.token == "from-config"


def test_env_token_means_token_file_not_read(tmp_path):
    p = write(tmp_path, "plex:\n  token_file: missing-tok\n")
    assert load_config(p, {"MEDIASAGE_PLEX_TOKEN": "env"}).plex.token == "env"
    assert problems_of(p) == [f"plex.token_file: {tmp_path / 'missing-tok'}: no such file"]


def test_token_file_problems_name_the_key(tmp_path):
    (tmp_path / "dir").mkdir()
    write(tmp_path, "  \n", name="empty")
    for target, why in [("dir", "is a directory"), ("empty", "file is empty")]:
        p = write(tmp_path, f"plex:\n  token_file: {target}\n")
        assert problems_of(p) == [f"plex.token_file: {tmp_path / target}: {why}"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_token_file(tmp_path):
    write(tmp_path, TOKEN, name="tok", mode=0o000)
    probs = problems_of(write(tmp_path, "plex:\n  token_file: tok\n"))
    assert probs == [f"plex.token_file: {tmp_path / 'tok'}: permission denied"]


def test_token_null_or_empty_means_no_token(tmp_path):
    assert load_config(write(tmp_path, "plex:\n  token:\n  token_file: ''\n"), {}).plex.token == ""


def test_world_readable_config_with_token_warns(tmp_path):
    p = write(tmp_path, f"plex:\n  token: {TOKEN}\n", mode=0o644)
    cfg = load_config(p, {})
    assert cfg.warnings == ("config.yaml holds the Plex token and is readable by other users; "
                            "chmod 600 it or use plex.token_file",)
    p.chmod(0o640)  # group-readable counts too
    assert len(load_config(p, {}).warnings) == 1
    p.chmod(0o600)
    assert load_config(p, {}).warnings == ()
    # No token in the file: nothing to warn about.
    q = write(tmp_path, "plex:\n  library: x\n", name="q.yaml", mode=0o644)
    assert load_config(q, {"MEDIASAGE_PLEX_TOKEN": TOKEN}).warnings == ()


def test_readable_token_file_warns(tmp_path):
    write(tmp_path, TOKEN, name="tok", mode=0o644)
    cfg = load_config(write(tmp_path, "plex:\n  token_file: tok\n"), {})
    assert len(cfg.warnings) == 1 and "plex.token_file" in cfg.warnings[0]
    assert TOKEN not in cfg.warnings[0]


def test_token_never_in_any_message(tmp_path):
    write(tmp_path, TOKEN, name="tok", mode=0o644)
    cases = [
        f"plex:\n  token: {TOKEN}\n  url: http://x/?X-Plex-Token={TOKEN}\n  timeout: -1\n  bogus: {TOKEN}\n",
        f"plex:\n  token: [{TOKEN}\n",                      # YAML syntax error on the token line
        f"plex:\n  token: {TOKEN}\n  token: {TOKEN}\n",     # duplicate key
        "plex:\n  token: 123456789012\n",                    # not a string
        f"plex:\n  token: \"{TOKEN}\n",                     # unterminated quote
        f"plex: {TOKEN}\n",                                  # section not a mapping
        f"{TOKEN}\n",                                        # top level not a mapping
        f"plex:\n  token: {TOKEN}\nsync:\n  page_size: 0\n",
    ]
    for i, text in enumerate(cases):
        p = write(tmp_path, text, name=f"c{i}.yaml", mode=0o644)
        with pytest.raises(ConfigError) as exc:
            load_config(p, {"MEDIASAGE_PLEX_TOKEN": TOKEN})
        blob = " ".join(exc.value.problems) + str(exc.value) + repr(exc.value)
        assert TOKEN not in blob, text
        assert "123456789012" not in blob
    # and in warnings
    cfg = load_config(write(tmp_path, f"plex:\n  token: {TOKEN}\n  token_file: tok\n", mode=0o644), {})
    assert cfg.warnings and not any(TOKEN in w for w in cfg.warnings)


# ---------------------------------------------------------------- validation


def test_unknown_key_is_named(tmp_path):
    probs = problems_of(write(tmp_path, "sync:\n  page_sise: 500\n"))
    assert len(probs) == 1
    assert probs[0].startswith("sync.page_sise: unknown key")
    assert "page_size" in probs[0]  # suggestion
    assert problems_of(write(tmp_path, "plexx:\n  url: x\n", name="b.yaml"))[0].startswith(
        "plexx: unknown key")


def test_all_problems_reported_together(tmp_path):
    probs = problems_of(write(tmp_path, """\
        plex:
          url: ftp://plex
          library: ""
          timeout: 0
          verify_ssl: "yes please"
        cache:
          path: 5
        sync:
          page_sise: 10
          page_size: 10001
          interval: 5 minutes
          retries: 11
          live_keywords: live
          plex_events: maybe
        daemon:
          socket_mode: "0999"
          allowed_uids: [-1, "x", 1000]
          read_only_uids: 7
          log_level: LOUD
        extra: 1
        """))
    keys = [p.split(":", 1)[0] for p in probs]
    assert sorted(keys) == sorted([
        "extra", "sync.page_sise", "plex.url", "plex.library", "plex.timeout", "plex.verify_ssl",
        "cache.path", "sync.page_size", "sync.interval", "sync.retries", "sync.live_keywords",
        "sync.plex_events", "daemon.socket_mode", "daemon.allowed_uids[0]",
        "daemon.allowed_uids[1]", "daemon.read_only_uids", "daemon.log_level"])
    assert "sync.interval: expected a duration like 30s, 15m, 24h, 7d or off, got '5 minutes'" in probs
    assert "sync.page_size: must be from 1 to 10000, got 10001" in probs
    exc = ConfigError(probs)
    assert "plex.url" in str(exc) and "daemon.log_level" in str(exc)


@pytest.mark.parametrize("snippet,key", [
    ("plex:\n  url: 127.0.0.1:32400\n", "plex.url"),
    ("plex:\n  url: http://\n", "plex.url"),
    ("plex:\n  library: 2024\n", "plex.library"),
    ("plex:\n  timeout: -3\n", "plex.timeout"),
    ("plex:\n  timeout: true\n", "plex.timeout"),
    ("plex:\n  verify_ssl: 1\n", "plex.verify_ssl"),
    ("sync:\n  page_size: 0\n", "sync.page_size"),
    ("sync:\n  page_size: 10.5\n", "sync.page_size"),
    ("sync:\n  page_size: \"100\"\n", "sync.page_size"),
    ("sync:\n  retries: -1\n", "sync.retries"),
    ("sync:\n  live_keywords: [live, '']\n", "sync.live_keywords[1]"),
    ("sync:\n  dated_titles_are_live: 'true'\n", "sync.dated_titles_are_live"),
    ("sync:\n  separate_cpus: 2\n", "sync.separate_cpus"),
    ("daemon:\n  socket_mode: rw\n", "daemon.socket_mode"),
    ("daemon:\n  socket_mode: '1777'\n", "daemon.socket_mode"),
    ("daemon:\n  socket_mode: '0440'\n", "daemon.socket_mode"),
    ("daemon:\n  socket_mode: 0660.0\n", "daemon.socket_mode"),
    ("daemon:\n  allowed_uids: [true]\n", "daemon.allowed_uids[0]"),
    ("daemon:\n  log_level: 3\n", "daemon.log_level"),
    ("daemon:\n  socket: ''\n", "daemon.socket"),
    ("sync: [1, 2]\n", "sync"),
])
def test_bad_values_name_the_key(tmp_path, snippet, key):
    probs = problems_of(write(tmp_path, snippet))
    assert len(probs) == 1 and probs[0].startswith(key + ": "), probs


@pytest.mark.parametrize("written,mode", [
    ('"0660"', 0o660), ('"660"', 0o660), ('"0o640"', 0o640), ("0660", 0o660), ("660", 0o660),
    ("0o600", 0o600), ('"0666"', 0o666), ("'0777'", 0o777)])
def test_socket_mode_forms(tmp_path, written, mode):
    cfg = load_config(write(tmp_path, f"daemon:\n  socket_mode: {written}\n  allowed_uids: [5]\n"), {})
    assert cfg.daemon.socket_mode == mode


def test_world_connectable_socket_warns(tmp_path):
    cfg = load_config(write(tmp_path, "daemon:\n  socket_mode: '0666'\n"), {})
    assert any("daemon.socket_mode 0666" in w for w in cfg.warnings)


def test_long_socket_path_warns(tmp_path):
    cfg = load_config(write(tmp_path, "daemon:\n  socket: /" + "x" * 120 + "\n"), {})
    assert any(w.startswith("daemon.socket:") for w in cfg.warnings)


def test_url_trailing_slash_and_path_kept(tmp_path):
    cfg = load_config(write(tmp_path, "plex:\n  url: HTTP://10.0.0.2:32400/plex/\n"), {})
    assert cfg.plex.url == "HTTP://10.0.0.2:32400/plex"


def test_empty_keyword_list_allowed(tmp_path):
    assert load_config(write(tmp_path, "sync:\n  live_keywords: []\n"), {}).sync.live_keywords == ()


# ---------------------------------------------------------------- YAML errors


def test_yaml_syntax_error_has_line_number(tmp_path):
    probs = problems_of(write(tmp_path, "plex:\n  url: http://x\n  library: [Music\nsync:\n  retries: 1\n"))
    assert len(probs) == 1
    assert "invalid YAML at line " in probs[0] and str(tmp_path / "config.yaml") in probs[0]


def test_tab_indentation_error_line(tmp_path):
    probs = problems_of(write(tmp_path, "plex:\n\turl: x\n"))
    assert "line 2" in probs[0]


def test_duplicate_key_is_an_error(tmp_path):
    probs = problems_of(write(tmp_path, "sync:\n  retries: 1\n  retries: 2\n"))
    assert probs == [f"{tmp_path / 'config.yaml'}: invalid YAML at line 3, column 3: duplicate key 'retries'"]


def test_top_level_must_be_mapping(tmp_path):
    probs = problems_of(write(tmp_path, "- a\n- b\n"))
    assert "expected a mapping" in probs[0]


def test_config_file_is_a_directory(tmp_path):
    (tmp_path / "d.yaml").mkdir()
    assert "is a directory" in problems_of(tmp_path / "d.yaml")[0]


def test_config_error_carries_source(tmp_path):
    p = write(tmp_path, "sync:\n  retries: 99\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, {})
    assert exc.value.source == p and str(p) in str(exc.value)


def test_direct_construction_has_defaults():
    cfg = Config()
    assert cfg.sync.page_size == 1000 and cfg.daemon.socket_mode == 0o660 and cfg.source is None
