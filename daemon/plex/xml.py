"""Plex listing XML -> plain track rows (the hot loop of a sync), with lxml, no plexapi.

Plex's attributes become Track fields in `rows.track_row`; a <Track>'s own <Genre>
children are handed to it under `rows.GENRES_KEY`."""
from __future__ import annotations

from lxml import etree

from .rows import GENRES_KEY, track_row


class _TrackPageTarget:
    """lxml parser target: keeps the MediaContainer's and every <Track>'s attributes.

    Parsing with a target builds no tree: libxml2 hands each start tag's
    attributes over as a dict, which is the cheapest way to get them into
    Python (a sync spends most of its CPU here). Media/Part children are skipped; a
    track's own <Genre> children are kept (in its dict under `GENRES_KEY`). No ``end``
    callback (it would double the Python calls per element): in a track listing a
    <Genre> can only belong to the <Track> opened last.
    """

    def __init__(self) -> None:
        self.container: dict | None = None
        self.tracks: list[dict] = []

    def start(self, tag: str, attrib: dict) -> None:
        if tag == "Track":
            self.tracks.append(attrib)
        elif tag == "Genre" and self.tracks:
            self.tracks[-1].setdefault(GENRES_KEY, []).append(attrib.get("tag") or "")
        elif tag == "MediaContainer" and self.container is None:
            self.container = attrib

    def close(self) -> tuple[dict | None, list[dict]]:
        result = (self.container, self.tracks)
        self.container, self.tracks = None, []
        return result


class TrackPageParser:
    """Parses track listing pages into rows, reusing one lxml parser.

    One parser for all pages matters: a fresh libxml2 parser per page left
    ~60 MB of fragmented heap behind after 100 pages. Not thread-safe: one per pager.
    """

    def __init__(self) -> None:
        # resolve_entities stays at lxml's default ("internal": no external entities):
        # with False, a target parser would pass character references like &#38; through.
        self._target = _TrackPageTarget()
        self._parser = etree.XMLParser(target=self._target, no_network=True, huge_tree=True)

    def __call__(self, body: bytes) -> tuple[dict, list[dict]]:
        """(MediaContainer attributes, track rows) of one page.

        Raises ``etree.XMLSyntaxError`` for truncated or malformed XML and
        ``ValueError`` when the document is not a MediaContainer."""
        try:
            container, tracks = etree.fromstring(body, self._parser)
        except etree.XMLSyntaxError:
            self._target.close()  # drop what the broken page left behind
            raise
        if container is None:
            raise ValueError("not a MediaContainer")
        return container, [track_row(a) for a in tracks]


def strict_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                           collect_ids=False, recover=False)
