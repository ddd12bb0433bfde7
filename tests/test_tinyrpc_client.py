"""A JSON-RPC 2.0 client nobody here wrote, tinyrpc, against the real daemon.

tinyrpc's protocol layer makes the requests (named params, notifications, batches) and
judges every answer as it would any server's: ``"jsonrpc": "2.0"``, exactly one of
``result`` and ``error``, no other member, an error with ``code`` and ``message``, and an
id that answers a request it sent and has not had its answer yet (a reply to a
notification, or a batch item with a wrong id, fails it). Only the transport is ours:
one request per line on the Unix socket, one answer per line (CONTRACT), `LineTransport`.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from tinyrpc.client import RPCClient
from tinyrpc.protocols.jsonrpc import JSONRPCError, JSONRPCProtocol
from tinyrpc.transports import ClientTransport

pytestmark = pytest.mark.asyncio(loop_scope="module")  # one synced daemon for the module (read-only calls)


class LineTransport(ClientTransport):
    """tinyrpc's client transport for the daemon's socket: a message is a line."""

    def __init__(self, path: Path):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(10)
        self._sock.connect(str(path))
        self._lines = self._sock.makefile("rb")

    def send_message(self, message: bytes, expect_reply: bool = True) -> bytes:
        self._sock.sendall(message + b"\n")
        if not expect_reply:
            return b""
        line = self._lines.readline()
        assert line.endswith(b"\n"), f"the connection ended instead of answering: {line!r}"
        return line

    def close(self) -> None:
        self._lines.close()
        self._sock.close()


def session(path: Path, work):
    """Run ``work(client, protocol, transport)`` on one connection, in a thread (tinyrpc blocks)."""
    def run():
        transport = LineTransport(path)
        protocol = JSONRPCProtocol()
        try:
            return work(RPCClient(protocol, transport), protocol, transport)
        finally:
            transport.close()
    return asyncio.to_thread(run)


async def test_calls_with_named_params_get_what_our_own_client_gets(module_synced_daemon):
    def work(client, protocol, transport):
        return (client.call("daemon.info", None, None),
                client.call("tracks.query", None, {"sort": "title", "limit": 5}),
                client.call("library.stats", None, {"decades": ["1990s"]}))

    info, query, stats = await session(module_synced_daemon.socket, work)
    assert info["pid"] == module_synced_daemon.proc.pid
    assert query == await module_synced_daemon.call("tracks.query", sort="title", limit=5)
    assert len(query["tracks"]) == 5 and query["total"] > 5
    assert stats == await module_synced_daemon.call("library.stats", decades=["1990s"])


@pytest.mark.parametrize("method, params, code, words", [
    ("tracks.nosuch", {}, -32601, "Method not found"),
    ("tracks.query", {"limit": -1}, -32602, "limit"),
    ("tracks.query", {"sort": "colour"}, -32602, "sort"),
])
async def test_errors_reach_it_as_errors_with_their_code_and_words(module_synced_daemon, method, params, code, words):
    def work(client, protocol, transport):
        with pytest.raises(JSONRPCError) as raised:
            client.call(method, None, params)
        return raised.value

    error = await session(module_synced_daemon.socket, work)
    assert error._jsonrpc_error_code == code  # tinyrpc keeps the code there
    assert words in error.message


async def test_a_notification_gets_no_answer(module_synced_daemon):
    """A request without an id is answered by nothing: the next line on the connection
    answers the next call (tinyrpc refuses an id it is not waiting for)."""
    def work(client, protocol, transport):
        client.call("library.status", None, None, one_way=True)
        client.call("tracks.nosuch", None, None, one_way=True)  # not even an error
        return client.call("tracks.get", None, {"rating_keys": ["no-such-key"]})

    got = await session(module_synced_daemon.socket, work)
    assert got["tracks"] == [] and got["missing"] == ["no-such-key"]


async def test_a_batch_answers_each_request_once_and_no_notification(module_synced_daemon):
    def work(client, protocol, transport):
        batch = protocol.create_batch_request([
            protocol.create_request("library.status"),
            protocol.create_request("tracks.query", kwargs={"limit": 2}),
            protocol.create_request("sync.status", one_way=True),
            protocol.create_request("tracks.nosuch"),
            protocol.create_request("tracks.query", kwargs={"limit": "ten"}),
        ])
        asked = [r.unique_id for r in batch if r.unique_id is not None]
        replies = protocol.parse_reply(transport.send_message(batch.serialize()))
        return asked, replies

    asked, replies = await session(module_synced_daemon.socket, work)
    assert sorted(r.unique_id for r in replies) == sorted(asked)  # the notification left out
    by_id = {r.unique_id: r for r in replies}
    status, query, nosuch, bad = (by_id[i] for i in asked)
    assert status.result["track_count"] == query.result["total"] > 0
    assert len(query.result["tracks"]) == 2
    assert nosuch._jsonrpc_error_code == -32601
    assert bad._jsonrpc_error_code == -32602 and "limit" in bad.error
