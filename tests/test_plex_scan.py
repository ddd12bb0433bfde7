"""The album listing's number scan (`plex.xml.NumberScan`) gives what lxml gives (`ItemParser`).

The scan reads ``ratingKey`` and ``leafCount`` of each album straight from the bytes and hands
anything outside its plain form to lxml. So every answer here, real, generated or odd, must come
out of ``NumberScan`` as it comes out of lxml; and the plain answers (the emulator's, real
captures) must really be scanned, or the fast path would be dead code that tests cannot see.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from mediasaged.plex.body import clean_xml
from mediasaged.plex.xml import ItemParser, NumberScan, _single_quoted
from tests.emulator.model import MUSIC_SECTION_ID

WANTED = ("ratingKey", "leafCount")
NUMBERS = ("size", "totalSize", "offset")  # the container's attributes the scan reads
CAPTURES = Path(__file__).parent / "fixtures" / "plex" / "captures"


def lxml_answer(body: bytes):
    """What the album listing's reader gets from lxml: the container's numbers and the items."""
    container, items = ItemParser("Directory", WANTED)(body)
    return {k: container[k] for k in NUMBERS if k in container}, items


def page(*albums: str, size: int | None = None, head: str = "") -> bytes:
    n = len(albums) if size is None else size
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer size="{n}" totalSize="9000" '
            f'offset="0" title1="Music"{head}>\n' + "\n".join(albums) + "\n</MediaContainer>\n").encode()


@pytest.mark.parametrize("counts_listed", [False, True])  # a current server's listings; one of about 2012
def test_the_emulators_album_pages_are_scanned_as_lxml_reads_them(plex_emulator, counts_listed):
    emu = plex_emulator
    emu.library.listing_leaf_counts = counts_listed
    bodies = []
    for start in range(0, len(emu.library.albums), 40):
        answer = requests.get(f"{emu.url}/library/sections/{MUSIC_SECTION_ID}/all?type=9",
                              headers={"X-Plex-Token": emu.token, "X-Plex-Container-Start": str(start),
                                       "X-Plex-Container-Size": "40"}, timeout=10)
        bodies.append(answer.content)
    scan = NumberScan("Directory", WANTED)
    for body in bodies:
        scanned = scan._scan(body)
        assert scanned is not None  # the plain form: the fast path, not lxml
        assert scanned == lxml_answer(body)
    items = [item for body in bodies for item in scan(body)[1]]
    assert len(items) == len(emu.library.albums)
    assert all((count is not None) == counts_listed for _, count in items)


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.xml")))
def test_real_captures_give_what_lxml_gives(name):
    body = (CAPTURES / name).read_bytes()
    assert NumberScan("Directory", WANTED)(body) == lxml_answer(body)


def test_a_real_listing_without_counts_is_scanned():
    """Current servers list albums without ``leafCount``: each comes as (ratingKey, None)."""
    body = (CAPTURES / "cndoc-2024-album-listing.xml").read_bytes()
    scanned = NumberScan("Directory", WANTED)._scan(body)
    assert scanned == lxml_answer(body) == ({"size": "1", "totalSize": "3636", "offset": "100"}, [("8014", None)])


@pytest.mark.parametrize("name", ["nweber-2012-hoobastank-album.xml", "ha-2020-album-200.xml"])
def test_real_albums_in_a_listing_are_scanned(name):
    """Albums as Plex's own serializer wrote them (2012, 2020), in a listing's container."""
    text = (CAPTURES / name).read_text()
    album = text[text.index("<Directory"):text.rindex("</Directory>") + len("</Directory>")]
    body = page(album, album.replace('ratingKey="', 'ratingKey="9'))
    scanned = NumberScan("Directory", WANTED)._scan(body)
    assert scanned is not None and scanned == lxml_answer(body)
    assert all(count.isdigit() for _, count in scanned[1])


PLAIN = '<Directory ratingKey="1" title="One" leafCount="3"><Genre tag="Rock"/></Directory>'

ODD = {
    "a value ending in the wanted name": '<Directory ratingKey="1" title="x leafCount=" leafCount="3"/>',
    "the name as part of another": '<Directory ratingKey="1" xleafCount="7" leafCount="3"/>',
    "single quotes with a decoy inside": """<Directory ratingKey='1' title=' ratingKey="8" leafCount="9"' """
                                         """leafCount='3' key="/x"/>""",
    "space around =": '<Directory ratingKey="1" leafCount = "3"/>',
    "a character reference": '<Directory ratingKey="1" leafCount="&#51;"/>',
    "an empty value": '<Directory ratingKey="1" leafCount=""/>',
    "a missing count": '<Directory ratingKey="1" title="No count"/>',
    "a missing count, its name in a title": '<Directory ratingKey="1" title="leafCount=&quot;4&quot;"/>',
    "lines and tabs between attributes": '<Directory\n\tratingKey="1"\n\ttitle="a > b"\n\tleafCount="3"\n/>',
    "the count first": '<Directory leafCount="3" title="&quot;Q&quot; &amp; A" ratingKey="1"></Directory>',
    "text after the tag": '<Directory ratingKey="1" title="No count"> leafCount="8"></Directory>',
    "a longer tag name": '<DirectoryX ratingKey="5" leafCount="1"/>',
    "a comment holding an album": '<!-- <Directory ratingKey="9" leafCount="9"><x -->',
    "CDATA holding an album": '<![CDATA[<Directory ratingKey="9" leafCount="9"><x]]>',
    "an album inside an album": '<Directory ratingKey="1" leafCount="3"><Directory ratingKey="2" leafCount="4"/>'
                                '</Directory>',
}


@pytest.mark.parametrize("case", sorted(ODD))
def test_odd_albums_give_what_lxml_gives(case):
    body = page(PLAIN, ODD[case], size=1 if "holding" in case else 2)
    assert NumberScan("Directory", WANTED)(body) == lxml_answer(body)


@pytest.mark.parametrize("case", ["a truncated answer", "a container that lies about its size", "an empty listing",
                                  "control characters", "no container"])
def test_odd_answers_give_what_lxml_gives(case):
    body = {
        "a truncated answer": page(PLAIN, PLAIN)[:-40],
        "a container that lies about its size": page(PLAIN, size=5),
        "an empty listing": b'<?xml version="1.0"?><MediaContainer size="0" totalSize="0" offset="0"/>',
        "control characters": page(PLAIN.replace("One", "On\x04e")),
        "no container": b'<?xml version="1.0"?><Other size="1">' + PLAIN.encode() + b"</Other>",
    }[case]
    try:
        expected = lxml_answer(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        expected = type(exc)
    try:
        got = NumberScan("Directory", WANTED)(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        got = type(exc)
    if case == "control characters":  # lxml fails on the raw bytes; the reader then cleans them as plexapi does
        assert expected is etree.XMLSyntaxError
        expected = lxml_answer(clean_xml(body)[0])
    assert got == expected


def _escape(text: str, raw_gt: bool) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return text if raw_gt else text.replace(">", "&gt;")


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(albums=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 500), _TEXT, _TEXT), max_size=12),
       seed=st.integers(0, 2**32), raw_gt=st.booleans())
def test_generated_pages_give_what_lxml_gives(albums, seed, raw_gt):
    """Any titles (quotes, ``>``, ``&``, the wanted names), attributes in any order, any whitespace."""
    rnd = random.Random(seed)
    items = []
    for key, count, title, summary in albums:
        attrs = [f'ratingKey="{key}"', f'leafCount="{count}"', f'title="{_escape(title, raw_gt)}"',
                 f'summary="{_escape(summary + " leafCount=", raw_gt)}"', f'parentRatingKey="{key + 1}"']
        rnd.shuffle(attrs)
        spaces = [rnd.choice([" ", "\n", "\t", "\n  ", "  "]) for _ in attrs]
        tag = "<Directory" + "".join(s + a for s, a in zip(spaces, attrs))
        items.append(tag + rnd.choice(["/>", ">\n<Genre tag=\"Rock\"/></Directory>", " >\n</Directory>"]))
    body = page(*items)
    scan = NumberScan("Directory", WANTED)
    scanned = scan._scan(body)
    if re.search(rb"=\s*'", body) is None:  # a title like "a='b'" looks like single quotes: lxml reads that page
        assert scanned is not None
    assert scanned in (None, lxml_answer(body))
    assert scan(body) == lxml_answer(body)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"=", b"'", b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c", b"a", b'"']),
                max_size=40).map(b"".join))
def test_single_quotes_are_told_as_the_regex_tells_them(body):
    """The scan's own test for a single-quoted attribute (one look at each ``'``) says what
    ``=\\s*'`` says, on any mix of ``=``, quotes and XML's (and the regex's) whitespace."""
    assert _single_quoted(body) == (re.search(rb"=\s*'", body) is not None)
