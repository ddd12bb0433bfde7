"""query: params -> filters -> SQL for tracks.query, tracks.get and library.stats (pure).

`schemas` holds the methods' params (`params.Params`: the published JSON Schemas,
compiled) and result schemas, `filters` makes the checks a schema cannot and holds the
small filter classes (each returns SQL and its bound values), `plans` chooses how to
answer and returns a function of a `store.ReadContext`. No I/O and no sqlite3 here.
May import: `params`, `track`, `timeutil`.
"""
from ..params import InvalidParam
from .plans import library_stats, tracks_get, tracks_query
from .schemas import (GET_PARAMS, GET_RESULT_SCHEMA, QUERY_PARAMS, QUERY_RESULT_SCHEMA, STATS_PARAMS,
                      STATS_RESULT_SCHEMA)

__all__ = ["InvalidParam", "tracks_query", "tracks_get", "library_stats", "QUERY_PARAMS", "STATS_PARAMS",
           "GET_PARAMS", "QUERY_RESULT_SCHEMA", "GET_RESULT_SCHEMA", "STATS_RESULT_SCHEMA"]
