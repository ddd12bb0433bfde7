"""Validation machinery behind :func:`mediasaged.config.load_config`.

The YAML loader (safe, rejects duplicate keys, remembers how integers were
spelled), duration and socket-mode parsing, the per-key value checker that
collects every problem, and scrubbing of secrets from messages. The rules
themselves are documented in :mod:`mediasaged.config`; :func:`parse_duration`
is re-exported from there and is part of its public API.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from mediasagectl.durations import EXAMPLES as DURATION_EXAMPLES, duration_seconds  # the one grammar (see there)

from .params import kind


# --------------------------------------------------------------------------- #
# Durations

_DURATION_HINT = f"expected a duration like {DURATION_EXAMPLES} or off"


def parse_duration(text: Any) -> float | None:
    """``"30s"``/``"15m"``/``"1.5h"``/``"7d"``/``"2w"`` -> seconds; ``"off"`` -> None.

    The grammar is mediasagectl's too (`mediasagectl.durations`). A bare
    non-negative number (int, float or numeric string) is seconds.
    ``False`` (YAML reads an unquoted ``off`` as false) also means off.
    Raises ValueError with a message that quotes the bad value.
    """
    if text is False:
        return None
    if text is True:
        raise ValueError(f"{_DURATION_HINT}, got {_yaml_repr(text)}")
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        if text.strip().lower() == "off":
            return None
        seconds = duration_seconds(text, bare_unit="s")
        if seconds is None:
            raise ValueError(f"{_DURATION_HINT}, got {_yaml_repr(text)}")
        value = seconds
    else:
        raise ValueError(f"{_DURATION_HINT}, got {_yaml_repr(text)}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{_DURATION_HINT}, got {_yaml_repr(text)}")
    return value


def _yaml_repr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, _RawInt):
        return value.text
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --------------------------------------------------------------------------- #
# YAML loading: safe loader that rejects duplicate keys and remembers how
# integers were spelled (YAML 1.1 reads an unquoted 0660 as octal 432; we
# want the digits the user wrote for socket_mode).


class _RawInt(int):
    text: str

    def __new__(cls, value: int, text: str) -> "_RawInt":
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _Loader(yaml.SafeLoader):
    pass


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    return _RawInt(value, str(node.value))


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {str(key)[:40]!r}", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError, name: str) -> str:
    """A YAML error as one line with the line number, without the file's text
    (PyYAML's own str() quotes the offending line, which may hold the token)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "invalid YAML"
    if mark is not None:
        return f"{name}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"{name}: invalid YAML: {problem}"


# --------------------------------------------------------------------------- #
# Validation helpers. Each returns the converted value or appends a problem
# and returns the default.

_SCHEMA: dict[str, tuple[str, ...]] = {
    "plex": ("url", "token", "token_file", "library", "timeout", "verify_ssl"),
    "cache": ("path", "group"),
    "sync": ("page_size", "interval", "stale_after", "retries", "live_keywords",
             "dated_titles_are_live", "plex_events", "separate_cpus", "concurrent_pages",
             "stalled_after"),
    "daemon": ("socket", "socket_mode", "allowed_uids", "read_only_uids", "log_level",
               "max_connections", "max_connections_per_uid", "max_response_mib"),
}


class _Checker:
    def __init__(self, data: dict, base: Path):
        self.data = data
        self.base = base
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.sections: dict[str, dict] = {}
        for name, value in data.items():
            if not isinstance(name, str) or name not in _SCHEMA:
                self.problems.append(f"{name}: unknown key" + _suggest(name, _SCHEMA))
        for section, keys in _SCHEMA.items():
            raw = data.get(section)
            if raw is None:
                raw = {}
            elif not isinstance(raw, dict):
                self.problems.append(f"{section}: expected a mapping of keys, got {kind(raw, yaml=True)}")
                raw = {}
            for key in raw:
                if not isinstance(key, str) or key not in keys:
                    self.problems.append(f"{section}.{key}: unknown key" + _suggest(key, keys))
            self.sections[section] = raw

    def has(self, section: str, key: str) -> bool:
        return key in self.sections[section]

    def get(self, section: str, key: str, default: Any) -> Any:
        return self.sections[section].get(key, default)

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    # -- typed getters -------------------------------------------------------

    def string(self, section: str, key: str, default: str, *, secret: bool = False,
               nonempty: bool = False) -> str:
        v = self.get(section, key, default)
        if not isinstance(v, str):
            got = "" if secret else f", got {_yaml_repr(v)}"
            self.bad(f"{section}.{key}", f"expected a string (quote it){got}")
            return default
        if nonempty and not v.strip():
            self.bad(f"{section}.{key}", "must not be empty")
            return default
        return v

    def boolean(self, section: str, key: str, default: bool) -> bool:
        v = self.get(section, key, default)
        if not isinstance(v, bool):
            self.bad(f"{section}.{key}", f"expected true or false, got {_yaml_repr(v)}")
            return default
        return v

    def integer(self, section: str, key: str, default: int, lo: int, hi: int) -> int:
        v = self.get(section, key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.bad(f"{section}.{key}", f"expected an integer from {lo} to {hi}, got {_yaml_repr(v)}")
            return default
        if not lo <= v <= hi:
            self.bad(f"{section}.{key}", f"must be from {lo} to {hi}, got {_yaml_repr(v)}")
            return default
        return int(v)

    def positive_number(self, section: str, key: str, default: float) -> float:
        v = self.get(section, key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad(f"{section}.{key}", f"expected a number of seconds > 0, got {_yaml_repr(v)}")
            return default
        if not (math.isfinite(v) and v > 0):
            self.bad(f"{section}.{key}", f"must be > 0, got {_yaml_repr(v)}")
            return default
        return float(v)

    def duration(self, section: str, key: str, default: float | None, *,
                 allow_zero: bool) -> float | None:
        if not self.has(section, key):
            return default
        v = self.get(section, key, default)
        if v is None:  # `interval:` with no value: ask for an explicit "off"
            self.bad(f"{section}.{key}", f"{_DURATION_HINT}, got null")
            return default
        try:
            seconds = parse_duration(v)
        except ValueError as exc:
            self.bad(f"{section}.{key}", str(exc))
            return default
        if seconds == 0 and not allow_zero:
            self.bad(f"{section}.{key}", "must be greater than 0 (use off to disable)")
            return default
        return seconds

    def path(self, section: str, key: str, default: Path | None) -> Path | None:
        v = self.get(section, key, default)
        if v is None or (default is None and v == ""):
            return None  # optional path left empty
        if isinstance(v, Path):
            p = v
        elif isinstance(v, str) and v.strip():
            p = Path(v)
        else:
            self.bad(f"{section}.{key}", f"expected a path, got {_yaml_repr(v)}")
            return self.resolve(default) if default is not None else None
        return self.resolve(p)

    def resolve(self, p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else self.base / p

    def uids(self, section: str, key: str) -> tuple[int, ...]:
        v = self.get(section, key, [])
        if v is None:
            return ()
        if not isinstance(v, list):
            self.bad(f"{section}.{key}", f"expected a list of uids, got {_yaml_repr(v)}")
            return ()
        out = []
        for i, uid in enumerate(v):
            if isinstance(uid, bool) or not isinstance(uid, int) or uid < 0 or uid > 0xFFFFFFFE:
                self.bad(f"{section}.{key}[{i}]",
                         f"expected a non-negative integer uid, got {_yaml_repr(uid)}")
            else:
                out.append(int(uid))
        return tuple(out)


def _suggest(name: Any, choices) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _parse_socket_mode(v: Any) -> int:
    """Octal mode -> int; raises ValueError."""
    if isinstance(v, _RawInt):
        text = v.text  # unquoted 0660 / 660 / 0o660 as written
    elif isinstance(v, str):
        text = v
    else:
        raise ValueError
    text = text.strip().lower()
    if text.startswith("0o"):
        text = text[2:]
    if not text or not re.fullmatch(r"[0-7]{1,4}", text):
        raise ValueError
    mode = int(text, 8)
    if mode > 0o777:
        raise ValueError
    return mode


def _group_or_other_readable(path: Path) -> bool:
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def _scrub(messages: list[str], secrets: list[str]) -> list[str]:
    secrets = [s for s in secrets if s and len(s) >= 4]
    out = []
    for m in messages:
        for s in secrets:
            m = m.replace(s, "***")
        out.append(m)
    return out
