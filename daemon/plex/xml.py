"""Plex listing XML -> plain track rows (the hot loop of a sync), with lxml, no plexapi.

Plex's attributes become Track fields in `rows.track_row`; a <Track>'s own <Genre>
children are handed to it under `rows.GENRES_KEY`."""
from __future__ import annotations

import re

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


class NumberScan:
    """(the MediaContainer's size/totalSize/offset, [the ``names`` attributes of each <``tag``>]) of a
    listing whose wanted attributes are all numbers, read straight from the bytes. For the deletion
    check's album listing (``ratingKey``, ``leafCount``; 1,000 albums of ~20 attributes a page,
    630 KB) that takes about half of what libxml2 needs to parse the page (docs/PERFORMANCE.md).
    Any answer outside the plain form below goes to `ItemParser`, which gives the same result
    (tests/test_plex_scan.py).

    Why the scan is exact on that form. XML forbids a raw ``<`` in attribute values and text, so
    every ``<Directory`` starts a tag, and the tag ends before the next ``<``. A double-quoted
    value cannot hold ``"``, so whitespace + ``name="`` + digits + ``"`` inside a tag is that
    attribute: text that ends a value (``title="… leafCount="``) is followed by whitespace or
    ``>``, not a digit. An attribute whose name does not occur in the tag at all is absent
    (None, as lxml says). The scan gives up (-> `ItemParser`) when the answer has a
    single-quoted attribute, does not end with ``</MediaContainer>``, an item's tag (which ends
    at the first ``>`` outside quotes: text after it is not read) holds a wanted name but not as
    plain digits (a character reference, a space around ``=``, an empty value, the name inside
    another value), or the items found are not the container's ``size`` (a comment or CDATA
    section holding something like an item).
    """

    def __init__(self, tag: str, names: tuple[str, ...]) -> None:
        self._open = b"<" + tag.encode()
        self._names = [_number_pattern(name) for name in names]
        self._plain = [name.encode() for name in names]
        self._parser = ItemParser(tag, names)

    def __call__(self, body: bytes) -> tuple[dict, list[tuple]]:
        scanned = self._scan(body)
        if scanned is not None:
            return scanned
        container, items = self._parser(body)
        return {name: container[name] for name, _ in _CONTAINER_NUMBERS if name in container}, items

    def _scan(self, body: bytes) -> tuple[dict, list[tuple]] | None:
        head = body.find(b"<MediaContainer")
        if head < 0 or _single_quoted(body) or not body.rstrip().endswith(b"</MediaContainer>"):
            return None
        head_end = body.find(b"<", head + 1)
        container = {}
        for name, pattern in _CONTAINER_NUMBERS:
            value = _number(body, pattern, head, head_end)
            if value is not None:
                container[name] = value
        items, opened, at = [], self._open, body.find(self._open, head_end)
        while at >= 0:
            start = at + len(opened)
            end = body.find(b"<", start)
            if body[start] in _AFTER_NAME:  # not <DirectoryX
                close = _tag_end(body, start, end)
                if close < 0:
                    return None
                values = [_number(body, pattern, start, close) for pattern in self._names]
                for i, value in enumerate(values):
                    if value is None and body.find(self._plain[i], start, close) >= 0:
                        return None  # there, but not as plain digits
                items.append(tuple(values))
            at = body.find(opened, end)
        if container.get("size") != str(len(items)):
            return None
        return container, items


def container_total(body: bytes) -> int | None:
    """The ``totalSize`` in an answer's ``<MediaContainer`` tag, read from the bytes (None unless plainly
    there): a hint that lets a listing's next pages be asked for while this one is parsed; the parse
    has the last word."""
    head = body.find(b"<MediaContainer")
    if head < 0:
        return None
    end = body.find(b"<", head + 1)
    value = _number(body, _TOTAL_SIZE, head, end if end >= 0 else len(body))
    return int(value) if value else None


def _tag_end(body: bytes, start: int, end: int) -> int:
    """Where the tag that ``start`` is in ends, before ``end`` (the next ``<``): its first ``>``
    outside quotes; -1 if there is none."""
    close = body.find(b">", start, end) if end >= 0 else -1
    while close >= 0 and body.count(b'"', start, close) % 2:
        close = body.find(b">", close + 1, end)
    return close


def _single_quoted(body: bytes) -> bool:
    """Whether an attribute value in ``body`` is single-quoted (``name='…'``, whitespace allowed after
    the ``=``): each ``'`` is looked at (titles hold a few), where one regex over the whole answer
    took ~0.12 ms of a 160 KB answer's ~0.7 ms scan."""
    at = body.find(b"'")
    while at >= 0:
        i = at - 1
        while i >= 0 and body[i] in _XML_SPACE_OR_VT:
            i -= 1
        if i >= 0 and body[i] == 0x3D:  # =
            return True
        at = body.find(b"'", at + 1)
    return False


def _number_pattern(name: str) -> re.Pattern[bytes]:
    return re.compile(re.escape(name.encode()) + rb'="([0-9]*)"')


def _number(body: bytes, pattern: re.Pattern[bytes], start: int, end: int) -> str | None:
    """The digits of the attribute ``pattern`` finds between ``start`` and ``end`` (``name="123"``
    after whitespace); None if there is no such attribute, or its value is empty."""
    found = pattern.search(body, start, end)
    while found is not None and body[found.start() - 1] not in _SPACE:
        found = pattern.search(body, found.start() + 1, end)
    return found.group(1).decode() if found is not None and found.group(1) else None


_CONTAINER_NUMBERS = [(name, _number_pattern(name)) for name in ("size", "totalSize", "offset")]
_TOTAL_SIZE = dict(_CONTAINER_NUMBERS)["totalSize"]
_SPACE = b" \t\n\r"  # XML's whitespace (``in`` tests one byte, as an int)
_AFTER_NAME = _SPACE + b">/"
_XML_SPACE_OR_VT = b" \t\n\r\x0b\x0c"  # what a bytes regex's \s is


def strict_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                           collect_ids=False, recover=False)
