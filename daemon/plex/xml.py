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


class _TargetParser:
    """One reused lxml parser feeding ``target`` (no tree). One parser for all pages matters: a
    fresh libxml2 parser per page left ~60 MB of fragmented heap behind after 100 pages. Not
    thread-safe: one per pager."""

    def __init__(self, target) -> None:
        # resolve_entities stays at lxml's default ("internal": no external entities):
        # with False, a target parser would pass character references like &#38; through.
        self._target = target
        self._parser = etree.XMLParser(target=target, no_network=True, huge_tree=True)

    def _parse(self, body: bytes) -> tuple[dict, list]:
        """(MediaContainer attributes, the target's items). Raises ``etree.XMLSyntaxError`` for
        truncated or malformed XML and ``ValueError`` when the document is not a MediaContainer."""
        try:
            container, items = etree.fromstring(body, self._parser)
        except etree.XMLSyntaxError:
            self._target.close()  # drop what the broken page left behind
            raise
        if container is None:
            raise ValueError("not a MediaContainer")
        return container, items


class TrackPageParser(_TargetParser):
    """Parses track listing pages into rows."""

    def __init__(self) -> None:
        super().__init__(_TrackPageTarget())

    def __call__(self, body: bytes) -> tuple[dict, list[dict]]:
        """(MediaContainer attributes, track rows) of one page."""
        container, tracks = self._parse(body)
        return container, [track_row(a) for a in tracks]


class _ItemTarget:
    """lxml parser target: the MediaContainer's attributes and a few attributes of every ``tag``."""

    def __init__(self, tag: str, names: tuple[str, ...]) -> None:
        self.tag, self.names = tag, names
        self.container: dict | None = None
        self.items: list[tuple] = []

    def start(self, tag: str, attrib: dict) -> None:
        if tag == self.tag:
            self.items.append(tuple(map(attrib.get, self.names)))
        elif tag == "MediaContainer" and self.container is None:
            self.container = attrib

    def close(self) -> tuple[dict | None, list[tuple]]:
        result = (self.container, self.items)
        self.container, self.items = None, []
        return result


class ItemParser(_TargetParser):
    """(MediaContainer attributes, [the ``names`` attributes of each <``tag``>]) of an answer: for
    answers of which we read a key or two per item (an album's ``leafCount``)."""

    def __init__(self, tag: str, names: tuple[str, ...]) -> None:
        super().__init__(_ItemTarget(tag, names))

    def __call__(self, body: bytes) -> tuple[dict, list[tuple]]:
        return self._parse(body)


def strict_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                           collect_ids=False, recover=False)
