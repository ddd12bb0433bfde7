"""config.yaml -> a frozen :class:`Config` (CONTRACT §5).

Everything the daemon reads from its config file goes through
:func:`load_config`, which either returns a fully validated, frozen
:class:`Config` or raises :class:`ConfigError` listing *every* problem found
(it collects problems instead of stopping at the first), each message naming
the key, e.g. ``sync.page_sise: unknown key``.

Rules decided here (the contract is silent on them; they are in the README):

* Config path: ``--config``, else ``$MEDIASAGE_CONFIG``, else ``./config.yaml``.
  An explicitly named file (``--config`` or the env var) must exist; the
  default ``./config.yaml`` may be absent, in which case every default applies
  and relative paths resolve against the current directory.
* An empty config file (or an empty section such as ``sync:``) means defaults;
  so do ``plex.token:`` / ``plex.token_file:`` left empty. A duration left
  empty (``interval:``) is an error: write ``off``.
* Durations: ``30s``, ``15m``, ``24h``, ``7d`` (a decimal like ``1.5h`` is
  fine), a bare number is seconds, and ``off`` (YAML's unquoted ``off``/``no``/
  ``false`` too) disables. ``sync.interval`` must be > 0 or off;
  ``sync.stale_after: 0`` means "always sync at startup".
* ``daemon.socket_mode`` is octal: ``"0660"``, ``"660"``, ``"0o660"`` and the
  unquoted YAML forms ``0660`` and ``660`` all mean rw for owner and group.
  It must be within 0..0777 and must give the owner read+write.
* Relative paths (``cache.path``, ``daemon.socket``, ``plex.token_file``)
  resolve against the config file's directory; ``~`` is expanded.
* Plex token precedence: ``$MEDIASAGE_PLEX_TOKEN`` (if set and non-empty) >
  ``plex.token_file`` (contents, whitespace stripped; missing, unreadable or
  empty is an error naming ``plex.token_file``; not read at all when the env
  var is set) > ``plex.token``. An empty token is allowed (Plex servers that
  allow unauthenticated local access).
* ``plex.url`` must be ``http(s)://host[:port][/path]`` (no query); a trailing ``/`` is dropped.
* ``daemon.log_level`` is case-insensitive and stored lower-case.
* Duplicate keys in the YAML are errors (PyYAML would silently keep the last).
* Warnings (non-fatal, in ``Config.warnings``): the config file holds a token
  and is readable by group/other; the token file is readable by group/other;
  the socket path is too long for a Unix socket; the socket mode lets every
  local user connect while ``allowed_uids`` is empty.
* The Plex token never appears in any problem or warning, nor in ``repr()``.
"""

from __future__ import annotations

import grp
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .config_check import (
    _Checker,
    _group_or_other_readable,
    _Loader,
    _parse_socket_mode,
    _scrub,
    _yaml_problem,
    _yaml_repr,
    parse_duration,
)
from .params import kind

__all__ = [
    "CacheConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "DEFAULT_CONFIG_PATH",
    "ENV_CONFIG",
    "ENV_PLEX_TOKEN",
    "LOG_LEVELS",
    "PlexConfig",
    "SyncConfig",
    "config_path",
    "load_config",
    "parse_duration",
]

ENV_CONFIG = "MEDIASAGE_CONFIG"
ENV_PLEX_TOKEN = "MEDIASAGE_PLEX_TOKEN"
DEFAULT_CONFIG_PATH = Path("config.yaml")
LOG_LEVELS = ("debug", "info", "warning", "error")

# Unix socket paths (sun_path) hold 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


# --------------------------------------------------------------------------- #
# The dataclass tree. Defaults are CONTRACT §5's; paths are resolved by
# load_config (a directly constructed Config keeps them relative).


@dataclass(frozen=True)
class PlexConfig:
    url: str = "http://127.0.0.1:32400"
    token: str = field(default="", repr=False)  # resolved token; never printed
    library: str = "Music"
    timeout: float = 30.0
    verify_ssl: bool = True
    token_file: Path | None = None


@dataclass(frozen=True)
class CacheConfig:
    path: Path = Path("data/library_cache.db")
    group: int | None = None  # gid: the database files are 0640 and this group's (else 0600)


@dataclass(frozen=True)
class SyncConfig:
    page_size: int = 1000
    interval: float | None = 86400.0  # seconds; None = no scheduled sync
    stale_after: float | None = 86400.0  # seconds; None = never sync at startup for staleness
    retries: int = 2
    live_keywords: tuple[str, ...] = ("live", "concert", "unplugged", "in concert", "bootleg")
    dated_titles_are_live: bool = True
    plex_events: bool = True
    separate_cpus: bool = True  # during a sync, the sync and the daemon use separate CPUs (cpus.py)
    concurrent_pages: int = 3  # listing/metadata requests a sync keeps in flight at once (plex/fetchers.py)
    stalled_after: float | None = 900.0  # seconds a sync worker may do nothing before its job is stopped (sync/stall.py)


@dataclass(frozen=True)
class DaemonConfig:
    socket: Path = Path("data/mediasaged.sock")
    socket_mode: int = 0o660
    allowed_uids: tuple[int, ...] = ()
    read_only_uids: tuple[int, ...] = ()
    log_level: str = "info"
    # Resource limits (README, "Limits").
    max_connections: int = 256  # clients connected at once; more get a -32004 line and are closed
    max_connections_per_uid: int = 64  # the same, per peer uid
    max_response_mib: int = 32  # bytes of one answer line (a whole batch's); over it: -32004


@dataclass(frozen=True)
class Config:
    plex: PlexConfig = field(default_factory=PlexConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    source: Path | None = None  # the file this came from; None = defaults only
    warnings: tuple[str, ...] = ()


class ConfigError(Exception):
    """The config is unusable. ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: Path | None = None):
        self.problems = list(problems)
        self.source = source
        text = "; ".join(self.problems)
        if source is not None and not text.startswith(str(source)):
            text = f"{source}: {text}"
        super().__init__(text)


def _group_id(c: _Checker, raw: Any) -> int | None:
    """``cache.group``: a group name or gid (None: no group access)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str):
        try:
            return grp.getgrnam(raw).gr_gid
        except KeyError:
            c.bad("cache.group", f"no group named {raw!r} on this system")
            return None
    c.bad("cache.group", f"expected a group name or gid, got {_yaml_repr(raw)}")
    return None


# --------------------------------------------------------------------------- #
# Public entry points


def config_path(cli_arg: str | os.PathLike | None, env: Mapping[str, str] | None = None) -> Path:
    """``--config`` value, else ``$MEDIASAGE_CONFIG``, else ``./config.yaml``."""
    if env is None:
        env = os.environ
    if cli_arg:
        return Path(cli_arg)
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file.

    ``path`` is the ``--config`` argument: given, the file must exist. ``None``
    means ``$MEDIASAGE_CONFIG`` (must exist too) or else ``./config.yaml``,
    which may be absent (then all defaults apply, relative to the current
    directory). Raises :class:`ConfigError` listing all problems.
    """
    if env is None:
        env = os.environ
    explicit = path is not None or bool(env.get(ENV_CONFIG))
    file = config_path(path, env)
    name = str(file)
    source: Path | None = file.absolute()
    # Secrets that must never appear in a message: the env token, and below
    # the config/file tokens and anything that looks like one in the raw text.
    raw_secrets: list[str] = [(env.get(ENV_PLEX_TOKEN) or "").strip()]

    data: Any = {}
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError([f"{name}: config file not found"], source) from None
        text, source = "", None
    except IsADirectoryError:
        raise ConfigError([f"{name}: is a directory, not a config file"], source) from None
    except PermissionError:
        raise ConfigError([f"{name}: permission denied reading the config file"], source) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: not valid UTF-8 text"], source) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read config file: {exc.strerror}"], source) from None

    # Anything that looks like a token value in the raw text is scrubbed from
    # messages, in case a YAML error message ever quotes it.
    raw_secrets += [m.group(1).strip("'\"") for m in
                    re.finditer(r"^\s*token\s*:\s*(\S+)", text, re.MULTILINE)]
    try:
        data = yaml.load(text, Loader=_Loader) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(_scrub([_yaml_problem(exc, name)], raw_secrets), source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{name}: expected a mapping of sections (plex, cache, sync, daemon) "
                           f"at the top level, got {kind(data, yaml=True)}"], source)

    base = (source.parent if source is not None else Path.cwd().absolute())
    c = _Checker(data, base)
    d_plex, d_cache, d_sync, d_daemon = PlexConfig(), CacheConfig(), SyncConfig(), DaemonConfig()

    # ---- plex
    url = c.string("plex", "url", d_plex.url, nonempty=True)
    m = re.fullmatch(r"(https?)://([^/?#\s]+)(/[^?#\s]*)?", url.strip(), re.IGNORECASE)
    if not m:
        shown = "" if "token" in url.lower() else f", got {url!r}"  # never echo a token
        c.bad("plex.url", f"expected an http:// or https:// URL like http://127.0.0.1:32400{shown}")
        url = d_plex.url
    else:
        url = url.strip().rstrip("/")
    file_token = "" if c.get("plex", "token", "") is None else c.string(
        "plex", "token", "", secret=True)
    raw_secrets.append(file_token)
    library = c.string("plex", "library", d_plex.library, nonempty=True)
    timeout = c.positive_number("plex", "timeout", d_plex.timeout)
    verify_ssl = c.boolean("plex", "verify_ssl", d_plex.verify_ssl)
    token_file = c.path("plex", "token_file", None)

    token = file_token
    env_token = (env.get(ENV_PLEX_TOKEN) or "").strip()
    if env_token:
        token = env_token
    elif token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            c.bad("plex.token_file", f"{token_file}: no such file")
        except PermissionError:
            c.bad("plex.token_file", f"{token_file}: permission denied")
        except IsADirectoryError:
            c.bad("plex.token_file", f"{token_file}: is a directory")
        except UnicodeDecodeError:
            c.bad("plex.token_file", f"{token_file}: not valid UTF-8 text")
        except OSError as exc:
            c.bad("plex.token_file", f"{token_file}: cannot read: {exc.strerror}")
        else:
            if not token:
                c.bad("plex.token_file", f"{token_file}: file is empty")
            elif _group_or_other_readable(token_file):
                c.warnings.append(
                    f"{token_file} (plex.token_file) is readable by other users; chmod 600 it")
    raw_secrets.append(token)
    if file_token.strip() and source is not None and _group_or_other_readable(source):
        c.warnings.append(
            f"{source.name} holds the Plex token and is readable by other users; "
            "chmod 600 it or use plex.token_file")

    # ---- cache
    cache_path = c.path("cache", "path", d_cache.path)
    cache_group = _group_id(c, c.get("cache", "group", None))

    # ---- sync
    page_size = c.integer("sync", "page_size", d_sync.page_size, 1, 10000)
    interval = c.duration("sync", "interval", d_sync.interval, allow_zero=False)
    stale_after = c.duration("sync", "stale_after", d_sync.stale_after, allow_zero=True)
    retries = c.integer("sync", "retries", d_sync.retries, 0, 10)
    concurrent_pages = c.integer("sync", "concurrent_pages", d_sync.concurrent_pages, 1, 8)
    stalled_after = c.duration("sync", "stalled_after", d_sync.stalled_after, allow_zero=False)
    kw = c.get("sync", "live_keywords", list(d_sync.live_keywords))
    live_keywords = d_sync.live_keywords
    if kw is None:
        live_keywords = ()
    elif not isinstance(kw, list):
        c.bad("sync.live_keywords", f"expected a list of strings, got {_yaml_repr(kw)}")
    else:
        ok = []
        for i, word in enumerate(kw):
            if not isinstance(word, str) or not word.strip():
                c.bad(f"sync.live_keywords[{i}]",
                      f"expected a non-empty string, got {_yaml_repr(word)}")
            else:
                ok.append(word.strip())
        live_keywords = tuple(ok)
    dated = c.boolean("sync", "dated_titles_are_live", d_sync.dated_titles_are_live)
    plex_events = c.boolean("sync", "plex_events", d_sync.plex_events)
    separate_cpus = c.boolean("sync", "separate_cpus", d_sync.separate_cpus)

    # ---- daemon
    sock = c.path("daemon", "socket", d_daemon.socket)
    if sock is not None and len(os.fsencode(str(sock))) > _MAX_SOCKET_PATH:
        c.warnings.append(
            f"daemon.socket: {sock} is {len(os.fsencode(str(sock)))} bytes long; "
            f"Unix socket paths are limited to {_MAX_SOCKET_PATH} bytes")
    raw_mode = c.get("daemon", "socket_mode", "0660")
    try:
        socket_mode = _parse_socket_mode(raw_mode)
        if socket_mode & 0o600 != 0o600:
            c.bad("daemon.socket_mode",
                  f"must give the owner read and write (like 0600 or 0660), got {format(socket_mode, '04o')}")
            socket_mode = d_daemon.socket_mode
    except ValueError:
        c.bad("daemon.socket_mode",
              f'expected an octal mode like "0660", got {_yaml_repr(raw_mode)}')
        socket_mode = d_daemon.socket_mode
    allowed = c.uids("daemon", "allowed_uids")
    read_only = c.uids("daemon", "read_only_uids")
    if socket_mode & 0o002 and not allowed:
        c.warnings.append(
            f"daemon.socket_mode {format(socket_mode, '04o')} lets every local user "
            "connect and daemon.allowed_uids is empty")
    level = c.get("daemon", "log_level", d_daemon.log_level)
    if not isinstance(level, str) or level.strip().lower() not in LOG_LEVELS:
        c.bad("daemon.log_level",
              f"expected one of {', '.join(LOG_LEVELS)}, got {_yaml_repr(level)}")
        level = d_daemon.log_level
    level = level.strip().lower()
    max_connections = c.integer("daemon", "max_connections", d_daemon.max_connections, 1, 65536)
    per_uid = c.integer("daemon", "max_connections_per_uid", d_daemon.max_connections_per_uid, 1, 65536)
    max_response_mib = c.integer("daemon", "max_response_mib", d_daemon.max_response_mib, 1, 1024)

    if c.problems:
        raise ConfigError(_scrub(c.problems, raw_secrets), source)

    return Config(
        plex=PlexConfig(url=url, token=token, library=library, timeout=timeout,
                        verify_ssl=verify_ssl, token_file=token_file),
        cache=CacheConfig(path=cache_path, group=cache_group),
        sync=SyncConfig(page_size=page_size, interval=interval, stale_after=stale_after,
                        retries=retries, live_keywords=live_keywords,
                        dated_titles_are_live=dated, plex_events=plex_events,
                        separate_cpus=separate_cpus, concurrent_pages=concurrent_pages,
                        stalled_after=stalled_after),
        daemon=DaemonConfig(socket=sock, socket_mode=socket_mode, allowed_uids=allowed,
                            read_only_uids=read_only, log_level=level, max_connections=max_connections,
                            max_connections_per_uid=per_uid, max_response_mib=max_response_mib),
        source=source,
        warnings=tuple(_scrub(c.warnings, raw_secrets)),
    )
