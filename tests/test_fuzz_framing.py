"""Every input gets an answer (#10 item 5): a property-based fuzz through the real daemon.

Lone surrogates, integers beyond 64 bits and non-finite numbers (NaN, ±Infinity,
1e400) are put in every position of requests and batches — id, method, jsonrpc,
a member name, a param name, a param value, inside a list param, positional
params — and sent over the real socket. Each request object must get exactly
the answer the README promises, never -32603, never a lost batch, and every
answer line must be strict JSON in valid UTF-8.
"""

from __future__ import annotations

import asyncio
import json
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SURROGATES = ["\ud800", "a\udfffb", "\udc00\ud800", "é\udbff"]
HUGE_INTS = [2 ** 63, -(2 ** 63) - 1, 10 ** 30, 2 ** 200]
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]
BASES = [
    ("sync.status", {"job_id": 1}),
    ("sync.history", {"limit": 3}),
    ("tracks.query", {"artist": "x", "limit": 5, "year_min": 1990, "genres": ["Rock"]}),
    ("tracks.get", {"rating_keys": ["1", "2"]}),
    ("library.stats", {"min_rating": 5}),
    ("daemon.info", {}),
    ("library.status", {}),
]
OUTSIDE = ("id", "method", "jsonrpc", "member")
INSIDE = ("param_name", "param_value", "nested", "params_list")


class Raw(str):
    """JSON text written as it is (NaN, 1e400: Python's json cannot write them)."""


def dump(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(dump, value)) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate goes out as the escape \udXXX


@st.composite
def bad_values(draw):
    kind = draw(st.sampled_from(["surrogate", "huge", "nonfinite"]))
    if kind == "surrogate":
        return kind, draw(st.sampled_from(SURROGATES))
    if kind == "huge":
        return kind, draw(st.sampled_from(HUGE_INTS) | st.integers(min_value=2 ** 63, max_value=2 ** 300))
    return kind, Raw(draw(st.sampled_from(NON_FINITE)))


@st.composite
def requests(draw, ident):
    """(request object, expected answer: None | (id, code or "ok"))."""
    method, params = draw(st.sampled_from(BASES))
    request = {"jsonrpc": "2.0", "method": method, "params": dict(params)}
    notification = draw(st.booleans()) and draw(st.booleans())
    if not notification:
        request["id"] = ident
    if not draw(st.booleans()):
        return request, None if notification else (ident, "ok")
    kind, bad = draw(bad_values())
    positions = list(OUTSIDE + INSIDE)
    if kind != "surrogate":
        positions.remove("param_name")  # member names are strings
    position = draw(st.sampled_from(positions))
    if position == "id":
        request["id"] = bad
    elif position in ("method", "jsonrpc"):
        request[position] = bad
    elif position == "member":
        request[bad if kind == "surrogate" else "extra"] = "x" if kind == "surrogate" else bad
    elif position == "param_name":
        request["params"][bad] = 1
    elif position == "param_value":
        name = draw(st.sampled_from(sorted(request["params"]) or ["limit"]))
        request["params"][name] = bad
    elif position == "nested":
        request["params"]["genres"] = ["Rock", {"deep": [bad]}]
    else:
        request["params"] = [1, bad]
    if position == "id" and kind == "huge":
        return request, (bad, "ok")  # a big integer is a fine id: echoed, answered
    if position in OUTSIDE:
        return request, (None, -32700 if kind == "surrogate" else -32600)
    if "id" not in request:
        return request, None  # a notification gets no answer, not even an error
    return request, (ident, -32602)


@st.composite
def lines(draw):
    """One request or a batch of 1-5, and the answers expected."""
    if draw(st.booleans()):
        request, expected = draw(requests(0))
        return dump(request), False, [e for e in [expected] if e is not None]
    items = [draw(requests(i)) for i in range(draw(st.integers(1, 5)))]
    return dump([r for r, _ in items]), True, [e for _, e in items if e is not None]


def exchange(path: str, line: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(line.encode("ascii") + b"\n")
        sock.shutdown(socket.SHUT_WR)  # a half-close: the answers still come, then the daemon closes
        data = b""
        while chunk := sock.recv(1 << 16):
            data += chunk
        return data


def strict_json(data: bytes):
    def no_constants(name):
        raise AssertionError(f"{name} in an answer is not JSON")

    text = data.decode("utf-8")  # strict: valid UTF-8
    value = json.loads(text, parse_constant=no_constants)
    stack = [value]
    while stack:  # and no lone surrogate spelled as an escape either
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            item.encode("utf-8")
    return value


def outcome(answer: dict):
    if "result" in answer:
        return "ok"
    code = answer["error"]["code"]
    assert code != -32603, answer
    # A sound request may still be refused on its merits (not synced, no such job...).
    return code if code in (-32700, -32600, -32602) else "ok"


def check(path: str, line: str, batch: bool, expected: list) -> None:
    data = exchange(path, line)
    if not expected:
        assert data == b"", data
        return
    assert data.endswith(b"\n") and data.count(b"\n") == 1, data[:200]
    answers = strict_json(data)
    if batch:
        assert isinstance(answers, list)
    else:
        answers = [answers]
    got = sorted((json.dumps(a["id"]), outcome(a)) for a in answers)
    want = sorted((json.dumps(ident), code) for ident, code in expected)
    assert got == want, (line, answers)


async def test_every_input_gets_its_answer(synced_daemon):
    path = str(synced_daemon.socket)

    @settings(max_examples=250, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(lines())
    def fuzz(case):
        check(path, *case)

    await asyncio.to_thread(fuzz)
    assert "Traceback" not in synced_daemon.log()
    assert (await synced_daemon.call("library.status"))["track_count"] == 1500  # and it serves on


async def test_the_cases_of_the_report(synced_daemon):
    """The exact inputs #10 reported: no answer at all, -32603, or invalid JSON before."""
    path = str(synced_daemon.socket)
    cases = [
        ('{"jsonrpc":"2.0","id":"\\ud800","method":"daemon.info"}', False, [(None, -32700)]),
        ('{"jsonrpc":"2.0","id":1,"method":"daemon.info\\ud800"}', False, [(None, -32700)]),
        ('{"jsonrpc":"2.0","id":1,"method":"tracks.query","params":{"\\ud800":1}}', False, [(1, -32602)]),
        ('[{"jsonrpc":"2.0","id":1,"method":"tracks.query","params":{"artist":"\\ud800"}},'
         '{"jsonrpc":"2.0","id":2,"method":"daemon.info"}]', True, [(1, -32602), (2, "ok")]),
        ('{"jsonrpc":"2.0","id":1,"method":"tracks.query","params":{"genres":["\\udfff"]}}', False, [(1, -32602)]),
        ('{"jsonrpc":"2.0","id":1,"method":"sync.status","params":{"job_id":9223372036854775808}}', False,
         [(1, -32602)]),
        ('{"jsonrpc":"2.0","id":NaN,"method":"daemon.info"}', False, [(None, -32600)]),
        ('{"jsonrpc":"2.0","id":Infinity,"method":"daemon.info"}', False, [(None, -32600)]),
        ('[{"jsonrpc":"2.0","id":-Infinity,"method":"daemon.info"},{"jsonrpc":"2.0","id":3,"method":"daemon.info"}]',
         True, [(None, -32600), (3, "ok")]),
    ]
    for line, batch, expected in cases:
        await asyncio.to_thread(check, path, line, batch, expected)
    [answer] = [strict_json(await asyncio.to_thread(exchange, path, cases[2][0]))]
    assert answer["error"]["data"] == {"param": "\\ud800"}  # named, spelled as its escape
