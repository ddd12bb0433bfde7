"""Listings for the Plex emulator: section ``all`` (types 8/9/10), filters, paging,
genre choices, metadata and children. Pure functions over a Library (no aiohttp)."""
from __future__ import annotations

import re
import time
from typing import Sequence

from . import render
from .model import MOVIE_SECTION_ID, Library

# query parameters that are not filters
_PLAIN = {"type", "includeGuids", "includeCollections", "includeMeta", "includeAdvanced",
          "includeExternalMedia", "sort", "limit", "checkFiles", "includeFields",
          "excludeFields", "excludeElements", "includeDetails", "asyncAugmentMetadata",
          "includeChildren"}
_FILTER_RE = re.compile(r"^(?:(artist|album|track)\.)?([A-Za-z]+)(!|>>|<<)?$")
_TYPE_NAMES = {8: "artist", 9: "album", 10: "track"}
_ATTR = {"updatedAt": "updated_at", "addedAt": "added_at", "lastViewedAt": "last_viewed_at",
         "lastRatedAt": "last_rated_at",
         "year": "year", "userRating": "user_rating", "viewCount": "view_count",
         "title": "title", "id": "rating_key", "index": "index"}
_DATE_FIELDS = {"updatedAt", "addedAt", "lastViewedAt", "lastRatedAt"}
_TIMED = {"lastViewedAt": "last_viewed_at", "lastRatedAt": "last_rated_at"}  # `Library.tracks_timed_since`
_REL = re.compile(r"^-(\d+)(mon|[smhdwy])$")
_REL_SECS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mon": 2592000, "y": 31536000}


class ListingError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _value(field: str, raw: str):
    if field in _DATE_FIELDS:
        m = _REL.match(raw)
        if m:
            return int(time.time()) - int(m.group(1)) * _REL_SECS[m.group(2)]
    if field in _DATE_FIELDS or field in ("year", "viewCount", "index"):
        return int(float(raw))
    if field == "userRating":
        return float(raw)
    return raw


def _objects(lib: Library, row_type: int, key: str) -> dict:
    if row_type == 10:
        t = lib.tracks[key]
        al = lib.albums[t.album_key]
        return {"track": t, "album": al, "artist": lib.artists[al.artist_key]}
    if row_type == 9:
        al = lib.albums[key]
        return {"album": al, "artist": lib.artists[al.artist_key]}
    return {"artist": lib.artists[key]}


def _build_filters(lib: Library, row_type: int, query) -> list:
    preds = []
    for k, raw in query.items():
        if k in _PLAIN or k.startswith("X-Plex-"):
            continue
        m = _FILTER_RE.match(k)
        if not m:
            raise ListingError(400, f"unsupported filter {k!r}")
        prefix, field, op = m.group(1) or _TYPE_NAMES[row_type], m.group(2), m.group(3) or ""
        if field == "lastRatedAt" and not lib.rated_filter:
            raise ListingError(400, f"unsupported filter field {field!r}")
        if prefix == "track" and row_type != 10 or prefix == "album" and row_type == 8:
            raise ListingError(400, f"filter {k!r} not supported on type {row_type}")
        values = [v for v in raw.split(",") if v != ""]
        if field == "genre":
            names = set()
            for v in values:
                n = lib.genre_name(v)
                names.add(n if n is not None else v)
            obj_key = "album" if prefix != "artist" else "artist"

            def pred(o, names=names, op=op, obj_key=obj_key):
                gs = set(o["album"].genres) if obj_key == "album" else {
                    g for al in lib.albums.values() if al.artist_key == o["artist"].rating_key
                    for g in al.genres}
                hit = bool(gs & names)
                return not hit if op == "!" else hit
        elif field in _ATTR:
            try:
                vals = [_value(field, v) for v in values]
            except ValueError:
                raise ListingError(400, f"bad value {raw!r} for {k!r}") from None
            attr = _ATTR[field]
            strict = lib.strict_since_filters

            def pred(o, vals=vals, attr=attr, op=op, prefix=prefix, field=field, strict=strict):
                x = getattr(o[prefix], attr)
                if field == "title":
                    hit = any(v.casefold() in x.casefold() for v in vals)
                    return not hit if op == "!" else hit
                if x is None:
                    return op == "!"
                if op == ">>":
                    return any(x > v if strict else x >= v for v in vals)
                if op == "<<":
                    return any(x < v if strict else x <= v for v in vals)
                hit = any(str(x) == str(v) for v in vals)
                return not hit if op == "!" else hit
        else:
            raise ListingError(400, f"unsupported filter field {field!r}")
        preds.append(pred)
    return preds


def _album_genre_fast_path(lib: Library, row_type: int, query) -> list[str] | None:
    """albums?album.genre=K alone (one request per genre in a sync): skip the generic path."""
    keys = [k for k in query if k not in _PLAIN and not k.startswith("X-Plex-")]
    if row_type != 9 or keys not in (["album.genre"], ["genre"]):
        return None
    return lib.albums_of_genres({lib.genre_name(v) or v for v in query[keys[0]].split(",") if v})


def _changed_since_fast_path(lib: Library, row_type: int, query) -> list[str] | None:
    """``type=10&track.updatedAt>>=T``, ``type=9&album.updatedAt>>=T``, ``type=8&artist.updatedAt>>=T``,
    ``type=10&track.lastViewedAt>>=T`` or ``type=10&track.lastRatedAt>>=T`` alone (every
    incremental sync asks them): Plex answers them from an index, and so do we
    (`Library.changed_tracks` and its siblings): the cost is the answer's, not the library's."""
    keys = [k for k in query if k not in _PLAIN and not k.startswith("X-Plex-")]
    if len(keys) != 1:
        return None
    key = keys[0]
    field = key[len("track."):-len(">>")] if row_type == 10 and key.startswith("track.") and key.endswith(">>") else None
    timed = _TIMED.get(field) if field != "lastRatedAt" or lib.rated_filter else None  # played or rated since
    if key != f"{_TYPE_NAMES.get(row_type)}.updatedAt>>" and timed is None:
        return None
    try:
        since = int(query[key])
    except ValueError:
        return None
    if timed is not None:
        return lib.tracks_timed_since(timed, since)
    return {10: lib.changed_tracks, 9: lib.changed_albums, 8: lib.changed_artists}[row_type](since)


def _page(items: list, start: int | None, size: int | None) -> tuple[list, int]:
    start = max(0, start or 0)
    if size is None:
        return items[start:], start
    return items[start:start + max(0, size)], start


def _listing_attrs(lib: Library, size: int, total: int, offset: int, title2: str,
                   view_group: str | None) -> dict:
    return {"size": size, "totalSize": total, "offset": offset, "allowSync": 1,
            "art": "/:/resources/artist-fanart.jpg", "identifier": "com.plexapp.plugins.library",
            "librarySectionID": lib.section_key, "librarySectionTitle": lib.music_title,
            "librarySectionUUID": "33333333-3333-3333-3333-333333333333",
            "mediaTagPrefix": "/system/bundle/media/flags/", "mediaTagVersion": 1700000000,
            "nocache": 1, "title1": lib.music_title, "title2": title2, "viewGroup": view_group}


def serve_listing(lib: Library, sid: str, query, start: int | None, size: int | None, *,
                  what: str, keys: str | None = None, others: Sequence[Library] = ()) -> bytes:
    """``others``: the server's other music sections, whose items ``/library/metadata`` also
    answers (rating keys are unique across sections)."""
    if sid not in (lib.section_key, MOVIE_SECTION_ID):
        raise ListingError(404, f"no section {sid}")
    meta = query.get("includeMeta") == "1"
    with lib.lock:
        if sid == MOVIE_SECTION_ID:
            return render.container({"size": 0, "totalSize": 0, "offset": start or 0,
                                     "title1": lib.movie_title})
        if what == "collections":
            body = render.collections_meta(sid) if meta else b""
            return render.container({"size": 0, "totalSize": 0, "offset": start or 0,
                                     "title1": lib.music_title}, body)
        if what == "genre":
            choices = lib.genres_in_use()
            body = "".join(
                f'<Directory fastKey="/library/sections/{sid}/all?type=9&amp;genre={gid}" '
                f'key="{gid}" title="{render.esc(name)}" type="genre"/>\n'
                for gid, name in choices).encode()
            return render.container({"size": len(choices), "allowSync": 0,
                                     "title1": lib.music_title, "title2": "By Genre"}, body)
        if what == "metadata":
            return _metadata(lib, keys or "", others)
        if what == "children":
            return _children(lib, keys or "", start, size)
        # section "all"
        try:
            row_type = int(query.get("type", "8"))
        except ValueError:
            raise ListingError(400, "bad type") from None
        if row_type not in _TYPE_NAMES:
            return render.container({"size": 0, "totalSize": 0, "offset": start or 0})
        preds = _build_filters(lib, row_type, query)
        if row_type == 10:
            items, frag, title2, vg = lib.track_order(), render.track_fragment, "All Tracks", "track"
        elif row_type == 9:
            items, frag, title2, vg = lib.album_order(), render.album_fragment, "All Albums", "album"
        else:
            items = lib.artist_order()
            frag, title2, vg = render.artist_fragment, "All Artists", "artist"
        fast = _album_genre_fast_path(lib, row_type, query)
        if fast is None:
            fast = _changed_since_fast_path(lib, row_type, query)
        if fast is not None:
            items = fast
        elif preds:
            items = [k for k in items if all(p(_objects(lib, row_type, k)) for p in preds)]
        if "limit" in query:
            try:
                items = items[: int(query["limit"])]
            except ValueError:
                raise ListingError(400, "bad limit") from None
        page, offset = _page(items, start, size)
        body = b"".join(frag(lib, k) for k in page)
        if row_type == 10 and "Media" in query.get("excludeElements", "").split(","):
            body = render.without_media(body)  # like Plex: the listing without <Media>/<Part>
        if meta:
            body = render.filter_meta(sid) + body
        return render.container(_listing_attrs(lib, len(page), len(items), offset, title2, vg),
                                body)


def _metadata(lib: Library, keys: str, others: Sequence[Library] = ()) -> bytes:
    parts = []
    for k in keys.split(","):
        holder = next((x for x in (lib, *others) if x.holds(k)), lib)
        with holder.lock:
            if k in holder.tracks:
                parts.append(holder.raw_full_xml.get(k) or render.track_fragment(holder, k))
            elif k in holder.albums:
                parts.append(render.album_full(holder, k))
            elif k in holder.artists:
                parts.append(render.artist_fragment(holder, k))
    if not parts:
        raise ListingError(404, f"no metadata item {keys}")
    return render.container({"size": len(parts), "allowSync": 1,
                             "identifier": "com.plexapp.plugins.library",
                             "librarySectionID": lib.section_key,
                             "librarySectionTitle": lib.music_title,
                             "librarySectionUUID": "33333333-3333-3333-3333-333333333333",
                             "mediaTagPrefix": "/system/bundle/media/flags/",
                             "mediaTagVersion": 1700000000}, b"".join(parts))


def _children(lib: Library, key: str, start, size) -> bytes:
    if key in lib.albums:
        ks = sorted(lib.album_tracks.get(key, []),
                    key=lambda r: (lib.tracks[r].disc or 0, lib.tracks[r].index or 0, int(r)))
        page, offset = _page(ks, start, size)
        al = lib.albums[key]
        attrs = _listing_attrs(lib, len(page), len(ks), offset, al.title, "track")
        attrs.update({"key": key, "parentTitle": lib.artists[al.artist_key].title,
                      "parentYear": al.year})
        return render.container(attrs, b"".join(render.track_fragment(lib, k) for k in page))
    if key in lib.artists:
        ks = [k for k in lib.album_order() if lib.albums[k].artist_key == key]
        page, offset = _page(ks, start, size)
        attrs = _listing_attrs(lib, len(page), len(ks), offset, lib.artists[key].title, "album")
        return render.container(attrs, b"".join(render.album_fragment(lib, k) for k in page))
    if key in lib.tracks:
        return render.container({"size": 0, "totalSize": 0, "offset": 0})
    raise ListingError(404, f"no metadata item {key}")
