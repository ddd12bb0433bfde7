"""plex: everything that talks to Plex Media Server.

`client` (the only importer of plexapi: connect, section, paged listings, album
genres, retries), `xml` (listing XML -> plain track rows, lxml), `errors` (what can
go wrong, in words for the user), `events` (the notification websocket thread) and
`frames` (its URL and frames), `redact` (URLs and messages without the token),
`attrs` (tolerant number parsing). `events`, `frames`, `redact` and `attrs` use the
standard library (and websocket-client) only, so the daemon process never loads
requests, lxml or plexapi: only the sync worker imports `client`.
This package imports nothing else of mediasaged.
"""
