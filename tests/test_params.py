"""One request validator: what rpc.discover publishes is exactly what is enforced.

Every method's params are checked by `params.Params`, compiled from the schema the
OpenRPC document carries. An independent JSON Schema validator (jsonschema, draft 7,
OpenRPC's dialect) judging the published schema must agree with it on every value
below; and the rules the two old validators disagreed on hold for every method.
"""

from __future__ import annotations

import jsonschema
import pytest

from mediasaged import query
from mediasaged.params import InvalidParam, Params
from mediasaged.rpc.dispatch import openrpc_document
from mediasaged.rpc.methods import build_methods
from mediasaged.timeutil import parse_iso

METHODS = build_methods()
DOCUMENT = openrpc_document(METHODS)
VALUES = [None, True, False, 0, 1, -1, 2.0, 2.5, 7, 1000, 1001, 10000, 10001, "", "x", "auto", "full", "rock",
          "1990s", "199x", "2026-02-05", "2026-02-05T10:30:00Z", "yesterday", [], ["x"], [1], ["1990s"],
          ["sync.started"], ["nope"], ["x"] * 101, {}, {"a": 1}, "x" * 1001]


def published_object_schema(method: dict) -> dict:
    """The params object schema a client reads off the OpenRPC document."""
    return {"type": "object", "additionalProperties": False,
            "properties": {p["name"]: p["schema"] for p in method["params"]},
            "required": [p["name"] for p in method["params"] if p["required"]]}


def cases():
    for method in DOCUMENT["methods"]:
        names = [p["name"] for p in method["params"]]
        for name in names:
            for value in VALUES:
                yield method["name"], {name: value}
        yield method["name"], {"bogus": 1}
        yield method["name"], {}


def accepted(method: str, params: dict) -> bool:
    try:
        METHODS[method].params.check(params)
    except InvalidParam as exc:
        assert exc.param in params or exc.param in METHODS[method].params.required, exc
        return False
    return True


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_publishes_the_schema_it_enforces(method):
    published = published_object_schema(next(m for m in DOCUMENT["methods"] if m["name"] == method))
    checker = jsonschema.Draft7Validator(published)
    for name, params in cases():
        if name == method:
            assert accepted(method, params) == checker.is_valid(params), params


# a valid value for each required param, so that the others can be checked alone
REQUIRED = {"candidates": [], "rating_keys": [], "events": ["sync.started"]}


def test_integral_numbers_are_integers_everywhere():
    """2.0 is the integer 2 for every integer param (JSON Schema since draft 6); 2.5 never is."""
    for method in METHODS.values():
        base = {name: REQUIRED[name] for name in method.params.required}
        for name, schema in method.params.properties.items():
            if "integer" in schema.get("type", []):
                low = max(schema.get("minimum", 0), 0) + 2
                checked = method.params.check({**base, name: float(low)})
                assert checked == {**base, name: low} and type(checked[name]) is int, (method.name, name)
                with pytest.raises(InvalidParam):
                    method.params.check({**base, name: low + 0.5})


def test_null_means_not_given_for_every_optional_param():
    for method in METHODS.values():
        base = {name: REQUIRED[name] for name in method.params.required}
        for name in method.params.properties:
            if name in method.params.required:
                with pytest.raises(InvalidParam) as exc:
                    method.params.check({**base, name: None})
                assert exc.value.param == name
            else:
                assert method.params.check({**base, name: None}) == base, (method.name, name)


async def test_null_and_integral_numbers_over_the_socket(synced_daemon):
    """The cases the old validators refused: sync.start mode null is "auto", limit 2.0 is 2."""
    assert len((await synced_daemon.call("sync.history", limit=2.0))["jobs"]) == 1
    assert (await synced_daemon.call("tracks.query", limit=2.0))["total"] == 1500
    assert (await synced_daemon.call("sync.status", job_id=None))["job_id"] == 1
    unsubscribed = await synced_daemon.call("events.unsubscribe", events=None)
    assert unsubscribed == {"subscribed": []}
    started = await synced_daemon.call("sync.start", mode=None)
    job = await synced_daemon.wait_sync(started["job_id"])
    assert job["mode"] == "incremental" and job["state"] == "succeeded"  # "auto" on a complete cache


TIMES = ["2026-02-05", "2026-02-05T10:30:00Z", "2026-02-05T10:30:00z", "2026-02-05T10:30:00+01:00",
         "2026-02-05T10:30+0100", "2026-02-05T10:30:00-05", "2026-02-05T10:30:00.25Z", "2026-02-05T10:30:00,5",
         "2026-02-05 10:30", "2026-02-05T10", "2026-02-30", "2026-13-01", "2026-02-05T25:00",
         "20260205T103000", "2026-W05-4", "2026-036", " 2026-02-05", "2026-02-05\n", "٢٠٢٦-٠٢-٠٥", "2026-02-05Z",
         "2026-02-05T10:30:00+01:00:30", "yesterday", ""]


@pytest.mark.parametrize("text", TIMES)
def test_time_params_follow_the_parsers_grammar(text):
    """The published pattern and parse_iso are one grammar; a date that doesn't exist is a semantic refusal."""
    try:
        parse_iso(text)
        parsed = True
    except ValueError:
        parsed = False
    try:
        query.tracks_query({"added_after": text})
        checked = True
    except InvalidParam as exc:
        assert str(exc) == "added_after: must be an ISO 8601 time like 2026-02-05T10:30:00Z or 2026-02-05"
        checked = False
    assert checked == parsed
    schema = query.QUERY_PARAMS.properties["added_after"]
    if jsonschema.Draft7Validator(schema).is_valid(text) != parsed:
        # the calendar is checked after the schema; and jsonschema's Python `re` lets "$" match
        # before a final newline, which ECMA 262 (JSON Schema's regex dialect) and fastjsonschema don't
        assert text in ("2026-02-30", "2026-13-01", "2026-02-05T25:00", "2026-02-05\n")


def test_formerly_accepted_times_outside_the_grammar_are_refused():
    """parse_iso took whatever datetime.fromisoformat took; now the published grammar decides."""
    for text in ("20260205T103000", "2026-W05-4", " 2026-02-05", "2026-02-05T10:30:00+01:00:30"):
        with pytest.raises(ValueError):
            parse_iso(text)


def test_refusals_name_the_param_and_say_what_it_must_be():
    p = Params({"n": {"type": "integer", "minimum": 1, "maximum": 9}, "s": {"enum": ["a", "b"]},
                "xs": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "r": {"type": "number", "minimum": 0, "maximum": 10}}, required=("xs",))
    def refusal(params):
        with pytest.raises(InvalidParam) as exc:
            p.check(params)
        return str(exc.value)
    assert refusal({"xs": [], "n": 0}) == "n: must be an integer between 1 and 9"
    assert refusal({"xs": [], "n": "3"}) == 'n: must be an integer between 1 and 9, not "3"'
    assert refusal({"xs": [], "s": "c"}) == "s: must be one of: a, b"
    assert refusal({"xs": [1]}) == "xs: must be an array of at most 2 items, each a string"
    assert refusal({}) == "xs: is required (an array of at most 2 items, each a string)"
    assert refusal({"xs": [], "q": 1}) == "q: unknown parameter (expected one of: n, s, xs, r)"
    assert refusal({"xs": [], "r": float("nan")}) == "r: must be a number between 0 and 10"
    assert refusal([1]) == "params: must be an object (parameters by name)"
    assert p.check({"xs": ["a"], "n": 3.0, "s": None}) == {"xs": ["a"], "n": 3}
