"""Album rating key -> its full genre list, held in ~12 bytes per album.

The sync reader keeps every album's genres while it pages the tracks (each row
carries its album's list). A million-track library has ~100k albums but few
distinct genre sets, and Plex's rating keys are integers: the map is a sorted
array of album keys beside an array of set numbers, one shared list per
distinct set (a dict of string keys took ~100 bytes per album, 10 MB at 1M
tracks, and building it through a list per album cost twice that again).
Keys that are not decimal integers (never seen from Plex) go in a plain dict.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping

GENRE_BITS = 16  # genre number in the low bits of a packed (album, genre) pair


def _packable(key: str) -> bool:
    """A key held as an integer: ASCII digits, no leading zero, fits the packed pair."""
    return key.isascii() and key.isdigit() and len(key) < 15 and (key[0] != "0" or key == "0")


class GenreMapBuilder:
    """Collects (album key, genre name) pairs in packed integers; `build` sorts and groups them."""

    def __init__(self) -> None:
        self._pairs = array("q")
        self._names: dict[str, int] = {}
        self._other: dict[str, list[str]] = {}  # albums whose key is not an integer

    def add(self, album_key: str, genre: str) -> None:
        number = self._names.setdefault(genre, len(self._names))
        if number < 1 << GENRE_BITS and _packable(album_key):
            self._pairs.append(int(album_key) << GENRE_BITS | number)
        else:
            self._other.setdefault(album_key, []).append(genre)

    def add_all(self, album_key: str, genres: Iterable[str]) -> None:
        for genre in genres:
            self.add(album_key, genre)

    def build(self) -> "GenreMap":
        names = list(self._names)
        pairs, self._pairs = self._pairs, array("q")
        pairs = array("q", sorted(pairs))
        keys, sets = array("q"), array("I")
        shared: dict[tuple[str, ...], int] = {}
        lists: list[list[str]] = []

        def set_number(genres: Iterable[str]) -> int:
            names_ = tuple(sorted(dict.fromkeys(genres), key=str.casefold))
            number = shared.get(names_)
            if number is None:
                number = shared[names_] = len(lists)
                lists.append(list(names_))
            return number

        mask = (1 << GENRE_BITS) - 1
        i, n = 0, len(pairs)
        while i < n:
            album = pairs[i] >> GENRE_BITS
            j = i
            while j < n and pairs[j] >> GENRE_BITS == album:
                j += 1
            keys.append(album)
            sets.append(set_number(names[pairs[k] & mask] for k in range(i, j)))
            i = j
        other = {key: lists[set_number(genres)] for key, genres in self._other.items()}
        return GenreMap(keys, sets, lists, other)


class GenreMap(Mapping):
    """Read-only album key -> genres (shared lists: do not mutate them). Albums without genres are absent."""

    def __init__(self, keys: array, sets: array, lists: list[list[str]], other: dict[str, list[str]]):
        self._keys, self._sets, self._lists, self._other = keys, sets, lists, other
        self._last: tuple[str | None, list[str] | None] = (None, None)  # tracks come album by album

    @classmethod
    def of(cls, found: Mapping[str, Iterable[str]]) -> "GenreMap":
        builder = GenreMapBuilder()
        for key, genres in found.items():
            builder.add_all(key, genres)
        return builder.build()

    def _find(self, key: object) -> list[str] | None:
        if type(key) is not str:
            return None
        last_key, last = self._last
        if key == last_key:
            return last
        found = None
        if _packable(key):
            number = int(key)
            i = bisect_left(self._keys, number)
            if i < len(self._keys) and self._keys[i] == number:
                found = self._lists[self._sets[i]]
        else:
            found = self._other.get(key)
        self._last = (key, found)
        return found

    def __getitem__(self, key: object) -> list[str]:
        found = self._find(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: object, default=None):
        found = self._find(key)
        return default if found is None else found

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None

    def __len__(self) -> int:
        return len(self._keys) + len(self._other)

    def __iter__(self) -> Iterator[str]:
        yield from (str(k) for k in self._keys)
        yield from self._other
