"""The sync reader's compact album -> genres map (daemon/plex/genremap.py)."""

from __future__ import annotations

from mediasaged.plex.genremap import GenreMap, GenreMapBuilder


def test_a_map_answers_like_the_dict_it_was_built_from():
    found = {"12": ["Rock", "jazz", "Rock"], "7": ["Pop"], "100000000": ["Jazz"], "007": ["Folk"],
             "a/b": ["Blues", "ambient"], "0": ["jazz", "Rock"], "٣": ["Dub"]}
    got = GenreMap.of(found)
    want = {k: sorted(dict.fromkeys(v), key=str.casefold) for k, v in found.items()}
    assert got == want and dict(got) == want and len(got) == len(want)
    assert got.get("7") == ["Pop"] and got["007"] == ["Folk"] and got.get("07") is None
    assert got.get("3") is None and got["٣"] == ["Dub"]
    assert "8" not in got and got.get("8", []) == [] and got.get(None, "x") == "x"
    assert got["12"] is got["0"]  # one shared list per distinct genre set


def test_pairs_arriving_genre_by_genre_are_grouped_by_album():
    builder = GenreMapBuilder()
    for genre, albums in {"Rock": ["3", "1", "2"], "Jazz": ["2", "9"], "Ambient": ["3"]}.items():
        for album in albums:
            builder.add(album, genre)
    got = builder.build()
    assert dict(got) == {"1": ["Rock"], "2": ["Jazz", "Rock"], "3": ["Ambient", "Rock"], "9": ["Jazz"]}
    assert [got.get(k) for k in ("3", "3", "2", "4")] == [["Ambient", "Rock"], ["Ambient", "Rock"], ["Jazz", "Rock"], None]
