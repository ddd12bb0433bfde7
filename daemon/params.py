"""Request params: one validator, compiled from the JSON Schema that rpc.discover publishes.

Every RPC method's params are a :class:`Params`: built from the properties'
JSON Schemas, it holds the schema as published (``Params.schema``) and a
fastjsonschema function compiled from that very schema, so what is published
is exactly what is enforced. The rules (README, "Decisions"):

- params are an object (by name) or absent; unknown names are refused;
- null for an optional param means "not given": the published schema admits
  null for every optional param, and checked params have no null members;
- an integer is a JSON number without a fraction: ``2.0`` is 2 (JSON Schema
  since draft 6) and reaches the handler as ``int`` 2; ``2.5`` and ``true`` are refused;
- numbers are finite (NaN and Infinity are not JSON);
- times follow `timeutil.TIME_PATTERN`, the grammar `timeutil.parse_iso` reads.

A refusal is an :class:`InvalidParam` naming the param and saying what it must
be. Checks a schema cannot express (``year_min <= year_max``, a calendar date
that does not exist, text without words) are the callers', after this one.
May import: `timeutil`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import fastjsonschema

from .timeutil import TIME_PATTERN

TIME_PARAM: dict = {"type": "string", "pattern": TIME_PATTERN,
                    "title": "an ISO 8601 time like 2026-02-05T10:30:00Z or 2026-02-05"}


class InvalidParam(Exception):
    """A bad request parameter; ``str()`` is ``"<param>: <message>"``."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def nullable(schema: Mapping[str, Any]) -> dict:
    """``schema`` that also admits null."""
    out = dict(schema)
    if "type" not in out and "enum" not in out:
        return {"anyOf": [out, {"type": "null"}]}
    if "type" in out:
        kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = kinds if "null" in kinds else [*kinds, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


class Params:
    """The params of one method: the published schema and its compiled check."""

    def __init__(self, properties: Mapping[str, Mapping[str, Any]] | None = None, *,
                 required: tuple[str, ...] = (), description: str | None = None):
        properties = dict(properties or {})
        self.required = tuple(required)
        self.schema: dict = {
            "type": "object", "additionalProperties": False,
            "properties": {n: dict(s) if n in self.required else nullable(s) for n, s in properties.items()},
            **({"required": list(self.required)} if self.required else {}),
            **({"description": description} if description else {}),
        }
        self.properties: dict = self.schema["properties"]
        self._validate = fastjsonschema.compile(self.schema, use_default=False)  # defaults: the handlers'
        self._integers = frozenset(n for n, s in self.properties.items() if "integer" in _kinds(s))
        self._numbers = frozenset(n for n, s in self.properties.items() if "number" in _kinds(s))

    def check(self, params: Any) -> dict:
        """The params, checked: no null members, integers as ``int``. Raises InvalidParam."""
        if params is None:
            params = {}
        if type(params) is not dict:
            raise InvalidParam("params", "must be an object (parameters by name)")
        try:
            self._validate(params)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise self._refusal(params, exc) from None
        out = {}
        for name, value in params.items():
            if value is None:
                continue
            if type(value) is float:
                if name in self._integers:
                    value = int(value)
                elif name in self._numbers and not math.isfinite(value):
                    raise InvalidParam(name, f"must be {expected(self.properties[name])}")
            out[name] = value
        return out

    def _refusal(self, params: dict, exc: fastjsonschema.JsonSchemaValueException) -> InvalidParam:
        path = list(exc.path or [])[1:]
        if path:
            name = str(path[0])
        elif exc.rule == "additionalProperties":
            name = next(str(n) for n in params if n not in self.properties)
            names = ", ".join(self.properties)
            return InvalidParam(name, f"unknown parameter (expected one of: {names})" if names
                                else "unknown parameter (this method takes none)")
        elif exc.rule == "required":
            name = next(n for n in self.required if n not in params)
            return InvalidParam(name, f"is required ({expected(self.properties[name])})")
        else:  # not reached: the checks above cover every rule of an object schema we build
            return InvalidParam("params", exc.message)
        schema = self.properties[name]
        message = f"must be {expected(schema)}"
        if exc.rule == "type" and len(path) == 1:
            message += f", not {_shown(params[name])}"
        return InvalidParam(name, message)


def expected(schema: Mapping[str, Any]) -> str:
    """What a value of ``schema`` is, in words ("an integer between 0 and 100")."""
    if "title" in schema:
        return schema["title"]
    if "anyOf" in schema:
        return " or ".join(expected(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        return "one of: " + ", ".join(str(c) for c in schema["enum"] if c is not None)
    kinds = [k for k in _kinds(schema) if k != "null"]
    words = []
    for kind in kinds:
        if kind in ("integer", "number"):
            noun = "an integer" if kind == "integer" else "a number"
            lo, hi = schema.get("minimum"), schema.get("maximum")
            if lo is not None and hi is not None:
                noun += f" between {lo:g} and {hi:g}" if kind == "number" else f" between {lo} and {hi}"
            elif lo is not None:
                noun += f" of at least {lo}"
            elif hi is not None:
                noun += f" of at most {hi}"
        elif kind == "string":
            noun = "a string"
            if "maxLength" in schema:
                noun += f" of at most {schema['maxLength']} characters"
        elif kind == "boolean":
            noun = "true or false"
        elif kind == "array":
            noun = "an array"
            if "maxItems" in schema:
                noun += f" of at most {schema['maxItems']} items"
            if "items" in schema:
                noun += f", each {expected(schema['items'])}"
        else:
            noun = "an object" if kind == "object" else kind
        words.append(noun)
    return " or ".join(words) or "valid"


def _kinds(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type", [])
    return kind if isinstance(kind, list) else [kind]


def kind(value: Any, yaml: bool = False) -> str:
    """What a value is, in words, without quoting it (it might be a misplaced token).

    JSON's words (an array, an object) for requests; ``yaml``: YAML's (a list,
    a mapping) for the configuration file.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list" if yaml else "an array"
    if isinstance(value, dict):
        return "a mapping" if yaml else "an object"
    return type(value).__name__


def _shown(v: Any) -> str:
    """A refused value in a message: scalars as JSON (cut short), containers by kind."""
    if isinstance(v, (list, dict)):
        return kind(v)
    text = json.dumps(v, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"
