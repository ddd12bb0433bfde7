"""``mediasagectl help [METHOD]``: the daemon's ``rpc.discover`` document as text (pure).

Like ``lightning-cli help``: without a method, every method grouped by its prefix
with a one-line summary; with one, its description, params, result, errors and
examples. Works with whatever the document carries (absent fields are skipped).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from .errors import MethodNotFound

WIDTH = 78


def _signature(method: dict) -> str:
    parts = []
    for param in method.get("params") or []:
        name = param.get("name", "?")
        parts.append(name if param.get("required") else f"[{name}]")
    return " ".join([method.get("name", "?"), *parts])


def _wrap(text: str, indent: str) -> list[str]:
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        lines += textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent) or [""]
    return lines


def schema_text(schema: Any) -> str:
    """A short type for a JSON Schema: ``integer``, ``"auto" | "full"``, ``[string]``, ``{a, b}``."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return " | ".join(schema_text(s) for s in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(schema_text({**schema, "type": k}) for k in kind)
    if kind == "array":
        return f"[{schema_text(schema.get('items'))}]"
    if kind == "object" and schema.get("properties"):
        return "{" + ", ".join(schema["properties"]) + "}"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    return str(kind or schema.get("title") or "any")


def overview(document: dict) -> list[str]:
    """Every method by group, with the first sentence of its summary or description."""
    groups: dict[str, list[dict]] = {}
    for method in document.get("methods") or []:
        groups.setdefault(method.get("name", "?").split(".")[0], []).append(method)
    lines: list[str] = []
    for group, methods in groups.items():
        lines += [f"=== {group} ===", ""]
        for method in methods:
            lines.append(_signature(method))
            summary = method.get("summary") or method.get("description") or ""
            if summary:
                lines += _wrap(summary.split("\n")[0], "    ")
            lines.append("")
    events = document.get("x-events") or []
    if events:
        lines += ["=== events (after events.subscribe) ===", ""]
        for event in events:
            lines.append(event.get("name", "?"))
            if event.get("summary") or event.get("description"):
                lines += _wrap(event.get("summary") or event.get("description"), "    ")
            lines.append("")
    lines.append("mediasagectl help METHOD shows one method in full.")
    return lines


def method_help(document: dict, name: str) -> list[str]:
    """One method in full; raises :class:`MethodNotFound` for an unknown name."""
    method = next((m for m in document.get("methods") or [] if m.get("name") == name), None)
    if method is None:
        raise MethodNotFound(-32601, f"no method {name!r}; `mediasagectl help` lists them")
    lines = [_signature(method), ""]
    for key in ("summary", "description"):
        if method.get(key) and not (key == "description" and method[key] == method.get("summary")):
            lines += _wrap(method[key], "    ") + [""]
    params = method.get("params") or []
    if params:
        lines.append("Params:")
        for param in params:
            schema = param.get("schema") or {}
            extra = "required" if param.get("required") else "optional"
            if "default" in schema:
                extra += f", default {json.dumps(schema['default'])}"
            lines.append(f"  {param.get('name')}: {schema_text(schema)} ({extra})")
            if param.get("description"):
                lines += _wrap(param["description"], "      ")
        lines.append("")
    result = method.get("result") or {}
    if result:
        lines.append(f"Result: {result.get('name', 'result')}: {schema_text(result.get('schema'))}")
        if result.get("description"):
            lines += _wrap(result["description"], "      ")
        lines.append("")
    errors = method.get("errors") or []
    if errors:
        lines.append("Errors:")
        for error in errors:
            lines += _wrap(f"{error.get('code')} {error.get('message', '')}", "  ")
            data = error.get("data")
            if isinstance(data, dict) and data.get("description"):
                lines += _wrap(data["description"], "      ")
        lines.append("")
    for example in method.get("examples") or []:
        lines.append(f"Example: {example.get('name', '')}".rstrip())
        args = {p.get("name"): p.get("value") for p in example.get("params") or []}
        lines.append("  " + json.dumps({"jsonrpc": "2.0", "id": 1, "method": name,
                                        **({"params": args} if args else {})}, ensure_ascii=False))
        if isinstance(example.get("result"), dict) and "value" in example["result"]:
            lines.append("  → " + json.dumps(example["result"]["value"], ensure_ascii=False))
        lines.append("")
    return lines
