"""tracks.match: resolve free-text track references to library tracks.

`normalize` holds the music-aware keys (computed at sync for every track and
at call time for every reference); the scorer and the candidate lookups build
on them. See docs/MATCHING.md.
"""
