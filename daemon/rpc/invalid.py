"""Name what is wrong with an invalid request (-32600), instead of a fixed
"The request failed schema validation".

Only the error path pays: :func:`problem` runs after the request validator has
refused a request object and says which member is missing or wrong. The check
itself (what counts as valid) stays the validator's; this only words it.
"""

from __future__ import annotations

import json
from typing import Any

from ..params import kind

_MEMBERS = ("jsonrpc", "method", "id", "params")


def problem(request: Any) -> str:
    """What makes ``request`` (parsed JSON) not a JSON-RPC 2.0 request, in words."""
    if isinstance(request, list):
        if not request:
            return "an empty batch"
        for index, item in enumerate(request):
            text = problem(item)
            if text:
                return f"batch item {index}: {text}"
        return ""
    if not isinstance(request, dict):
        return f"a request must be an object, not {kind(request)}"
    if "jsonrpc" not in request:
        return 'missing "jsonrpc" (must be "2.0")'
    if request["jsonrpc"] != "2.0":
        return f'"jsonrpc" must be "2.0", not {json.dumps(request["jsonrpc"])[:40]}'
    if "method" not in request:
        return 'missing "method"'
    if not isinstance(request["method"], str):
        return f'"method" must be a string, not {kind(request["method"])}'
    if "id" in request and not (request["id"] is None or type(request["id"]) in (str, int, float)):
        return f'"id" must be a string, a number or null, not {kind(request["id"])}'
    if "params" in request and not isinstance(request["params"], (list, dict)):
        return f'"params" must be an object or an array, not {kind(request["params"])}'
    extra = sorted(set(request) - set(_MEMBERS))
    if extra:
        return f"unknown member {json.dumps(extra[0])} (a request has only jsonrpc, method, id, params)"
    return ""

