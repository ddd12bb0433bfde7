"""Helpers for plex.py that do not need plexapi: track rows from listing XML (the hot
loop of a sync) and short reasons for network failures. URLs and messages that can
never leak the token, and notification frames, are in plex_text.py (standard library
only, so the daemon process can use them without loading requests or lxml)."""
from __future__ import annotations

import requests
from lxml import etree

from .plex_text import _int


def _connection_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        if "WRONG_VERSION_NUMBER" in str(exc) or "wrong version number" in str(exc):
            return "the server does not speak TLS on this port (try http:// in plex.url)"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return ("TLS certificate verification failed (for a self-signed certificate set "
                    "plex.verify_ssl: false)")
        return ("TLS handshake or certificate verification failed (for a self-signed "
                "certificate set plex.verify_ssl: false)")
    if isinstance(exc, requests.exceptions.Timeout):
        return f"timed out after {timeout:g}s"
    chain, e = [], exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None)
    text = " ".join(f"{type(c).__name__} {c}" for c in chain)
    if any(isinstance(c, ConnectionRefusedError) for c in chain) or "refused" in text.lower():
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text \
            or "getaddrinfo" in text or "NameResolution" in text or "No address" in text:
        return "host name could not be resolved"
    if any(isinstance(c, ConnectionResetError) for c in chain) or "reset" in text.lower():
        return "connection reset"
    if "RemoteDisconnected" in text or "closed connection" in text or "aborted" in text.lower():
        return "connection closed without an answer"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "connection dropped in the middle of an answer"
    if "No route to host" in text or "Network is unreachable" in text:
        return "no route to host"
    return "connection failed"


# ---- XML -> rows -------------------------------------------------------------------------

def _float(v: str | None) -> float | None:
    if not v:
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _track_row(a: dict, i=int, f=float) -> dict:
    """One track row from a <Track> element's attributes (a plain dict).

    The hot loop of a sync: plain ``int``/``float`` first; a row with a
    malformed number ("8.5" where an int belongs, garbage) is redone with the
    tolerant converters, which turn what they cannot read into None."""
    g = a.get
    gp = g("grandparentTitle") or ""
    year = g("year") or g("parentYear")
    dur, idx, disc, vc = g("duration"), g("index"), g("parentIndex"), g("viewCount")
    lv, added, upd, ur = g("lastViewedAt"), g("addedAt"), g("updatedAt"), g("userRating")
    try:
        return {
            "rating_key": g("ratingKey") or "",
            "title": g("title") or "",
            "artist": g("originalTitle") or gp,
            "album_artist": gp,
            "album": g("parentTitle") or "",
            "album_rating_key": g("parentRatingKey") or None,
            "duration_ms": i(dur) if dur else None,
            "year": i(year) if year else None,
            "user_rating": f(ur) if ur else None,
            "track_number": i(idx) if idx else None,
            "disc_number": i(disc) if disc else None,
            "view_count": (i(vc) if vc else 0) or 0,
            "last_viewed_at": i(lv) if lv else None,
            "added_at": i(added) if added else None,
            "updated_at": i(upd) if upd else None,
        }
    except ValueError:
        return _track_row(a, _int, _float)


def parse_track_rows(root) -> list[dict]:
    """Track rows (plain dicts) from a parsed MediaContainer of <Track> elements."""
    return [_track_row(el.attrib) for el in root.iterchildren("Track")]


class _TrackPageTarget:
    """lxml parser target: keeps the MediaContainer's and every <Track>'s attributes.

    Parsing with a target builds no tree: libxml2 hands each start tag's
    attributes over as a dict, which is the cheapest way to get them into
    Python (a sync spends most of its CPU here). Media/Part children are skipped.
    """

    def __init__(self) -> None:
        self.container: dict | None = None
        self.tracks: list[dict] = []

    def start(self, tag: str, attrib: dict) -> None:
        if tag == "Track":
            self.tracks.append(attrib)
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
        return container, [_track_row(a) for a in tracks]


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                           collect_ids=False, recover=False)
