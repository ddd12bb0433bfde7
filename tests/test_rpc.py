"""rpc.validate_request accepts and refuses exactly what jsonrpcserver's jsonschema validator does."""

from __future__ import annotations

import itertools
import json

import pytest
from jsonrpcserver.main import default_validator

from mediasaged.track import RawJSON
from mediasaged.rpc.dispatch import _to_json, validate_request

VALUES = [None, True, False, 0, 1, 1.5, -2, "", "2.0", "x", [], [1], {}, {"a": 1}]
BASE = {"jsonrpc": "2.0", "method": "m"}


def candidates():
    yield from VALUES
    for key, value in itertools.product(["jsonrpc", "method", "id", "params", "extra"], VALUES):
        yield {**BASE, key: value}
    for drop in ("jsonrpc", "method"):
        yield {k: v for k, v in BASE.items() if k != drop}
    yield {**BASE, "id": 3, "params": {"a": 1}}
    yield {"jsonrpc": 2.0, "method": "m"}
    yield {"jsonrpc": "2.0 ", "method": "m"}
    for items in ([BASE], [BASE, {**BASE, "id": 1}], [BASE, 1], [BASE, {"method": "m"}], [[BASE]], [{}]):
        yield items


def verdict(check, obj) -> bool:
    try:
        check(obj)
    except Exception:  # noqa: BLE001 - any exception means "invalid request" to jsonrpcserver
        return False
    return True


@pytest.mark.parametrize("obj", list(candidates()), ids=lambda o: json.dumps(o)[:60])
def test_validate_request_matches_jsonschema(obj):
    assert verdict(validate_request, obj) == verdict(default_validator, obj)


def test_serializer_splices_raw_json_and_is_json_dumps_otherwise():
    plain = {"jsonrpc": "2.0", "result": {"a": ["é", 1.5, None, True], "b": {"c": "\u2028\n"}}, "id": "x"}
    compact = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    assert _to_json(plain) == compact
    assert _to_json([plain, {"jsonrpc": "2.0", "error": {"code": -32601}, "id": 2}]) == json.dumps(
        [plain, {"jsonrpc": "2.0", "error": {"code": -32601}, "id": 2}], ensure_ascii=False, separators=(",", ":"))
    tracks = [{"title": "Jóga \"x\"", "n": 1}]
    raw = {"jsonrpc": "2.0", "result": {"total": 1, "tracks": RawJSON(json.dumps(tracks)), "s": None}, "id": 7}
    assert json.loads(_to_json(raw)) == {"jsonrpc": "2.0", "result": {"total": 1, "tracks": tracks, "s": None}, "id": 7}


def test_the_daemon_provides_the_services_handlers_use(sdir):
    """`CallContext.services` is typed by the `Services` protocol; the daemon is what fills it."""
    from mediasaged.config import load_config
    from mediasaged.daemon import Daemon
    from mediasaged.rpc.dispatch import Services
    from tests.support import write_config

    daemon = Daemon(load_config(write_config(sdir)), None)
    assert isinstance(daemon, Services)
    for name in ("is_stale", "next_sync_at"):
        assert callable(getattr(daemon, name))
