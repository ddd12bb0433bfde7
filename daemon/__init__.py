"""mediasaged: a local SQLite cache of one Plex music library, served over JSON-RPC."""

__version__ = "0.1.0"
