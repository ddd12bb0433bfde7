"""The real-response corpus (tests/fixtures/plex) as an emulator Library.

Every track and album element in the corpus is a Plex Media Server answer that someone
captured and published (SOURCES.md says where each came from). ``load_corpus()`` reads
the captures named in ``library.json`` and builds a Library whose listings, metadata and
children serve those elements **as captured**: same attributes, same children, missing
attributes still missing. The model objects it also builds (artists, albums, tracks) only
order, page and filter; they never render these items.

What the loader changes, all listed in library.json and explained in SOURCES.md:
- ``patches``: attributes set on one element (a capture cut out of its container lost
  attributes the container carried, e.g. a 2012 track without grandparentTitle);
- an album that no capture carries is built from its tracks' ``parent*`` attributes
  (title, year from ``parentYear`` when present, guid, studio): Plex answers album listings
  for every album, and such an album has no genres and no year unless a track gave one;
- JSON captures become XML by Plex's own mapping: ``Metadata`` items become ``Track`` (type
  track) or ``Directory`` (album, artist) elements, arrays of objects become child elements
  named by their key, scalars become attributes (booleans as 1/0).

The corpus library is read-only: the emulator's mutation helpers would re-render an item
from the model and so lose the captured shape.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .model import Album, Artist, Library, Track

CORPUS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "plex"
MANIFEST = CORPUS_DIR / "library.json"

_ITEM_TAG = {"track": "Track", "album": "Directory", "artist": "Directory"}


# ---- reading captures ------------------------------------------------------------------

def _scalar(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def json_to_element(obj: dict, tag: str) -> ET.Element:
    """One JSON object as the XML element Plex would have sent for it."""
    el = ET.Element(tag)
    for key, value in obj.items():
        if isinstance(value, list):
            for child in value:
                if isinstance(child, dict):
                    child_tag = (_ITEM_TAG.get(child.get("type"), "Directory")
                                 if key == "Metadata" else key)
                    el.append(json_to_element(child, child_tag))
        elif isinstance(value, dict):
            el.append(json_to_element(value, key))
        elif value is not None:
            el.set(key, _scalar(value))
    return el


def read_capture(path: Path) -> ET.Element:
    """A capture file (XML, or Plex JSON) as its MediaContainer element."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return json_to_element(data["MediaContainer"], "MediaContainer")
    return ET.fromstring(path.read_bytes())


def items(root: ET.Element, kind: str) -> list[ET.Element]:
    """Every element of a capture whose type is ``kind`` (track/album), at any depth."""
    return [el for el in root.iter() if el.get("type") == kind and el is not root]


def serialize(el: ET.Element) -> bytes:
    el = _copy(el)
    el.tail = None
    return ET.tostring(el, encoding="unicode").encode("utf-8") + b"\n"


def _copy(el: ET.Element) -> ET.Element:
    new = ET.Element(el.tag, dict(el.attrib))
    new.text = el.text
    for child in el:
        c = _copy(child)
        c.tail = child.tail
        new.append(c)
    return new


def _int(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---- building the library ------------------------------------------------------------------

def _synth_album(track: ET.Element) -> ET.Element:
    """The album listing element Plex would answer for a track's album, from the track."""
    t = track.attrib
    key = t["parentRatingKey"]
    attrs = {"ratingKey": key, "key": f"/library/metadata/{key}/children",
             "parentRatingKey": t.get("grandparentRatingKey"), "guid": t.get("parentGuid"),
             "parentGuid": t.get("grandparentGuid"), "studio": t.get("parentStudio"),
             "type": "album", "title": t.get("parentTitle"), "parentKey": t.get("grandparentKey"),
             "parentTitle": t.get("grandparentTitle"), "summary": "", "index": "1",
             "year": t.get("parentYear"), "thumb": t.get("parentThumb")}
    return ET.Element("Directory", {k: v for k, v in attrs.items() if v is not None})


def load_corpus(manifest: Path = MANIFEST) -> Library:
    spec = json.loads(manifest.read_text(encoding="utf-8"))
    base = manifest.parent
    patches: dict[str, dict] = spec.get("patches", {})

    def patched(el: ET.Element) -> ET.Element:
        el = _copy(el)
        for k, v in patches.get(el.get("ratingKey", ""), {}).items():
            el.set(k, v)
        return el

    server = read_capture(base / spec["server"])
    lib = Library(machine_identifier=server.get("machineIdentifier"),
                  friendly_name=server.get("friendlyName"), version=server.get("version"))
    tracks: dict[str, ET.Element] = {}
    for name in spec["tracks"]:
        for el in items(read_capture(base / name), "track"):
            key = el.get("ratingKey")
            if key in tracks:
                raise ValueError(f"{name}: track {key} is in the corpus twice")
            tracks[key] = patched(el)
    albums: dict[str, ET.Element] = {}
    for name in spec["albums"]:
        for el in items(read_capture(base / name), "album"):
            albums[el.get("ratingKey")] = patched(el)
    full: dict[str, ET.Element] = {}
    for name in spec.get("album_metadata", []):
        for el in items(read_capture(base / name), "album"):
            full[el.get("ratingKey")] = patched(el)
    for name in spec.get("track_metadata", []):
        for el in items(read_capture(base / name), "track"):
            full[el.get("ratingKey")] = patched(el)
    for el in tracks.values():
        if el.get("parentRatingKey") not in albums:
            albums[el.get("parentRatingKey")] = _synth_album(el)

    for key, el in albums.items():
        artist_key = el.get("parentRatingKey") or f"artist-of-{key}"
        if artist_key not in lib.artists:
            lib.put_artist(Artist(artist_key, el.get("parentTitle") or "", _int(el.get("addedAt")) or 0,
                                  _int(el.get("updatedAt")) or 0))
        genres = [g.get("tag") or "" for g in (full[key] if key in full else el).iter("Genre")]
        lib.put_album(Album(key, artist_key, el.get("title") or "", _int(el.get("year")), genres,
                            _int(el.get("addedAt")) or 0, _int(el.get("updatedAt")) or 0))
        lib.raw_xml[key] = serialize(el)
        if key in full:
            lib.raw_full_xml[key] = serialize(full[key])
    for key, el in tracks.items():
        a = el.attrib
        lib.put_track(Track(key, a["parentRatingKey"], a.get("title") or "", a.get("originalTitle"),
                            _int(a.get("index")), _int(a.get("parentIndex")), _int(a.get("duration")),
                            _float(a.get("userRating")), _int(a.get("viewCount")) or 0,
                            _int(a.get("lastViewedAt")), _int(a.get("addedAt")) or 0,
                            _int(a.get("updatedAt")) or 0, _int(a.get("year")), _int(a.get("lastRatedAt"))))
        lib.raw_xml[key] = serialize(el)
        if key in full:
            lib.raw_full_xml[key] = serialize(full[key])
    return lib
