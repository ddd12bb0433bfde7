"""mediasagectl: the thin command-line client of mediasaged."""

__version__ = "0.1.0"
