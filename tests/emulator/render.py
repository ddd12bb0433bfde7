"""XML rendering for the Plex emulator, shaped like Plex Media Server's answers.

Track and album listing fragments are cached as bytes in the Library (invalidated by
mutations), so a 1000-track page is one ``b"".join`` of cached fragments.
"""
from __future__ import annotations

import re
from typing import Iterable

from .model import MOVIE_SECTION_ID, Album, Library

_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                      "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def esc(value) -> str:
    return str(value).translate(_ESC)


def attrs(d: dict) -> str:
    return " ".join(f'{k}="{esc(v)}"' for k, v in d.items() if v is not None)


def container(attributes: dict, body: bytes = b"", tag: str = "MediaContainer") -> bytes:
    head = f"<{tag} {attrs(attributes)}".encode()
    if not body:
        return XML_HEAD + head + b"/>\n"
    return XML_HEAD + head + b">\n" + body + f"</{tag}>\n".encode()


def _rating(r: float | None) -> str | None:
    return None if r is None else f"{float(r):.1f}"


def track_fragment(lib: Library, rk: str) -> bytes:
    frag = lib.raw_xml.get(rk) or lib.track_xml.get(rk)
    if frag is None:
        frag = lib.track_xml[rk] = _render_track(lib, rk).encode()
    return frag


def _opt(name: str, value) -> str:
    return "" if value is None else f' {name}="{value}"'


def _render_track(lib: Library, rk: str) -> str:
    """One <Track> of a listing: no Genre, no year, parentYear = the album's year."""
    t = lib.tracks[rk]
    al = lib.albums[t.album_key]
    ar = lib.artists[al.artist_key]
    sid = lib.section_key
    ak, gk = al.rating_key, ar.rating_key
    at, gt = esc(al.title), esc(ar.title)
    dur = t.duration or 0
    orig = "" if t.original_title is None else f' originalTitle="{esc(t.original_title)}"'
    return (
        f'<Track ratingKey="{rk}" key="/library/metadata/{rk}" parentRatingKey="{ak}" '
        f'grandparentRatingKey="{gk}" guid="plex://track/emu{rk}" '
        f'parentGuid="plex://album/emu{ak}" grandparentGuid="plex://artist/emu{gk}" '
        f'type="track" title="{esc(t.title)}" grandparentKey="/library/metadata/{gk}" '
        f'parentKey="/library/metadata/{ak}" librarySectionTitle="{esc(lib.music_title)}" '
        f'librarySectionID="{sid}" librarySectionKey="/library/sections/{sid}" '
        f'grandparentTitle="{gt}" parentTitle="{at}"{orig} summary=""'
        f'{_opt("index", t.index)}{_opt("parentIndex", t.disc)}'
        f'{_opt("userRating", _rating(t.user_rating))}{_opt("lastRatedAt", t.last_rated_at)}'
        f'{_opt("viewCount", t.view_count or None)}'
        f'{_opt("lastViewedAt", t.last_viewed_at)}{_opt("year", t.year)}'
        f'{_opt("parentYear", al.year)} thumb="/library/metadata/{ak}/thumb/{al.updated_at}"'
        f'{_opt("duration", t.duration)} addedAt="{t.added_at}" updatedAt="{t.updated_at}" '
        f'musicAnalysisVersion="1">'
        f'<Media id="{rk}" duration="{dur}" bitrate="320" audioChannels="2" audioCodec="mp3" '
        f'container="mp3"><Part id="{rk}" key="/library/parts/{rk}/{t.added_at}/file.mp3" '
        f'duration="{dur}" file="/music/{gt}/{at}/{t.index or 0:02d}.mp3" size="{dur * 40}" '
        f'container="mp3"/></Media></Track>\n')


_MEDIA = re.compile(rb"<Media\b[^>]*/>|<Media\b.*?</Media>", re.S)  # a real answer may close <Media/> at once


def without_media(body: bytes) -> bytes:
    """Listing XML without its <Media> elements (and their <Part>s): ``excludeElements=Media``."""
    return _MEDIA.sub(b"", body)


def album_attrs(lib: Library, al: Album, *, counts: bool = True) -> dict:
    """An album's attributes; ``counts``: with its ``leafCount`` and ``viewedLeafCount`` (metadata
    answers always; listings only as older servers wrote them, `Library.listing_leaf_counts`)."""
    ar = lib.artists[al.artist_key]
    sid = lib.section_key
    n = len(lib.album_tracks.get(al.rating_key, [])) if counts else None
    return {
        "ratingKey": al.rating_key, "key": f"/library/metadata/{al.rating_key}/children",
        "parentRatingKey": ar.rating_key, "guid": f"plex://album/emu{al.rating_key}",
        "parentGuid": f"plex://artist/emu{ar.rating_key}", "type": "album", "title": al.title,
        "parentKey": f"/library/metadata/{ar.rating_key}", "librarySectionTitle": lib.music_title,
        "librarySectionID": sid, "librarySectionKey": f"/library/sections/{sid}",
        "parentTitle": ar.title, "summary": "", "index": 1, "year": al.year,
        "originallyAvailableAt": f"{al.year}-01-01" if al.year else None,
        "thumb": f"/library/metadata/{al.rating_key}/thumb/{al.updated_at}",
        "leafCount": n, "viewedLeafCount": 0 if counts else None, "addedAt": al.added_at,
        "updatedAt": al.updated_at,
    }


def _genre_tags(lib: Library, genres: list[str]) -> str:
    return "".join(f'<Genre id="{lib.genre_id(g)}" filter="genre={lib.genre_id(g)}" '
                   f'tag="{esc(g)}"/>' for g in genres)


def album_fragment(lib: Library, key: str) -> bytes:
    """Listing form: at most 2 Genre tags (Plex truncates them in listings)."""
    frag = lib.raw_xml.get(key) or lib.album_xml.get(key)
    if frag is None:
        al = lib.albums[key]
        frag = lib.album_xml[key] = (f"<Directory {attrs(album_attrs(lib, al, counts=lib.listing_leaf_counts))}>"
                                     f"{_genre_tags(lib, al.genres[:2])}</Directory>\n").encode()
    return frag


def album_full(lib: Library, key: str) -> bytes:
    """/library/metadata/{album}: every Genre tag."""
    raw = lib.raw_full_xml.get(key) or lib.raw_xml.get(key) or lib.album_full_xml.get(key)
    if raw is not None:
        return raw
    al = lib.albums[key]
    full = lib.album_full_xml[key] = (f"<Directory {attrs(album_attrs(lib, al))}>"
                                      f"{_genre_tags(lib, al.genres)}</Directory>\n").encode()
    return full


def artist_fragment(lib: Library, key: str) -> bytes:
    ar = lib.artists[key]
    sid = lib.section_key
    a = {"ratingKey": key, "key": f"/library/metadata/{key}/children", "type": "artist",
         "guid": f"plex://artist/emu{key}", "title": ar.title, "summary": "", "index": 1,
         "librarySectionTitle": lib.music_title, "librarySectionID": sid,
         "librarySectionKey": f"/library/sections/{sid}",
         "addedAt": ar.added_at, "updatedAt": ar.updated_at}
    return f"<Directory {attrs(a)}/>\n".encode()


def root(lib: Library) -> bytes:
    return container({
        "size": 0, "allowCameraUpload": 0, "allowChannelAccess": 1, "allowMediaDeletion": 1,
        "allowSharing": 1, "allowSync": 1, "backgroundProcessing": 1, "certificate": 1,
        "companionProxy": 1, "countryCode": "usa", "diagnostics": "logs,databases",
        "eventStream": 1, "friendlyName": lib.friendly_name, "hubSearch": 1,
        "machineIdentifier": lib.machine_identifier, "multiuser": 1, "myPlex": 0,
        "myPlexMappingState": "unknown", "myPlexSigninState": "none", "myPlexSubscription": 0,
        "ownerFeatures": "", "photoAutoTag": 0, "platform": "Linux",
        "platformVersion": "6.1", "pluginHost": 1, "readOnlyLibraries": 0,
        "requestParametersInCookie": 1, "streamingBrainVersion": 2, "sync": 1,
        "transcoderActiveVideoSessions": 0, "transcoderAudio": 1, "transcoderLyrics": 1,
        "transcoderPhoto": 1, "transcoderSubtitles": 1, "transcoderVideo": 1,
        "transcoderVideoBitrates": "64,96,208", "transcoderVideoQualities": "0,1,2",
        "transcoderVideoResolutions": "128,128,160", "updatedAt": lib.server_updated_at,
        "updater": 0, "version": lib.version, "voiceSearch": 0,
    })


def identity(lib: Library) -> bytes:
    return container({"size": 0, "claimed": 1, "machineIdentifier": lib.machine_identifier,
                      "version": lib.version})


def library_root() -> bytes:
    body = (b'<Directory key="sections" title="Library Sections"/>\n'
            b'<Directory key="recentlyAdded" title="Recently Added Content"/>\n'
            b'<Directory key="onDeck" title="On Deck Content"/>\n')
    return container({"size": 3, "allowSync": 0, "art": "/:/resources/library-art.png",
                      "content": "secondary", "identifier": "com.plexapp.plugins.library",
                      "mediaTagPrefix": "/system/bundle/media/flags/",
                      "mediaTagVersion": 1700000000, "title1": "Plex Library"}, body)


def sections(lib: Library, others: Iterable[Library] = ()) -> bytes:
    """``/library/sections``: a movie section, ``lib``'s music section and the ``others`` (more
    music sections of the same server), in key order as Plex lists them."""
    movie_t = lib.server_updated_at - (lib.server_updated_at % 86400)
    entries = [
        {"allowSync": 1, "art": "/:/resources/movie-fanart.jpg", "composite": "", "filters": 1,
         "refreshing": 0, "thumb": "/:/resources/movie.png", "key": MOVIE_SECTION_ID,
         "type": "movie", "title": lib.movie_title, "agent": "tv.plex.agents.movie",
         "scanner": "Plex Movie", "language": "en-US",
         "uuid": "11111111-1111-1111-1111-111111111111", "updatedAt": movie_t,
         "createdAt": 1400000000, "scannedAt": movie_t, "content": 1, "directory": 1,
         "contentChangedAt": 17, "hidden": 0},
    ] + [_music_section(m) for m in (lib, *others)]
    entries.sort(key=lambda e: int(e["key"]))
    body = "".join(f'<Directory {attrs(e)}><Location id="{e["key"]}" path="/data/{e["title"].lower()}"/>'
                   f"</Directory>\n" for e in entries).encode()
    return container({"size": len(entries), "allowSync": 0, "title1": "Plex Library"}, body)


def _music_section(lib: Library) -> dict:
    s = lib.section
    return {"allowSync": 1, "art": "/:/resources/artist-fanart.jpg", "composite": "", "filters": 1,
            "refreshing": 0, "thumb": "/:/resources/artist.png", "key": lib.section_key,
            "type": "artist", "title": lib.music_title, "agent": "tv.plex.agents.music",
            "scanner": "Plex Music", "language": "en-US",
            "uuid": f"33333333-3333-3333-3333-{(lib.section_key * 12)[:12]}", "updatedAt": s.updated_at,
            "createdAt": 1400000000, "scannedAt": s.scanned_at, "content": 1, "directory": 1,
            "contentChangedAt": s.content_changed_at, "hidden": 0}


def _type_xml(sid: str, typ: str, title: str, fields: list[tuple[str, str, str]],
              filters: list[tuple[str, str, str]], active: int = 0) -> str:
    key = f"/library/sections/{sid}/all?type={_TYPE_IDS[typ]}"
    out = [f'<Type key="{esc(key)}" type="{typ}" title="{title}" active="{active}">']
    for flt, ftype, ftitle in filters:
        out.append(f'<Filter filter="{flt}" filterType="{ftype}" key="/library/sections/'
                   f'{sid}/{flt.split(".")[-1]}?type={_TYPE_IDS[typ]}" '
                   f'title="{ftitle}" type="filter"/>')
    out.append('<Sort default="asc" defaultDirection="asc" descKey="titleSort:desc" '
               'key="titleSort" title="Title"/>')
    out.append('<Sort defaultDirection="desc" descKey="addedAt:desc" key="addedAt" '
               'title="Date Added"/>')
    for fkey, ftype, ftitle in fields:
        out.append(f'<Field key="{fkey}" title="{ftitle}" type="{ftype}"/>')
    out.append("</Type>")
    return "".join(out)


_TYPE_IDS = {"artist": 8, "album": 9, "track": 10, "collection": 18}

_FIELD_TYPES = """<FieldType type="tag"><Operator key="=" title="is"/><Operator key="!=" title="is not"/></FieldType>
<FieldType type="integer"><Operator key="=" title="is"/><Operator key="!=" title="is not"/><Operator key="&gt;&gt;=" title="is greater than"/><Operator key="&lt;&lt;=" title="is less than"/></FieldType>
<FieldType type="string"><Operator key="=" title="contains"/><Operator key="!=" title="does not contain"/><Operator key="==" title="is"/><Operator key="!==" title="is not"/><Operator key="&lt;=" title="begins with"/><Operator key="&gt;=" title="ends with"/></FieldType>
<FieldType type="boolean"><Operator key="=" title="is true"/><Operator key="!=" title="is false"/></FieldType>
<FieldType type="date"><Operator key="&lt;&lt;=" title="is before"/><Operator key="&gt;&gt;=" title="is after"/></FieldType>
"""


def filter_meta(sid: str) -> bytes:
    """The <Meta> block plexapi reads before building a filtered search (of section ``sid``)."""
    types = [
        _type_xml(sid, "artist", "Artists",
                  [("artist.title", "string", "Artist Title"), ("artist.genre", "tag", "Genre"),
                   ("artist.addedAt", "date", "Date Artist Added")],
                  [("genre", "string", "Genre")], active=1),
        _type_xml(sid, "album", "Albums",
                  [("album.title", "string", "Album Title"), ("album.genre", "tag", "Genre"),
                   ("album.year", "integer", "Year"), ("album.addedAt", "date", "Date Added"),
                   ("album.viewCount", "integer", "Plays")],
                  [("genre", "string", "Genre"), ("year", "integer", "Year")]),
        _type_xml(sid, "track", "Tracks",
                  [("track.title", "string", "Track Title"),
                   ("track.userRating", "integer", "Track Rating"),
                   ("track.viewCount", "integer", "Track Plays"),
                   ("track.lastViewedAt", "date", "Track Last Played"),
                   ("track.lastRatedAt", "date", "Track Last Rated"),
                   ("track.addedAt", "date", "Date Added")],
                  [("userRating", "integer", "Rating")]),
    ]
    body = ("<Meta>" + "".join(types) + _FIELD_TYPES + "</Meta>\n").encode()
    return body


def collections_meta(sid: str) -> bytes:
    return ("<Meta>" + _type_xml(sid, "collection",
                                 "Collections", [("collection.title", "string", "Title")], [])
            + _FIELD_TYPES + "</Meta>\n").encode()


def prerender(lib: Library) -> None:
    """Render every track and album fragment (an album's listing and metadata forms) now, and sort
    the library's listings (the CLI does this before it is ready)."""
    with lib.lock:
        lib.warm()
        for rk in lib.tracks:
            track_fragment(lib, rk)
        for key in lib.albums:
            album_fragment(lib, key)
            album_full(lib, key)
