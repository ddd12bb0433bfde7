"""sync: sync jobs and the worker that runs them.

`jobs` (in the daemon: one job at a time, progress, events, the slot flip),
`worker` (the child process: a forked reader pages rows out of `plex`, the worker
writes them into the inactive slot through `store.SlotWriter`), `live` (the is_live
rule), `cpus` (the worker on CPUs of its own). May import: `plex`, `store`, `track`,
`timeutil`; the daemon process imports `jobs` only (no plexapi, lxml or requests).
"""
