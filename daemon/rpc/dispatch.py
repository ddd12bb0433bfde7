"""JSON-RPC 2.0 dispatch: one method table drives dispatch, validation and OpenRPC.

Every method is a :class:`Method`: a name, a handler ``async (ctx, params) ->
result``, its params (a `params.Params`: the JSON Schema published and the check
compiled from it), the JSON Schema of its result, and whether it changes state
(write methods are refused to read-only peers). :func:`jsonrpc_methods` wraps
the table for jsonrpcserver's ``async_dispatch`` (an explicit methods dict and a
per-connection context — never the global ``@method`` registry), and
:func:`openrpc_document` describes the very same table for ``rpc.discover``.

Errors never carry tracebacks or secrets: our own failures map to the codes of
CONTRACT §2, anything unexpected is logged here and answered with a bare -32603.

:func:`dispatch` frames a line: it decodes it (`framing`: lone surrogates,
non-finite and out-of-range numbers get their own answers), refuses a batch
over ``MAX_BATCH``, runs a batch's requests one after another, puts heavy
calls in the connection's fair lane (`lanes`) and replaces an answer over
``max_response`` bytes by a -32004 ``limit_exceeded`` error naming the limit.
jsonrpcserver answers each request object.
"""

from __future__ import annotations

import inspect
import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Protocol, runtime_checkable

from jsonrpcserver import Error, Success
from jsonrpcserver.async_main import dispatch_to_serializable

from .. import __version__
from ..params import InvalidParam, Params
from ..track import RawJSON
from ..store import NotSynced, State, Store, StoreError
from . import framing
from .invalid import problem as request_problem

if TYPE_CHECKING:  # types only: config is the daemon's, and server imports this module
    from ..config import Config
    from ..sync.jobs import Syncer
    from ..sync.owed import RetryPlan
    from .server import Connection

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_SYNCED = -32001
PLEX_UNREACHABLE = -32002
PERMISSION_DENIED = -32003
LIMIT_EXCEEDED = -32004  # added to CONTRACT §2's codes: a resource limit (README, "Limits")
MAX_RESPONSE = 32 << 20  # default of daemon.max_response_mib


class RpcError(Exception):
    """An error answer: raised by handlers, turned into a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def invalid_param(param: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid params: {param}: {message}", {"param": param})


Handler = Callable[[Any, dict], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """One RPC method. ``params`` is checked before the handler runs (the handler sees
    checked params: no nulls, integers as int) and is what rpc.discover publishes."""

    name: str
    summary: str
    handler: Handler
    params: Params = field(default_factory=Params)
    result: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    writes: bool = False
    # Cheap calls answer from memory or the one-row sync state and skip the
    # heavy lane (rpc/lanes.py); everything else queues fairly for a reader.
    cheap: bool = False


@runtime_checkable
class Services(Protocol):
    """What RPC handlers may use of the daemon (`daemon.Daemon` is the one implementation)."""

    config: Config  # the current config (SIGHUP may replace it)
    store: Store
    syncer: Syncer
    started_at: int  # unix seconds
    socket_path: Path
    retry: RetryPlan  # the owed sync, if any (library.status.sync_owed)

    def is_stale(self, state: State) -> bool:
        """Whether the cache is older than ``sync.stale_after`` (or empty)."""

    def next_sync_at(self) -> int | None:
        """When the schedule or the retry of an owed sync starts the next sync (unix seconds), else None."""


@dataclass
class CallContext:
    """What a handler sees: the daemon's services and the calling connection."""

    services: Services
    connection: Connection  # peer credentials, read_only, subscriptions


async def invoke(method: Method, ctx: CallContext, params: dict) -> Any:
    """Run one call and translate every failure into an RpcError."""
    if method.writes and ctx.connection.read_only:
        raise RpcError(PERMISSION_DENIED, "permission_denied", f"uid {ctx.connection.peer.uid} may not call {method.name}")
    try:
        return await method.handler(ctx, method.params.check(params))
    except InvalidParam as exc:
        raise RpcError(INVALID_PARAMS, f"invalid params: {exc}", {"param": exc.param}) from None
    except NotSynced:
        raise RpcError(NOT_SYNCED, "not_synced", "the library has never been synced") from None
    except StoreError as exc:  # the disk: the message names the cause and the file (never a secret)
        log.error("%s: %s", method.name, exc)
        raise RpcError(INTERNAL_ERROR, "Internal error", str(exc)) from None


def jsonrpc_methods(table: Mapping[str, Method]) -> dict[str, Callable[..., Awaitable[Any]]]:
    """The methods dict for ``async_dispatch``: params by name only."""

    def wrap(method: Method) -> Callable[..., Awaitable[Any]]:
        async def call(ctx: CallContext, *args: Any, **kwargs: Any) -> Any:
            if args:
                return Error(INVALID_PARAMS, "invalid params: params must be an object (by name)", {"param": "params"})
            try:
                async with nullcontext() if method.cheap else ctx.connection.heavy():
                    return Success(await invoke(method, ctx, kwargs))
            except RpcError as exc:
                return Error(exc.code, exc.message, exc.data)
            except Exception:  # noqa: BLE001 - the one place unexpected errors stop
                log.exception("internal error in %s", method.name)
                return Error(INTERNAL_ERROR, "Internal error")

        # jsonrpcserver binds every call against inspect.signature(); computing it
        # once here spares that per request (it is the same signature every time).
        call.__signature__ = inspect.signature(call)  # type: ignore[attr-defined]
        call.heavy = not method.cheap  # type: ignore[attr-defined]
        return call

    return {name: wrap(m) for name, m in table.items()}


async def dispatch(line: str, methods: Mapping[str, Callable[..., Any]], ctx: CallContext,
                   max_response: int = MAX_RESPONSE) -> bytes | None:
    """Answer one framed request (or batch) as UTF-8 bytes; None when nothing is to be answered."""
    try:
        request = framing.decode(line)
    except framing.ParseError as exc:
        return _encode(framing.error_response(-32700, "Parse error", str(exc)))
    if type(request) is not list:
        answer = await _answer(request, methods, ctx)
        return None if answer is None else _fit(_encode(answer), answer, max_response)
    if not request:
        return _encode(framing.error_response(-32600, "Invalid request", "an empty batch"))
    if len(request) > framing.MAX_BATCH:
        return _encode(framing.error_response(
            -32600, "Invalid request",
            f"a batch of {len(request)} requests is over the limit of {framing.MAX_BATCH} (MAX_BATCH)"))
    heavy = any(type(r) is dict and getattr(methods.get(r.get("method")), "heavy", False)
                for r in request if type(r) is dict and type(r.get("method")) is str)
    parts: list[bytes] = []
    size, full = 2, False
    async with ctx.connection.batch() if heavy else nullcontext():
        for item in request:
            answer = await _answer(item, methods, ctx, over=max_response if full else None)
            if answer is None:
                continue
            data = _encode(answer)
            if not full and size + len(data) + 1 > max_response:
                full = True
                data = _encode(_too_large(answer, max_response))
            answer = None  # the result itself is not kept while the next request runs: its bytes are
            parts.append(data)
            size += len(data) + 1
    if not parts:
        return None
    if len(parts) == 1:
        return b"[" + parts[0] + b"]"
    parts[0], parts[-1] = b"[" + parts[0], parts[-1] + b"]"
    return b",".join(parts)  # one copy of the answers, not three


async def _answer(item: Any, methods: Mapping[str, Callable[..., Any]], ctx: CallContext,
                  over: int | None = None) -> dict | None:
    """The answer to one request object (None for a notification).

    ``over``: the batch's answer is already over this many bytes; the request is
    not run and gets the limit error.
    """
    problem = framing.screen(item)
    if problem is not None:
        code, message, data = problem
        if code != INVALID_PARAMS:
            return framing.error_response(code, message, data)
        return framing.error_response(code, message, data, item["id"]) if "id" in item else None
    try:
        validate_request(item)
    except ValueError:  # say what is wrong (invalid.py), not just that it is
        return framing.error_response(-32600, "Invalid request",
                                      request_problem(item) or "The request failed schema validation")
    if over is not None:
        return _too_large(item, over) if "id" in item else None
    return await dispatch_to_serializable("", methods=methods, context=ctx, deserializer=lambda _: item,
                                          validator=_accept)


def _accept(request: Any) -> Any:
    return request


def _too_large(answer: dict, max_response: int) -> dict:
    return framing.error_response(
        LIMIT_EXCEEDED, "limit_exceeded",
        f"the answer is over {max_response / (1 << 20):g} MiB (daemon.max_response_mib); "
        "ask for fewer tracks or split the batch", answer.get("id"))


def _fit(data: bytes, answer: dict, max_response: int) -> bytes:
    return data if len(data) <= max_response else _encode(_too_large(answer, max_response))


def _encode(answer: Any) -> bytes:
    return framing.encode(_to_json(answer))


_REQUEST_KEYS = frozenset({"jsonrpc", "method", "id", "params"})


def _is_request(obj: Any) -> bool:
    """One request object as jsonrpcserver's request-schema.json (draft 4) defines it."""
    if type(obj) is not dict or not obj.keys() <= _REQUEST_KEYS:  # additionalProperties: false
        return False
    if obj.get("jsonrpc") != "2.0" or type(obj.get("method")) is not str:  # required; enum ["2.0"]; string
        return False
    if "id" in obj:  # string | number | null ("number" excludes booleans)
        ident = obj["id"]
        if not (ident is None or type(ident) in (str, int, float)):
            return False
    return "params" not in obj or type(obj["params"]) in (list, dict)  # array | object


def validate_request(request: Any) -> Any:
    """The check jsonrpcserver's default (jsonschema) validator makes, without jsonschema.

    Its schema is ``oneOf: [request, non-empty array of requests]``. Raising
    anything makes jsonrpcserver answer -32600, exactly as the default does.
    """
    if type(request) is list:
        if not request or not all(map(_is_request, request)):
            raise ValueError("invalid batch")
    elif not _is_request(request):
        raise ValueError("invalid request")
    return request


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _to_json(obj: Any) -> str:
    """A response (or a batch of them) as compact JSON.

    A result dict may hold `RawJSON` values (the query methods' track arrays,
    written by SQLite): those are spliced in as they are. Everything else is
    what ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))`` gives.
    """
    if type(obj) is list:
        return "[" + ",".join(map(_to_json, obj)) + "]"
    result = obj.get("result")
    if type(result) is dict and any(type(v) is RawJSON for v in result.values()):
        return _encode_items({**obj, "result": RawJSON(_encode_items(result))})
    return _ENCODE(obj)


def _encode_items(obj: dict) -> str:
    return "{" + ",".join(f"{_ENCODE(k)}:{v.text if type(v) is RawJSON else _ENCODE(v)}"
                          for k, v in obj.items()) + "}"


def openrpc_document(table: Mapping[str, Method], events: list[dict] | None = None) -> dict:
    """An OpenRPC 1.2 document generated from the dispatch table itself, with the
    descriptions, errors and examples of :mod:`.docs` and the events as ``x-events``."""
    from . import docs

    methods = []
    for method in sorted(table.values(), key=lambda m: m.name):
        doc = docs.METHODS.get(method.name, {})
        param_docs = doc.get("params", {})
        properties = method.params.properties
        required = set(method.params.required)
        params = []
        for name, schema in properties.items():
            description = param_docs.get(name) or schema.get("description")
            params.append({"name": name, **({"description": description} if description else {}),
                           "required": name in required, "schema": schema})
        methods.append(
            {
                "name": method.name,
                "summary": method.summary,
                **({"description": doc["description"]} if doc.get("description") else {}),
                "paramStructure": "by-name",
                "params": params,
                "result": {"name": f"{method.name}.result", "schema": method.result},
                "errors": list(doc.get("errors", ())),
                "examples": list(doc.get("examples", ())),
                **({"x-writes": True} if method.writes else {}),
            }
        )
    return {
        "openrpc": "1.2.6",
        "info": {"title": "mediasaged", "version": __version__, "license": {"name": "MIT"},
                 "description": "A local cache of one Plex music library. JSON-RPC 2.0 over a Unix "
                                "stream socket, one JSON text per line (UTF-8, \\n-terminated)."},
        "methods": methods,
        "components": {"errors": docs.ALL_ERRORS},
        "x-events": list(events or ()),
    }
