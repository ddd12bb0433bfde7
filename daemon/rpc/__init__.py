"""rpc: the JSON-RPC face of the daemon.

`methods` (the method table: handlers over the daemon's services), `dispatch`
(validation, jsonrpcserver's `async_dispatch`, errors, OpenRPC), `server` (the Unix
socket: framing, limits, peer credentials, subscriptions). May import: `query`,
`store` (its public names), `match`, `sync.jobs`, `plex.redact`, `params`, `syncjob`, `track`, `timeutil`.
"""
