"""``rpc.discover`` of the real daemon: valid OpenRPC (against the meta-schema shipped in
tests/data/openrpc), and documenting enough that a client can be written from it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.support import RpcFailure

DATA = Path(__file__).parent / "data" / "openrpc"
META = json.loads((DATA / "open-rpc-meta-schema-1.14.9.json").read_text())
JSON_SCHEMA_META = json.loads((DATA / "json-schema-tools-meta-schema-1.8.0.json").read_text())
REGISTRY = Registry().with_resources([
    (uri, Resource.from_contents(JSON_SCHEMA_META, default_specification=DRAFT7))
    for uri in ("https://meta.json-schema.tools", "https://meta.json-schema.tools/")
])
EVENTS = {"sync.started", "sync.progress", "sync.finished", "library.changed"}
READS_CACHE = {"tracks.query", "tracks.get", "library.stats", "tracks.match"}


def meta_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(META, registry=REGISTRY)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(document)]


def schema_errors(schema: dict, value) -> list[str]:
    return [e.message[:200] for e in jsonschema.Draft7Validator(schema).iter_errors(value)]


@pytest.fixture
async def document(daemon):
    return await daemon.call("rpc.discover")


def test_the_meta_schema_check_is_not_vacuous():
    assert meta_errors({"openrpc": "1.2.6", "info": {"title": "x", "version": "1"}, "methods": []}) == []
    assert meta_errors({"openrpc": "9", "info": {}, "methods": [{"params": []}], "bogus": 1})
    bad_error = {"openrpc": "1.2.6", "info": {"title": "x", "version": "1"},
                 "methods": [{"name": "m", "params": [], "errors": [{"code": "x"}]}]}
    assert meta_errors(bad_error)


async def test_rpc_discover_is_valid_openrpc(document):
    assert meta_errors(document) == []
    assert document["openrpc"].startswith("1.2")


async def test_every_method_and_param_is_described(document):
    for method in document["methods"]:
        assert method.get("summary") and method.get("description"), method["name"]
        for param in method["params"]:
            assert param.get("description"), (method["name"], param["name"])
        jsonschema.Draft7Validator.check_schema(method["result"]["schema"])
        result = method["result"]["schema"]
        assert result.get("properties") or result.get("$ref"), f"{method['name']}: bare result schema"


async def test_errors_name_our_application_codes(document):
    by_name = {m["name"]: {e["code"] for e in m["errors"]} for m in document["methods"]}
    for name, codes in by_name.items():
        if name in READS_CACHE:
            assert -32001 in codes, name
        if any(m["name"] == name and m.get("x-writes") for m in document["methods"]):
            assert -32003 in codes, name
    components = {e["code"] for e in document["components"]["errors"].values()}
    assert {-32700, -32600, -32601, -32602, -32603, -32001, -32002, -32003} <= components


async def test_examples_agree_with_the_schemas(document):
    for method in document["methods"]:
        if method["name"] != "rpc.discover":
            assert method["examples"], method["name"]
        params_schema = {"type": "object",
                         "properties": {p["name"]: p["schema"] for p in method["params"]},
                         "required": [p["name"] for p in method["params"] if p.get("required")],
                         "additionalProperties": False}
        for example in method["examples"]:
            args = {p["name"]: p["value"] for p in example["params"]}
            assert schema_errors(params_schema, args) == [], (method["name"], example)
            assert schema_errors(method["result"]["schema"], example["result"]["value"]) == [], method["name"]


async def test_events_are_described_as_an_extension(document):
    events = {e["name"]: e for e in document["x-events"]}
    assert set(events) == EVENTS
    for event in events.values():
        assert event["summary"]
        jsonschema.Draft7Validator.check_schema(event["params"]["schema"])


async def test_real_answers_match_the_documented_result_schemas(synced_daemon):
    document = await synced_daemon.call("rpc.discover")
    results = {m["name"]: m["result"]["schema"] for m in document["methods"]}
    calls = {"daemon.info": {}, "library.status": {}, "sync.status": {}, "sync.history": {},
             "tracks.query": {"limit": 3}, "library.stats": {}, "rpc.discover": {},
             "events.subscribe": {"events": ["sync.finished"]}}
    for name, params in calls.items():
        value = await synced_daemon.call(name, **params)
        assert schema_errors(results[name], value) == [], name
    with pytest.raises(RpcFailure):
        await synced_daemon.call("no.such")
