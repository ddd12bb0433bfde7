"""store: the SQLite cache, and the only package that imports sqlite3.

Owns the schema and its migrations (`schema`), connections and the one-row sync
state (`connection`), the daemon's `Store` (one writer thread, read-only readers:
`database`, `reads`) and the sync worker's `SlotWriter` (bulk fill of the inactive
slot: `slots`). May import: `track` (field table, folding, sort order), `syncjob` (the
sync_jobs row), `timeutil`.
Nothing here knows about Plex, sync jobs' processes, queries or RPC.
"""
from .connection import NotSynced, State, StoreError, inactive_slot
from .database import Store
from .increments import InPlaceWriter, NoRoom
from .reads import ReadContext
from .schema import SCHEMA_VERSION, slot_tables
from .slots import SlotWriter

__all__ = ["Store", "SlotWriter", "InPlaceWriter", "NoRoom", "ReadContext", "State", "StoreError", "NotSynced", "SCHEMA_VERSION",
           "inactive_slot", "slot_tables"]
