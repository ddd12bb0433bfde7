"""One request line in, one answer line out: what JSON lets through that the daemon cannot use.

``decode`` parses a line with three differences from ``json.loads``:

* ``NaN``, ``Infinity``, ``-Infinity``, numbers that overflow a double
  (``1e400``) and integers too long to convert (over 4,300 digits) decode to
  an `OutOfRange` marker instead of a float or an exception. As an id that
  makes the request invalid (-32600), so it is never echoed as invalid JSON;
  as a param it is -32602.
* Strings are checked for lone surrogates (``"\\ud800"``: valid JSON syntax,
  but no Unicode text). In a param (its name or anywhere in its value) that is
  -32602 naming the param; anywhere else in a request object (id, method, a
  member name) that request is a -32700 parse error with id null. The other
  requests of a batch are answered as usual.
* Integers in params must fit in 64 bits (SQLite's integers), else -32602.

`screen` finds those problems in one request object; dispatch calls it before
anything else looks at the request. ``encode`` is the last step of every
answer: UTF-8 bytes, with anything unencodable escaped (``\\udXXX``) rather
than an answer lost.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BATCH = 100  # requests in one batch; a longer batch is refused with -32600 (README, "Limits")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_INT_DIGITS = 4300  # CPython's int/str conversion limit


class ParseError(ValueError):
    """The line is not JSON."""


class OutOfRange:
    """A number JSON can spell but the daemon cannot hold (NaN, ±Infinity, 1e400, 10**5000)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text[:20] + ("..." if len(text) > 20 else "")

    def __repr__(self) -> str:
        return self.text


def _parse_float(text: str) -> float | OutOfRange:
    value = float(text)
    return value if value - value == 0.0 else OutOfRange(text)  # inf - inf and nan - nan are nan


def _parse_int(text: str) -> int | OutOfRange:
    return int(text) if len(text.lstrip("-")) <= _MAX_INT_DIGITS else OutOfRange(text)


_DECODER = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int, parse_constant=OutOfRange)


def decode(line: str) -> Any:
    """The JSON value of one line (numbers as described above); ParseError if it is not JSON."""
    try:
        return _DECODER.decode(line)
    except (ValueError, RecursionError) as exc:
        raise ParseError(str(exc) if isinstance(exc, ValueError) else "nested too deeply") from None


def is_text(s: str) -> bool:
    """True unless ``s`` holds a lone surrogate (which no UTF-8 can carry)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(s: str) -> str:
    """``s`` safe to put in an answer: lone surrogates spelled as ``\\udXXX``."""
    return s if is_text(s) else s.encode("utf-8", "backslashreplace").decode("ascii", "replace")


def _walk(value: Any):
    """Every string (member names too) and number inside ``value``, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            yield item


def _problem(value: Any, *, ints: bool) -> str | None:
    """What makes ``value`` unusable, or None: a lone surrogate, a non-finite or too large number."""
    for item in _walk(value):
        kind = type(item)
        if kind is str:
            if not is_text(item):
                return f'"{shown(item)[:40]}" holds a lone surrogate, which is not Unicode text'
        elif kind is OutOfRange:
            return f"{item.text} is not a finite number the daemon can hold"
        elif ints and kind is int and not INT64_MIN <= item <= INT64_MAX:
            return "integer out of range (it must fit in 64 bits)"
    return None


def screen(request: Any) -> tuple[int, str, Any] | None:
    """(code, message, data) of the error one request object gets before dispatch, else None.

    -32700 for a lone surrogate outside params; -32600 for a number out of range
    outside params; -32602 naming the param for any problem inside params.
    """
    if type(request) is not dict:
        problem = _problem(request, ints=False)
        return (-32700, "Parse error", problem) if problem and "surrogate" in problem else None
    params = request.get("params")
    outside = {k: v for k, v in request.items() if k != "params"}
    problem = _problem(outside, ints=False)
    if problem is None and type(params) is not dict and type(params) is not list:
        problem = _problem(params, ints=False)  # a bad "params" that is no container: invalid anyway
    if problem is not None:
        if "surrogate" in problem:
            return -32700, "Parse error", problem
        return -32600, "Invalid request", problem
    if type(params) is dict:
        for name, value in params.items():
            if not is_text(name):
                return _invalid_param(shown(name), "the parameter name holds a lone surrogate, which is not Unicode text")
            problem = _problem(value, ints=True)
            if problem is not None:
                return _invalid_param(name, problem)
    elif type(params) is list:
        problem = _problem(params, ints=True)
        if problem is not None:
            return _invalid_param("params", problem)
    return None


def _invalid_param(name: str, why: str) -> tuple[int, str, Any]:
    return -32602, f"invalid params: {name}: {why}", {"param": name}


def error_response(code: int, message: str, data: Any = None, ident: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": ident}


def encode(text: str) -> bytes:
    """An answer as UTF-8; a lone surrogate that got this far is escaped, never the answer lost."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")
