"""Fetching the few items Plex notified, from the daemon process (standard library only).

A notified edit must reach the cache within a fraction of a second, quicker than a
sync worker can even import plexapi. `ItemFetcher` asks for exactly the items a
notification named -- several tracks at once (``/library/metadata/{k1},{k2},…``,
which real Plex serves for several keys), an album's tracks
(``/library/metadata/{album}/children``), an artist's albums -- with urllib and
the standard XML parser, and reads track rows with the same rules as a sync
(`plex/rows.py`). It never pages a listing. Any failure raises `FetchFailed`;
the caller then falls back to an incremental sync.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Iterator

from .attrs import to_int
from .redact import redact, safe_url
from .body import clean_xml
from .cabundle import ssl_context
from .rows import GENRES_KEY, track_row
from .sections import Section, listed, music_section

BATCH = 100  # keys per /library/metadata request
# bytes of one answer read in the daemon (100 tracks' metadata are ~0.5 MB, an album of 4,000
# tracks ~8 MB): a larger one is left to an incremental sync, whose worker reads pages of it
MAX_ANSWER = 8 << 20


class FetchFailed(Exception):
    """A targeted fetch did not work out (the message never holds the token)."""


class ItemFetcher:
    """Targeted reads of one Plex server; blocking (run it in a thread)."""

    def __init__(self, url: str, token: str, *, timeout: float, verify_ssl: bool = True):
        self._base = safe_url(url)
        self._token = token
        self._timeout = timeout
        self._context = ssl_context(verify_ssl) if self._base.startswith("https:") else None
        self.requests = 0
        self.album_genres: dict[str, list[str]] = {}
        self._years: dict[str, int] = {}

    def _get(self, path: str, *, missing_ok: bool = False) -> ET.Element | None:
        request = urllib.request.Request(self._base + path, headers={
            "X-Plex-Token": self._token, "Accept": "application/xml",
            "X-Plex-Client-Identifier": "mediasaged", "X-Plex-Product": "mediasaged"})
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as resp:
                body = resp.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise FetchFailed(f"Plex returned HTTP {exc.code} for {path}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise FetchFailed(redact(f"Plex unreachable at {self._base} for {path}: {exc}", self._token)) from None
        if len(body) > MAX_ANSWER:
            raise FetchFailed(f"Plex's answer for {path} is over {MAX_ANSWER >> 20} MiB")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            cleaned = clean_xml(body)  # raw control characters: read it as plexapi does
            try:
                root = ET.fromstring(cleaned[0]) if cleaned else None
            except ET.ParseError:
                root = None
            if root is None:
                raise FetchFailed(f"Plex sent malformed XML for {path}: {exc}") from None
        if root.tag != "MediaContainer":
            raise FetchFailed(f"Plex sent an unexpected <{root.tag}> answer for {path}")
        return root

    def count(self, section_id: str, libtype: int, **filters: str) -> int | None:
        """``totalSize`` of a zero-size listing of one type (filters as Plex spells them, e.g.
        ``{"track.updatedAt>>": "1700000000"}``); None when Plex gives no count."""
        query = urllib.parse.urlencode({"type": str(libtype), **filters,
                                        "X-Plex-Container-Start": "0", "X-Plex-Container-Size": "0"})
        root = self._get(f"/library/sections/{urllib.parse.quote(section_id, safe='')}/all?{query}")
        total = root.get("totalSize")
        return int(total) if total is not None and total.isdigit() else None

    def server_id(self) -> str:
        root = self._get("/identity")
        return root.get("machineIdentifier") or ""

    def sections(self) -> list[Section]:
        """The server's library sections, in Plex's order."""
        return listed(self._get("/library/sections"))

    def section_key(self, library: str) -> str | None:
        """The key of the music section ``library`` names now (`sections.music_section`); None: none."""
        return music_section(self.sections(), library)

    def _metadata(self, keys: list[str]) -> Iterator[tuple[list[str], ET.Element | None]]:
        """(keys asked, answer) of batched ``/library/metadata/k1,k2,...`` requests, ``BATCH`` keys
        each; the answer leaves out the keys Plex does not have (None: it has none of them)."""
        for i in range(0, len(keys), BATCH):
            chunk = keys[i:i + BATCH]
            quoted = ",".join(urllib.parse.quote(k, safe="") for k in chunk)
            yield chunk, self._get(f"/library/metadata/{quoted}", missing_ok=True)

    def tracks(self, keys: list[str]) -> dict[str, dict]:
        """rating key -> track row, for the keys Plex still has (the others are left out, as Plex does)."""
        out: dict[str, dict] = {}
        for chunk, root in self._metadata(keys):
            for row in _track_rows(root):
                if row["rating_key"] in chunk:
                    out[row["rating_key"]] = row
        return out

    def present(self, keys: list[str]) -> set[str]:
        """Which of ``keys`` Plex still has, of any kind (a track, an album, an artist)."""
        return {el.get("ratingKey") for chunk, root in self._metadata(keys) if root is not None
                for el in root if el.get("ratingKey") in chunk}

    def album_tracks(self, album_key: str) -> list[dict] | None:
        """The track rows of one album; None when Plex no longer has the album."""
        root = self._get(f"/library/metadata/{urllib.parse.quote(album_key, safe='')}/children", missing_ok=True)
        return None if root is None else _track_rows(root)

    def artist_albums(self, artist_key: str) -> list[str] | None:
        """The album keys of one artist; None when Plex no longer has the artist."""
        root = self._get(f"/library/metadata/{urllib.parse.quote(artist_key, safe='')}/children", missing_ok=True)
        if root is None:
            return None
        return [d.get("ratingKey") for d in root.iter("Directory") if d.get("ratingKey")]

    def albums(self, keys: list[str]) -> None:
        """Fetch the full metadata of these albums: their genres and years (`album_genres`,
        `album_years`), for the albums Plex has."""
        for _, root in self._metadata(keys):
            for d in ([] if root is None else root.iter("Directory")):
                key = d.get("ratingKey")
                if key:
                    self.album_genres[key] = sorted((g.get("tag") or "" for g in d.iter("Genre")),
                                                    key=str.casefold)
                    year = to_int(d.get("year"))
                    if year is not None:
                        self._years[key] = year

    def album_years(self, keys: list[str]) -> dict[str, int]:
        """Album key -> its year, for albums `albums` fetched (what `live.Decorate` asks of a reader)."""
        return {k: self._years[k] for k in keys if k in self._years}


def _track_rows(root: ET.Element | None) -> list[dict]:
    rows = []
    for el in ([] if root is None else root.iter("Track")):
        a = dict(el.attrib)
        own = [g.get("tag") or "" for g in el.findall("Genre")]
        if own:
            a[GENRES_KEY] = own
        row = track_row(a)
        if row["rating_key"]:
            rows.append(row)
    return rows
