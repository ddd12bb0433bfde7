"""-32600 names what is wrong with the request."""

from __future__ import annotations

import pytest

from mediasaged.rpc.invalid import problem
from tests.support import raw_exchange

CASES = [
    (b'{"id":1,"method":"daemon.info"}', 'missing "jsonrpc" (must be "2.0")'),
    (b'{"jsonrpc":"1.0","id":1,"method":"daemon.info"}', '"jsonrpc" must be "2.0", not "1.0"'),
    (b'{"jsonrpc":"2.0","id":1}', 'missing "method"'),
    (b'{"jsonrpc":"2.0","id":1,"method":5}', '"method" must be a string, not a number'),
    (b'{"jsonrpc":"2.0","id":true,"method":"daemon.info"}', '"id" must be a string, a number or null, not a boolean'),
    (b'{"jsonrpc":"2.0","id":1,"method":"daemon.info","params":"x"}',
     '"params" must be an object or an array, not a string'),
    (b'{"jsonrpc":"2.0","id":1,"method":"daemon.info","foo":2}',
     'unknown member "foo" (a request has only jsonrpc, method, id, params)'),
    (b'[{"jsonrpc":"2.0","id":1,"method":"daemon.info"},{"id":2,"method":"daemon.info"}]',
     'batch item 1: missing "jsonrpc" (must be "2.0")'),
    (b'[]', "an empty batch"),
    (b'"hello"', "a request must be an object, not a string"),
]


@pytest.mark.parametrize("line, text", CASES)
def test_problem_words(line, text):
    import json

    assert problem(json.loads(line)) == text


def test_a_valid_request_has_no_problem():
    assert problem({"jsonrpc": "2.0", "method": "m", "id": None, "params": []}) == ""


OBJECTS = [(line, text) for line, text in CASES if line.startswith(b"{")]


async def test_the_daemon_answers_with_what_is_wrong(daemon):
    lines = b"".join(line + b"\n" for line, _ in OBJECTS)
    answers = await raw_exchange(daemon.socket, lines + b'{"jsonrpc":"2.0","id":9,"method":"daemon.info"}\n',
                                 expect_lines=len(OBJECTS) + 1)
    for (line, text), answer in zip(OBJECTS, answers):
        assert answer["error"]["code"] == -32600, (line, answer)
        assert answer["error"]["data"] == text, (line, answer)
        assert answer["id"] is None
    assert answers[-1]["result"]["pid"] == daemon.proc.pid


async def test_a_batch_answers_each_item_and_names_what_is_wrong_with_one(daemon):
    (answer,) = await raw_exchange(
        daemon.socket, b'[{"jsonrpc":"2.0","id":1,"method":"daemon.info"},{"id":2,"method":"daemon.info"}]\n', 1)
    assert answer[0]["result"]["pid"] == daemon.proc.pid
    assert answer[1]["error"]["code"] == -32600
    assert answer[1]["error"]["data"] == 'missing "jsonrpc" (must be "2.0")'
